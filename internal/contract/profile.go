package contract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// MaxProfileCategories caps the distinct values of a categorical profile.
const MaxProfileCategories = 10000

// Profile is a reference distribution for expect_column_psi_to_be_less_than:
// either Edges and Fractions (numeric) or Categories.
type Profile struct {
	Column     string             `json:"column"`
	Count      int64              `json:"count"`
	Edges      []float64          `json:"edges,omitempty"`
	Fractions  []float64          `json:"fractions,omitempty"`
	Categories map[string]float64 `json:"categories,omitempty"`
}

// ProfileOptions configure [BuildProfile].
type ProfileOptions struct {
	Column      string
	Bins        int // numeric bins, default 10
	Categorical bool
	SampleCap   int // values kept to choose the edges, default DefaultLimits.SampleCap
}

// BuildProfile computes a reference profile of one column. Numeric: the
// edges are the i/Bins quantiles (i = 1..Bins-1, "nearest" method, exact up
// to SampleCap values, else from a uniform sample), with repeated edges
// merged; then a second pass over the data (open is called twice) counts
// the exact fraction of non-null values in each bin [e_{i-1}, e_i).
// Categorical: one pass, the fraction of non-null values per distinct text.
// Nulls and NaN are not counted; a non-numeric value in a numeric profile is
// an error.
func BuildProfile(ctx context.Context, open func() (Source, error), opts ProfileOptions) (*Profile, error) {
	if opts.Bins == 0 {
		opts.Bins = 10
	}
	if opts.Bins < 1 || opts.Bins > 1000 {
		return nil, errors.New("bins must be in 1..1000")
	}
	if opts.SampleCap <= 0 {
		opts.SampleCap = DefaultLimits.SampleCap
	}
	p := &Profile{Column: opts.Column}
	pass := func(f func(c *Cell, line int64) error) error {
		src, err := open()
		if err != nil {
			return err
		}
		col := slices.Index(src.Columns(), opts.Column)
		if col < 0 {
			return fmt.Errorf("column %q not found", opts.Column)
		}
		rec := make([]Cell, len(src.Columns()))
		for n := 0; ; n++ {
			if n&0xffff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			line, err := src.Next(rec)
			if err == io.EOF {
				return nil
			}
			var re *RowError
			if errors.As(err, &re) {
				continue
			}
			if err != nil {
				return err
			}
			if rec[col].Kind == KindNull {
				continue
			}
			if err := f(&rec[col], line); err != nil {
				return err
			}
		}
	}
	if opts.Categorical {
		counts := map[string]int64{}
		err := pass(func(c *Cell, line int64) error {
			if _, ok := counts[bstr(c.Raw)]; !ok && len(counts) >= MaxProfileCategories {
				return fmt.Errorf("line %d: more than %d distinct values", line, MaxProfileCategories)
			}
			counts[string(c.Raw)]++
			p.Count++
			return nil
		})
		if err != nil {
			return nil, err
		}
		p.Categories = map[string]float64{}
		for k, n := range counts {
			p.Categories[k] = float64(n) / float64(p.Count)
		}
		return p, nil
	}
	s := newSampler(opts.SampleCap)
	number := func(c *Cell, line int64) (float64, bool, error) {
		f, ok := c.Float()
		if !ok || c.Kind == KindBool {
			return 0, false, fmt.Errorf("line %d: %q is not a number", line, c.Raw)
		}
		return f, !math.IsNaN(f), nil
	}
	if err := pass(func(c *Cell, line int64) error {
		f, ok, err := number(c, line)
		if ok {
			s.add(f)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if len(s.vals) == 0 {
		return nil, errors.New("no numeric values")
	}
	slices.Sort(s.vals)
	for i := 1; i < opts.Bins; i++ {
		e := quantile(s.vals, float64(i)/float64(opts.Bins), "nearest")
		if len(p.Edges) == 0 || e > p.Edges[len(p.Edges)-1] {
			p.Edges = append(p.Edges, e)
		}
	}
	// Keep the edges strictly inside the data so no bin is empty by design.
	if len(p.Edges) > 0 && p.Edges[0] == s.vals[0] {
		p.Edges = p.Edges[1:]
	}
	counts := make([]int64, len(p.Edges)+1)
	if err := pass(func(c *Cell, line int64) error {
		f, ok, err := number(c, line)
		if ok {
			counts[sort.Search(len(p.Edges), func(i int) bool { return p.Edges[i] > f })]++
			p.Count++
		}
		return err
	}); err != nil {
		return nil, err
	}
	if p.Edges == nil {
		p.Edges = []float64{}
	}
	for _, n := range counts {
		p.Fractions = append(p.Fractions, float64(n)/float64(p.Count))
	}
	return p, nil
}
