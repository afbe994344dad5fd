package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/custody-ml/custody/internal/monitor/stats"
	"github.com/custody-ml/custody/internal/monitor/summary"
)

// MaxProfileBytes caps the size of a profile file.
const MaxProfileBytes = 256 << 20

// ReadProfile reads a profile written by 'custody monitor profile' and
// validates it.
func ReadProfile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxProfileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes: %w", path, MaxProfileBytes, ErrInvalidInput)
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: not a profile: %w", path, err)
	}
	if p.Version != ProfileVersion {
		return nil, fmt.Errorf("%s: profile version %d, want %d", path, p.Version, ProfileVersion)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// ProfileVersion is the version of the reference profile format.
const ProfileVersion = 1

// DefaultSketchAlpha is the relative accuracy of the quantile sketches in
// a profile.
const DefaultSketchAlpha = 0.005

// Profile is a reference profile: per column, the mergeable summaries a
// streaming monitor compares later windows with. Numerical columns get
// counts over bins fixed from the reference (Sturges edges over the
// reference alone, plus underflow and overflow bins) and a quantile
// sketch; categorical columns get value counts.
type Profile struct {
	Version int             `json:"version"`
	Source  string          `json:"source"`
	Rows    int64           `json:"rows"`
	Columns []ColumnProfile `json:"columns"`
	// Outputs summarise the model's outputs on the reference when it was
	// profiled with labels and predictions: the baseline of the accuracy
	// drop and concentration tests of a monitor.
	Outputs *OutputProfile `json:"outputs,omitempty"`
}

// OutputProfile summarises labelled predictions of a reference: confusion
// counts overall and per segment column, and calibration buckets when
// the predictions are probabilities.
type OutputProfile struct {
	LabelColumn       string  `json:"label_column"`
	PredColumn        string  `json:"pred_column,omitempty"`
	ProbColumn        string  `json:"prob_column,omitempty"`
	PositiveLabel     string  `json:"positive_label"`
	DecisionThreshold float64 `json:"decision_threshold,omitempty"`
	Rows              int64   `json:"rows"`
	// Confusion counts over all rows (segment "").
	Confusion *summary.Confusion `json:"confusion"`
	// Segments holds, per segment column, confusion counts whose segment
	// is the column's value.
	Segments    map[string]*summary.Confusion `json:"segments,omitempty"`
	Calibration *summary.Calibration          `json:"calibration,omitempty"`
}

// BuildOutputProfile summarises the labelled predictions of a reference
// table; o.GroupColumns name the segment columns.
func BuildOutputProfile(t *Table, o PerformanceOptions, bins int) (*OutputProfile, error) {
	if (o.PredColumn == "") == (o.ProbColumn == "") {
		return nil, fmt.Errorf("exactly one of a predicted-class and a probability column: %w", ErrInvalidInput)
	}
	r, err := o.rows(t)
	if err != nil {
		return nil, err
	}
	pos := o.PosLabel
	if pos == "" {
		pos = "1"
	}
	op := &OutputProfile{LabelColumn: o.LabelColumn, PredColumn: o.PredColumn, ProbColumn: o.ProbColumn,
		PositiveLabel: pos, Rows: int64(len(r.actual)), Confusion: summary.NewConfusion()}
	if o.ProbColumn != "" {
		op.DecisionThreshold = o.DecisionThreshold
		if op.DecisionThreshold == 0 {
			op.DecisionThreshold = 0.5
		}
	}
	for i := range r.actual {
		op.Confusion.Add("", r.actual[i], r.predicted[i])
	}
	for k, g := range o.GroupColumns {
		if op.Segments == nil {
			op.Segments = map[string]*summary.Confusion{}
		}
		c := summary.NewConfusion()
		for i := range r.actual {
			c.Add(r.groups[k][i], r.actual[i], r.predicted[i])
		}
		op.Segments[g] = c
	}
	if o.ProbColumn != "" {
		cal, err := summary.NewCalibration(bins)
		if err != nil {
			return nil, err
		}
		outs, valid, err := Outcomes(t.Column(o.LabelColumn), o.PosLabel)
		if err != nil {
			return nil, err
		}
		for i, p := range t.Column(o.ProbColumn).Floats() {
			if valid[i] && !math.IsNaN(p) {
				cal.Add(p, outs[i])
			}
		}
		op.Calibration = cal
	}
	return op, nil
}

// ColumnProfile is one column of a Profile.
type ColumnProfile struct {
	Column     string              `json:"column"`
	Kind       string              `json:"type"`
	Rows       int64               `json:"rows"`
	Missing    int64               `json:"missing"`
	Mean       *Float              `json:"mean,omitempty"`
	Std        *Float              `json:"std,omitempty"`
	Binned     *summary.Binned     `json:"binned,omitempty"`
	Sketch     *summary.Sketch     `json:"sketch,omitempty"`
	Categories *summary.Categories `json:"categories,omitempty"`
}

// BuildProfile summarises the columns of a reference table (all of them
// when names is empty); columns in categorical are profiled as categories.
func BuildProfile(t *Table, names, categorical []string) (*Profile, error) {
	p := &Profile{Version: ProfileVersion, Source: t.Path, Rows: t.Rows}
	cols := t.Columns
	if len(names) > 0 {
		cols = nil
		for _, n := range names {
			c := t.Column(n)
			if c == nil {
				return nil, fmt.Errorf("column %q: %w", n, ErrUnknownColumn)
			}
			cols = append(cols, c)
		}
	}
	for _, c := range cols {
		cp := ColumnProfile{Column: c.Name, Rows: c.Rows, Missing: c.Missing}
		if c.Numeric() && !slices.Contains(categorical, c.Name) {
			cp.Kind = Numerical
			vals := finiteSorted(c.Floats())
			if len(vals) == 0 {
				return nil, fmt.Errorf("column %q: %w", c.Name, ErrEmptyColumn)
			}
			b, err := summary.NewBinned(referenceEdges(vals))
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
			sk, _ := summary.NewSketch(DefaultSketchAlpha)
			for _, v := range c.Floats() {
				b.Add(v)
				sk.Add(v)
			}
			m, s := stats.MeanStd(vals)
			fm, fs := Float(m), Float(s)
			cp.Mean, cp.Std, cp.Binned, cp.Sketch = &fm, &fs, b, sk
		} else {
			cp.Kind = Categorical
			if !c.HasText() {
				return nil, fmt.Errorf("column %q: too many distinct values for a categorical profile: %w", c.Name, ErrInvalidInput)
			}
			cp.Categories = summary.NewCategories()
			for k, v := range textCounts(c) {
				cp.Categories.Counts[k] = v
			}
		}
		p.Columns = append(p.Columns, cp)
	}
	return p, nil
}

// referenceEdges are the fixed bins of a profile: Sturges edges over the
// reference, or for a reference with at most 20 distinct values, edges
// halfway between consecutive values (one bin per value).
func referenceEdges(sorted []float64) []float64 {
	if countDistinct(sorted) > stats.MaxDistinctForValueBins {
		return summary.ReferenceEdges(sorted)
	}
	var vals []float64
	for i, v := range sorted {
		if i == 0 || v != sorted[i-1] {
			vals = append(vals, v)
		}
	}
	if len(vals) == 1 {
		return []float64{vals[0] - 0.5, vals[0] + 0.5}
	}
	edges := []float64{vals[0] - (vals[1]-vals[0])/2}
	for i := 1; i < len(vals); i++ {
		edges = append(edges, vals[i-1]+(vals[i]-vals[i-1])/2)
	}
	return append(edges, vals[len(vals)-1]+(vals[len(vals)-1]-vals[len(vals)-2])/2)
}

// ProfileDrift is the drift of one column of a current table against a
// reference profile, computed from summaries over the profile's fixed bins
// (the streaming monitors' definition; see docs/monitoring.md).
type ProfileDrift struct {
	Column                string `json:"column"`
	Kind                  string `json:"type"`
	ReferenceMissingShare Float  `json:"reference_missing_share"`
	CurrentMissingShare   Float  `json:"current_missing_share"`
	PSI                   Float  `json:"psi"`
	JensenShannon         Float  `json:"jensen_shannon"`
	Chi2Statistic         *Float `json:"chi2_statistic,omitempty"`
	Chi2PValue            *Float `json:"chi2_pvalue,omitempty"`
	// Quantiles of the current window (from a sketch) next to the
	// reference's, for numerical columns: p01, p25, p50, p75, p99.
	ReferenceQuantiles []Float `json:"reference_quantiles,omitempty"`
	CurrentQuantiles   []Float `json:"current_quantiles,omitempty"`
}

// ProfileQuantiles are the quantiles a profile drift report shows.
var ProfileQuantiles = []float64{0.01, 0.25, 0.5, 0.75, 0.99}

// Validate checks a profile read from outside before it is used.
func (p *Profile) Validate() error {
	for _, cp := range p.Columns {
		var err error
		switch cp.Kind {
		case Numerical:
			if cp.Binned == nil || cp.Sketch == nil {
				err = errors.New("no bins or sketch")
			} else if err = cp.Binned.Validate(); err == nil {
				err = cp.Sketch.Validate()
			}
		case Categorical:
			if cp.Categories == nil {
				err = errors.New("no categories")
			} else {
				err = cp.Categories.Validate()
			}
		default:
			err = fmt.Errorf("type %q", cp.Kind)
		}
		if err == nil && (cp.Rows < 0 || cp.Missing < 0 || cp.Missing > cp.Rows) {
			err = errors.New("bad row counts")
		}
		if err != nil {
			return fmt.Errorf("profile column %q: %v: %w", cp.Column, err, ErrInvalidInput)
		}
	}
	if o := p.Outputs; o != nil {
		if o.Confusion == nil {
			return fmt.Errorf("profile outputs: no confusion counts: %w", ErrInvalidInput)
		}
		if c := o.Calibration; c != nil && (len(c.Edges) < 2 || len(c.Count) != len(c.Edges)-1 ||
			len(c.SumScore) != len(c.Count) || len(c.Positives) != len(c.Count)) {
			return fmt.Errorf("profile outputs: malformed calibration buckets: %w", ErrInvalidInput)
		}
		for col, c := range o.Segments {
			if c == nil {
				return fmt.Errorf("profile outputs: segment %q has no counts: %w", col, ErrInvalidInput)
			}
		}
	}
	return nil
}

// CompareProfile compares the columns of cur present in the profile.
func CompareProfile(p *Profile, cur *Table) ([]ProfileDrift, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var out []ProfileDrift
	for _, cp := range p.Columns {
		c := cur.Column(cp.Column)
		if c == nil {
			continue
		}
		d := ProfileDrift{Column: cp.Column, Kind: cp.Kind, CurrentMissingShare: Float(c.MissingShare())}
		if cp.Rows > 0 {
			d.ReferenceMissingShare = Float(float64(cp.Missing) / float64(cp.Rows))
		}
		var err error
		switch cp.Kind {
		case Numerical:
			if cp.Binned == nil || cp.Sketch == nil {
				return nil, fmt.Errorf("profile column %q: no bins: %w", cp.Column, ErrInvalidInput)
			}
			if !c.Numeric() {
				return nil, fmt.Errorf("column %q: %w", cp.Column, ErrNotNumeric)
			}
			b, err := summary.NewBinned(cp.Binned.Edges)
			if err != nil {
				return nil, fmt.Errorf("profile column %q: %w", cp.Column, err)
			}
			sk, err := summary.NewSketch(cp.Sketch.Alpha)
			if err != nil {
				return nil, fmt.Errorf("profile column %q: %w", cp.Column, err)
			}
			for _, v := range c.Floats() {
				b.Add(v)
				sk.Add(v)
			}
			psi, js, err := b.Drift(cp.Binned)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", cp.Column, ErrEmptyColumn)
			}
			d.PSI, d.JensenShannon = Float(psi), Float(js)
			for _, q := range ProfileQuantiles {
				d.ReferenceQuantiles = append(d.ReferenceQuantiles, Float(cp.Sketch.Quantile(q)))
				d.CurrentQuantiles = append(d.CurrentQuantiles, Float(sk.Quantile(q)))
			}
		default:
			if cp.Categories == nil || !c.HasText() {
				return nil, fmt.Errorf("column %q: no categories to compare: %w", cp.Column, ErrInvalidInput)
			}
			cc := summary.NewCategories()
			for k, v := range textCounts(c) {
				cc.Counts[k] = v
			}
			var psi, js float64
			var chi stats.ChiSquareResult
			psi, js, chi, err = cc.Drift(cp.Categories)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", cp.Column, ErrEmptyColumn)
			}
			s, pv := Float(chi.Statistic), Float(chi.PValue)
			d.PSI, d.JensenShannon, d.Chi2Statistic, d.Chi2PValue = Float(psi), Float(js), &s, &pv
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no profiled column in %s: %w", cur.Path, ErrUnknownColumn)
	}
	return out, nil
}

// Breaches checks the user's thresholds on a profile comparison (psi,
// jensen_shannon, chi2_statistic, chi2_pvalue, missing_share apply).
func (d *ProfileDrift) Breaches(ts Thresholds) []Breach {
	cd := ColumnDrift{Column: d.Column, Kind: d.Kind, PSI: d.PSI, JensenShannon: d.JensenShannon,
		Chi2Statistic: d.Chi2Statistic, Chi2PValue: d.Chi2PValue, CurrentMissingShare: d.CurrentMissingShare}
	return ts.Check(&cd)
}

// ProfileEdges returns the bin edges a profile fixes for a numerical
// reference sample (NaN and ±Inf are ignored); see BuildProfile.
func ProfileEdges(sample []float64) []float64 {
	return referenceEdges(finiteSorted(sample))
}
