package monitor

import (
	"fmt"
	"math"
)

// PerformanceOptions configure a performance report.
type PerformanceOptions struct {
	LabelColumn string
	// Exactly one of PredColumn (predicted class) and ProbColumn
	// (probability of the positive class, binary) is set.
	PredColumn        string
	ProbColumn        string
	DecisionThreshold float64 // with ProbColumn: predict positive when p >= it (default 0.5)
	PosLabel          string  // the positive class for fairness and ProbColumn (default "1")
	SegmentColumn     string
	GroupColumns      []string
	Alpha             float64 // significance level of the concentration tests (default 0.05)
}

// PerformanceReport is the performance of the current window, its
// comparison with a reference window when one is given, and fairness per
// protected attribute.
type PerformanceReport struct {
	Input         string         `json:"input"`
	Reference     string         `json:"reference,omitempty"`
	SkippedRows   int64          `json:"skipped_rows"`
	Current       Performance    `json:"current"`
	ReferencePerf *Performance   `json:"reference_performance,omitempty"`
	ByClass       *Concentration `json:"concentration_by_class,omitempty"`
	BySegment     *Concentration `json:"concentration_by_segment,omitempty"`
	Fairness      []Fairness     `json:"fairness,omitempty"`
}

type labeledRows struct {
	actual, predicted, segment []string
	groups                     [][]string
	skipped                    int64
}

// PerformanceColumns lists the columns a report reads.
func (o PerformanceOptions) PerformanceColumns() []string {
	cols := []string{o.LabelColumn}
	if o.PredColumn != "" {
		cols = append(cols, o.PredColumn)
	} else {
		cols = append(cols, o.ProbColumn)
	}
	if o.SegmentColumn != "" {
		cols = append(cols, o.SegmentColumn)
	}
	return append(cols, o.GroupColumns...)
}

func (o PerformanceOptions) rows(t *Table) (*labeledRows, error) {
	col := func(name string) (*Column, error) {
		c := t.Column(name)
		if c == nil {
			return nil, fmt.Errorf("column %q: %w", name, ErrUnknownColumn)
		}
		return c, nil
	}
	lc, err := col(o.LabelColumn)
	if err != nil {
		return nil, err
	}
	var actual, predicted []string
	var va, vp []bool
	if o.PredColumn != "" {
		pc, err := col(o.PredColumn)
		if err != nil {
			return nil, err
		}
		if actual, va, err = Labels(lc); err != nil {
			return nil, err
		}
		if predicted, vp, err = Labels(pc); err != nil {
			return nil, err
		}
	} else {
		pc, err := col(o.ProbColumn)
		if err != nil {
			return nil, err
		}
		if !pc.Numeric() {
			return nil, fmt.Errorf("column %q: %w", o.ProbColumn, ErrNotNumeric)
		}
		pos := o.PosLabel
		outs, valid, err := Outcomes(lc, pos)
		if err != nil {
			return nil, err
		}
		if pos == "" {
			pos = "1"
		}
		neg := "not " + pos
		if lc.Numeric() && pos == "1" {
			neg = "0"
		}
		name := func(b bool) string {
			if b {
				return pos
			}
			return neg
		}
		n := len(outs)
		actual, predicted = make([]string, n), make([]string, n)
		va, vp = valid, make([]bool, n)
		th := o.DecisionThreshold
		if th == 0 {
			th = 0.5
		}
		for i, p := range pc.Floats() {
			if math.IsNaN(p) {
				continue
			}
			if p < 0 || p > 1 {
				return nil, fmt.Errorf("probability %v outside [0, 1]: %w", p, ErrInvalidInput)
			}
			actual[i], predicted[i], vp[i] = name(outs[i]), name(p >= th), true
		}
	}
	var seg []string
	if o.SegmentColumn != "" {
		sc, err := col(o.SegmentColumn)
		if err != nil {
			return nil, err
		}
		if seg, _, err = Labels(sc); err != nil {
			return nil, err
		}
	}
	var groups [][]string
	for _, g := range o.GroupColumns {
		gc, err := col(g)
		if err != nil {
			return nil, err
		}
		vals, _, err := Labels(gc)
		if err != nil {
			return nil, err
		}
		groups = append(groups, vals)
	}
	r := &labeledRows{groups: make([][]string, len(groups))}
	for i := range actual {
		if !va[i] || !vp[i] {
			r.skipped++
			continue
		}
		r.actual = append(r.actual, actual[i])
		r.predicted = append(r.predicted, predicted[i])
		if seg != nil {
			r.segment = append(r.segment, seg[i])
		}
		for k := range groups {
			r.groups[k] = append(r.groups[k], groups[k][i])
		}
	}
	return r, nil
}

// EvaluateTables builds a performance report of cur, compared with ref
// when ref is not nil.
func EvaluateTables(cur, ref *Table, o PerformanceOptions) (*PerformanceReport, error) {
	if (o.PredColumn == "") == (o.ProbColumn == "") {
		return nil, fmt.Errorf("exactly one of a predicted-class and a probability column: %w", ErrInvalidInput)
	}
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	cr, err := o.rows(cur)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cur.Path, err)
	}
	rep := &PerformanceReport{Input: cur.Path, SkippedRows: cr.skipped, Current: Evaluate(cr.actual, cr.predicted)}
	if ref != nil {
		rr, err := o.rows(ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref.Path, err)
		}
		rep.Reference = ref.Path
		rp := Evaluate(rr.actual, rr.predicted)
		rep.ReferencePerf = &rp
		byClass := Concentrate("class", rr.actual, rr.predicted, nil, cr.actual, cr.predicted, nil, o.Alpha)
		rep.ByClass = &byClass
		if o.SegmentColumn != "" {
			bySeg := Concentrate(o.SegmentColumn, rr.actual, rr.predicted, rr.segment, cr.actual, cr.predicted, cr.segment, o.Alpha)
			rep.BySegment = &bySeg
		}
	}
	pos := o.PosLabel
	if pos == "" {
		pos = "1"
	}
	for k, g := range o.GroupColumns {
		a := make([]bool, len(cr.actual))
		p := make([]bool, len(cr.actual))
		for i := range a {
			a[i], p[i] = cr.actual[i] == pos, cr.predicted[i] == pos
		}
		rep.Fairness = append(rep.Fairness, EvaluateFairness(g, cr.groups[k], a, p))
	}
	return rep, nil
}
