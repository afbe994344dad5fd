package contract

import (
	"context"
	"fmt"
	"io"
)

// WellFormedType is the built-in expectation, first in every report, that
// all records of the input are well formed: no ragged CSV rows, no invalid
// UTF-8, no line over the length cap, no invalid JSON line.
const WellFormedType = "custody_expect_rows_to_be_well_formed"

// Report is the outcome of checking one input.
type Report struct {
	Columns []string `json:"columns"`
	// Rows counts well-formed records; MalformedRows the others.
	Rows          int64    `json:"rows"`
	MalformedRows int64    `json:"malformed_rows"`
	Results       []Result `json:"results"`
}

// Outcome summarises results: "fail" if any expectation failed, else
// "incomplete" if any is unsupported or in error, else "pass".
func Outcome(results []Result) string {
	out := "pass"
	for _, r := range results {
		switch r.Status {
		case StatusFail:
			return "fail"
		case StatusUnsupported, StatusError:
			out = "incomplete"
		}
	}
	return out
}

func (l Limits) withDefaults() Limits {
	if l.MaxExamples == 0 {
		l.MaxExamples = DefaultLimits.MaxExamples
	}
	if l.MaxExamples < 0 {
		l.MaxExamples = 0
	}
	if l.UniqueCap <= 0 {
		l.UniqueCap = DefaultLimits.UniqueCap
	}
	if l.SampleCap <= 0 {
		l.SampleCap = DefaultLimits.SampleCap
	}
	return l
}

// CheckOptions configure [Check].
type CheckOptions struct {
	Limits Limits
	// LoadReference loads a PSI reference profile named by an expectation's
	// "reference_path"; nil refuses such expectations.
	LoadReference func(path string) (map[string]any, error)
	// Workers is the number of goroutines running the checks while another
	// reads: 0 means GOMAXPROCS, 1 runs everything on the calling goroutine.
	Workers int
	// noFastCSV (tests) makes CSV go through the streaming pipeline.
	noFastCSV bool
}

// Check reads src to its end once and evaluates every expectation. Memory
// does not grow with the number of rows, except within the documented
// Limits (unique sets, quantile samples). It returns an error only when the
// input could not be read; invalid or unsupported expectations are reported
// in their results.
func Check(ctx context.Context, src Source, exps []Expectation, opts CheckOptions) (*Report, error) {
	lim := opts.Limits.withDefaults()
	env := &buildEnv{cols: src.Columns(), index: map[string]int{}, limits: lim, loadRef: opts.LoadReference}
	for i, c := range env.cols {
		env.index[c] = i
	}
	rep := &Report{Columns: env.cols, Results: make([]Result, len(exps)+1)}
	wf := &Result{Type: WellFormedType, Kwargs: map[string]any{}}
	rep.Results[0] = *wf
	var live []checker
	var liveIdx []int
	for i, e := range exps {
		r := &rep.Results[i+1]
		*r = Result{Type: e.Type, Kwargs: e.Kwargs, Source: e.Source}
		if r.Kwargs == nil {
			r.Kwargs = map[string]any{}
		}
		b, ok := builders[e.Type]
		if !ok {
			r.Status, r.Detail = StatusUnsupported, "custody does not implement this expectation"
			continue
		}
		kw := newKwargs(r.Kwargs)
		for _, k := range []string{"row_condition", "condition_parser"} {
			if kw.has(k) {
				r.Status, r.Detail = StatusUnsupported, fmt.Sprintf("keyword argument %q is not supported", k)
			}
		}
		if r.Status != "" {
			continue
		}
		c := b(env, kw, r)
		if kw.err != nil {
			r.Status, r.Detail = StatusError, "invalid kwargs: "+kw.err.Error()
			continue
		}
		if u := kw.unknown(); len(u) > 0 {
			r.Status, r.Detail = StatusUnsupported, fmt.Sprintf("unsupported keyword arguments %q", u)
			continue
		}
		if r.Status != "" || c == nil {
			continue // decided at build time (e.g. a missing column)
		}
		if _, ok := c.(constChecker); ok {
			continue
		}
		live = append(live, c)
		liveIdx = append(liveIdx, i+1)
	}
	workers := opts.Workers
	if workers == 0 {
		workers = defaultWorkers()
	}
	var res readResult
	if cr, ok := src.(*csvReader); ok && workers > 1 && len(live) > 0 && !opts.noFastCSV {
		res = runCSVParallel(ctx, cr, live, workers, lim.MaxExamples)
	} else if workers > 1 && len(live) > 0 {
		res = runPipeline(ctx, src, live, workers, lim.MaxExamples)
	} else {
		res = runSequential(ctx, src, live, lim.MaxExamples)
	}
	if res.err != nil {
		return nil, res.err
	}
	rep.Rows, rep.MalformedRows = res.rows, res.malformed
	malformed := res.examples
	for k, c := range live {
		c.finish(rep.Rows, &rep.Results[liveIdx[k]])
	}
	w := &rep.Results[0]
	w.UnexpectedCount = &rep.MalformedRows
	w.Observed = map[string]any{"rows": rep.Rows, "malformed_rows": rep.MalformedRows}
	w.Examples = malformed
	w.Status = StatusPass
	if rep.MalformedRows > 0 {
		w.Status = StatusFail
	}
	return rep, nil
}

func runSequential(ctx context.Context, src Source, live []checker, maxEx int) readResult {
	var res readResult
	rec := make([]Cell, len(src.Columns()))
	for n := 0; ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				res.err = err
				return res
			}
		}
		line, err := src.Next(rec)
		if err == io.EOF {
			return res
		}
		if err != nil {
			re, ok := err.(*RowError)
			if !ok {
				res.err = fmt.Errorf("failed to read line %d: %w", line, err)
				return res
			}
			res.malformed++
			if len(res.examples) < maxEx {
				res.examples = append(res.examples, Example{Line: re.Line, Note: re.Msg})
			}
			continue
		}
		res.rows++
		for _, c := range live {
			c.observe(rec, line)
		}
	}
}
