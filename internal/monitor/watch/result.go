package watch

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/summary"
)

// Result statuses.
const (
	StatusOK           = "ok"
	StatusBreached     = "breached"
	StatusInsufficient = "insufficient_data" // fewer labelled predictions than min_rows
)

// ResultVersion is the version of the Result JSON.
const ResultVersion = 1

// Result is the evaluation of one window (or of several merged, for a
// report).
type Result struct {
	Version     int              `json:"version"`
	Monitor     string           `json:"monitor"`
	Model       string           `json:"model"`
	Alias       string           `json:"alias"`
	WindowStart time.Time        `json:"window_start"`
	WindowEnd   time.Time        `json:"window_end"`
	Windows     int              `json:"windows"` // windows with data merged into this result
	EvaluatedAt time.Time        `json:"evaluated_at"`
	Predictions int64            `json:"predictions"`
	Labelled    int64            `json:"labelled"`
	Digests     map[string]int64 `json:"model_digests,omitempty"`
	Status      string           `json:"status"`
	// Metrics lists every checked threshold, overall (segment "") and per
	// segment; only overall breaches of rollback metrics count towards a
	// rollback.
	Metrics           []MetricResult          `json:"metrics"`
	RollbackBreached  bool                    `json:"rollback_metric_breached"`
	Calibration       *CalibrationResult      `json:"calibration,omitempty"`
	Accuracy          *monitor.Float          `json:"accuracy,omitempty"`
	ReferenceAccuracy *monitor.Float          `json:"reference_accuracy,omitempty"`
	Segments          []SegmentResult         `json:"segments,omitempty"`
	Drift             []FeatureDrift          `json:"drift,omitempty"`
	Concentration     []monitor.Concentration `json:"concentration,omitempty"`
	Fairness          []monitor.Fairness      `json:"fairness,omitempty"`
	Consecutive       int                     `json:"consecutive"`
	Reevaluated       bool                    `json:"reevaluated,omitempty"`
	Action            *Action                 `json:"action,omitempty"`
	Alerts            []AlertStatus           `json:"alerts,omitempty"`
}

// MetricResult is one threshold check.
type MetricResult struct {
	Metric    string        `json:"metric"`
	Feature   string        `json:"feature,omitempty"`
	Segment   string        `json:"segment,omitempty"`
	Value     monitor.Float `json:"value"`
	Threshold float64       `json:"threshold"`
	// Direction is ">=" (breach at value >= threshold) or "<".
	Direction string `json:"direction"`
	Breached  bool   `json:"breached"`
	Rollback  bool   `json:"rollback_metric"`
	Detail    string `json:"detail,omitempty"`
	decided   bool   // Breached set by the caller, not by the threshold
}

func (m MetricResult) name() string {
	n := m.Metric
	if m.Feature != "" {
		n += "(" + m.Feature + ")"
	}
	if m.Segment != "" {
		n += "[" + m.Segment + "]"
	}
	return n
}

// CalibrationResult is the calibration of a window or segment, from its
// equal-width buckets.
type CalibrationResult struct {
	Rows    int64               `json:"rows"`
	ECE     monitor.Float       `json:"ece"`
	MCE     monitor.Float       `json:"mce"`
	Brier   monitor.Float       `json:"brier"`
	Buckets []ReliabilityBucket `json:"reliability"`
}

// ReliabilityBucket is one row of a reliability table.
type ReliabilityBucket struct {
	Lower            float64       `json:"lower"`
	Upper            float64       `json:"upper"`
	Count            int64         `json:"count"`
	MeanPredicted    monitor.Float `json:"mean_predicted"`
	FractionPositive monitor.Float `json:"fraction_positive"`
}

// SegmentResult is one segment value of a window.
type SegmentResult struct {
	Segment     string             `json:"segment"`
	Predictions int64              `json:"predictions"`
	Labelled    int64              `json:"labelled"`
	Calibration *CalibrationResult `json:"calibration,omitempty"`
	Accuracy    *monitor.Float     `json:"accuracy,omitempty"`
}

// FeatureDrift is the drift of one feature of the whole window against
// the reference, with the counts behind it (for histograms).
type FeatureDrift struct {
	Feature       string         `json:"feature"`
	Kind          string         `json:"type"`
	Rows          int64          `json:"rows"`
	Missing       int64          `json:"missing"`
	PSI           monitor.Float  `json:"psi"`
	JensenShannon monitor.Float  `json:"jensen_shannon"`
	Wasserstein   *monitor.Float `json:"wasserstein_normed,omitempty"`
	Chi2PValue    *monitor.Float `json:"chi2_pvalue,omitempty"`
	// Numerical: Edges e_0..e_k; counts are underflow, the k bins,
	// overflow. Categorical: one count per category, in Categories order.
	Edges      []float64 `json:"edges,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Reference  []int64   `json:"reference_counts"`
	Current    []int64   `json:"current_counts"`
}

// Action is what the monitor did about a window.
type Action struct {
	Kind   string    `json:"kind"` // rollback or rollback_failed
	Reason string    `json:"reason"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
}

// AlertStatus records one alert delivery.
type AlertStatus struct {
	Event  string `json:"event"`
	Status string `json:"status"`
}

func fptr(v float64) *monitor.Float { f := monitor.Float(v); return &f }

func calibrationResult(c *summary.Calibration) *CalibrationResult {
	rep := c.Report()
	cr := &CalibrationResult{Rows: rep.Rows, ECE: monitor.Float(rep.ECE), MCE: monitor.Float(rep.MCE), Brier: monitor.Float(rep.Brier)}
	for _, b := range rep.Buckets {
		cr.Buckets = append(cr.Buckets, ReliabilityBucket{Lower: b.Lower, Upper: b.Upper, Count: b.Count,
			MeanPredicted: monitor.Float(b.MeanPredicted), FractionPositive: monitor.Float(b.FractionPositive)})
	}
	return cr
}

func accuracy(c *summary.Confusion) (correct, rows int64) {
	all, _ := c.Segments()
	return all.Correct, all.Rows
}

// compute evaluates merged summaries. Cost: O(bins × features +
// segments × (bins + classes)).
func (e *Engine) compute(sums map[string]*windowSummary, start, end time.Time) *Result {
	m := &e.m
	whole := sums[""]
	r := &Result{Version: ResultVersion, Monitor: m.Name, Model: m.Model, Alias: m.Alias, WindowStart: start.UTC(), WindowEnd: end.UTC(),
		Predictions: whole.Predictions, Labelled: whole.Labelled, Status: StatusOK}
	if len(whole.Digests) > 0 {
		r.Digests = whole.Digests
	}
	isRollback := func(metric string) bool { return slices.Contains(m.RollbackOn, metric) }
	check := func(mr MetricResult) {
		v := float64(mr.Value)
		if mr.Direction == "" {
			mr.Direction = ">="
		}
		if !mr.decided && !math.IsNaN(v) {
			if mr.Direction == "<" {
				mr.Breached = v < mr.Threshold
			} else {
				mr.Breached = v >= mr.Threshold
			}
		}
		mr.Rollback = isRollback(mr.Metric)
		if mr.Breached && mr.Segment == "" {
			r.Status = StatusBreached
			if mr.Rollback {
				r.RollbackBreached = true
			}
		}
		r.Metrics = append(r.Metrics, mr)
	}
	enough := whole.Labelled >= int64(m.MinRows)

	// Calibration and accuracy, overall and per segment.
	calMetrics := func(seg string, c *CalibrationResult) {
		if c.Rows < int64(m.MinRows) {
			return
		}
		check(MetricResult{Metric: MetricECE, Segment: seg, Value: c.ECE, Threshold: *m.Metrics.ECE})
		if m.Metrics.MCE != nil {
			check(MetricResult{Metric: MetricMCE, Segment: seg, Value: c.MCE, Threshold: *m.Metrics.MCE})
		}
		if m.Metrics.Brier != nil {
			check(MetricResult{Metric: MetricBrier, Segment: seg, Value: c.Brier, Threshold: *m.Metrics.Brier})
		}
	}
	r.Calibration = calibrationResult(whole.Calibration)
	if r.Calibration.Rows > 0 {
		calMetrics("", r.Calibration)
	}
	if k, n := accuracy(whole.Confusion); n > 0 {
		r.Accuracy = fptr(float64(k) / float64(n))
	}
	out := e.ref.Outputs
	if out != nil {
		if k, n := accuracy(out.Confusion); n > 0 {
			r.ReferenceAccuracy = fptr(float64(k) / float64(n))
		}
	}
	if m.Metrics.AccuracyDrop != nil && enough && r.Accuracy != nil && r.ReferenceAccuracy != nil {
		check(MetricResult{Metric: MetricAccuracyDrop, Value: *r.ReferenceAccuracy - *r.Accuracy, Threshold: *m.Metrics.AccuracyDrop})
	}
	for _, seg := range sortedSegments(sums) {
		if seg == "" {
			continue
		}
		s := sums[seg]
		sr := SegmentResult{Segment: seg, Predictions: s.Predictions, Labelled: s.Labelled}
		if s.Calibration != nil {
			if c := calibrationResult(s.Calibration); c.Rows > 0 {
				sr.Calibration = c
				calMetrics(seg, c)
			}
		}
		if k, n := accuracy(s.Confusion); n > 0 {
			sr.Accuracy = fptr(float64(k) / float64(n))
		}
		r.Segments = append(r.Segments, sr)
	}

	// Concentration: by class, and by each segment key the reference has.
	if a := m.Metrics.ConcentrationAlpha; a != nil && out != nil && enough {
		tests := []monitor.Concentration{e.concentrationByClass(whole, *a)}
		for _, key := range m.Segments {
			if ref, ok := out.Segments[key]; ok {
				tests = append(tests, concentrationBySegment(key, ref, sums, *a))
			}
		}
		for _, c := range tests {
			r.Concentration = append(r.Concentration, c)
			mr := MetricResult{Metric: MetricConcentration, Feature: c.By, Value: c.QPValue, Threshold: *a, Direction: "<", Detail: c.Verdict}
			if c.Verdict == monitor.VerdictConcentrated {
				mr.Detail += " in " + joinComma(c.ConcentratedIn)
			}
			// Breached only when the drop is concentrated (targeted): a
			// uniform drop is what accuracy_drop is for.
			mr.Breached, mr.decided = c.Verdict == monitor.VerdictConcentrated, true
			check(mr)
		}
	}

	// Fairness per attribute, from the segment confusions.
	for _, f := range m.Metrics.Fairness {
		if !enough {
			break
		}
		fr := e.fairness(f.Attribute, sums)
		r.Fairness = append(r.Fairness, fr)
		check(MetricResult{Metric: MetricParityRatio, Feature: f.Attribute, Value: fr.DemographicParityRatio, Threshold: *f.MinRatio, Direction: "<"})
	}

	// Drift of every profiled feature, once the window has min_rows
	// predictions (drift on a handful of rows is noise).
	for _, cp := range e.ref.Columns {
		if whole.Predictions < int64(m.MinRows) {
			break
		}
		d, ok := e.featureDrift(&cp, whole)
		if !ok {
			continue
		}
		r.Drift = append(r.Drift, d)
		psi, js, w := e.driftLimits(cp.Column)
		if psi != nil {
			check(MetricResult{Metric: MetricPSI, Feature: cp.Column, Value: d.PSI, Threshold: *psi})
		}
		if js != nil {
			check(MetricResult{Metric: MetricJensenShannon, Feature: cp.Column, Value: d.JensenShannon, Threshold: *js})
		}
		if w != nil && d.Wasserstein != nil {
			check(MetricResult{Metric: MetricWasserstein, Feature: cp.Column, Value: *d.Wasserstein, Threshold: *w})
		}
	}
	if !enough && r.Status == StatusOK {
		// Too few labels to check calibration and performance: the window
		// neither extends nor breaks a breach streak.
		r.Status = StatusInsufficient
	}
	return r
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

func (e *Engine) concentrationByClass(whole *windowSummary, alpha float64) monitor.Concentration {
	ref, _ := e.ref.Outputs.Confusion.Segments()
	cur, _ := whole.Confusion.Segments()
	m := map[string]*monitor.StratumCounts{}
	get := func(c string) *monitor.StratumCounts {
		if m[c] == nil {
			m[c] = &monitor.StratumCounts{Stratum: c}
		}
		return m[c]
	}
	for _, c := range ref.Classes {
		if c.Support > 0 {
			s := get(c.Class)
			s.RefRows, s.RefCorrect = c.Support, c.Correct
		}
	}
	for _, c := range cur.Classes {
		if c.Support > 0 {
			s := get(c.Class)
			s.CurRows, s.CurCorrect = c.Support, c.Correct
		}
	}
	return monitor.ConcentrateCounts("class", flatten(m), alpha)
}

func flatten(m map[string]*monitor.StratumCounts) []monitor.StratumCounts {
	out := make([]monitor.StratumCounts, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	return out
}

func concentrationBySegment(key string, ref *summary.Confusion, sums map[string]*windowSummary, alpha float64) monitor.Concentration {
	m := map[string]*monitor.StratumCounts{}
	_, refSegs := ref.Segments()
	for _, s := range refSegs {
		m[s.Segment] = &monitor.StratumCounts{Stratum: s.Segment, RefRows: s.Rows, RefCorrect: s.Correct}
	}
	for name, s := range sums {
		k, v, ok := cutSegment(name)
		if !ok || k != key {
			continue
		}
		k2, n := accuracy(s.Confusion)
		if m[v] == nil {
			m[v] = &monitor.StratumCounts{Stratum: v}
		}
		m[v].CurRows, m[v].CurCorrect = n, k2
	}
	return monitor.ConcentrateCounts(key, flatten(m), alpha)
}

// fairness computes group fairness over the segment values of attr from
// their confusion counts (labelled predictions).
func (e *Engine) fairness(attr string, sums map[string]*windowSummary) monitor.Fairness {
	pos := e.m.PositiveClass
	var groups []monitor.GroupCounts
	for name, s := range sums {
		k, v, ok := cutSegment(name)
		if !ok || k != attr {
			continue
		}
		g := monitor.GroupCounts{Group: v}
		for key, n := range s.Confusion.Cells {
			g.Rows += n
			predPos := key.Predicted == pos
			if predPos {
				g.Selected += n
			}
			if key.Actual == pos {
				g.Positives += n
				if predPos {
					g.TruePositives += n
				}
			} else {
				g.Negatives += n
				if predPos {
					g.FalsePositives += n
				}
			}
		}
		if g.Rows > 0 {
			groups = append(groups, g)
		}
	}
	return monitor.FairnessCounts(attr, groups)
}

// driftLimits returns the thresholds for a feature: its own rule's, else
// the general rule's, statistic by statistic.
func (e *Engine) driftLimits(feature string) (psi, js, w *float64) {
	for _, d := range e.m.Metrics.Drift {
		if d.Feature == "" {
			psi, js, w = d.PSI, d.JensenShannon, d.Wasserstein
		}
	}
	for _, d := range e.m.Metrics.Drift {
		if d.Feature == feature {
			if d.PSI != nil {
				psi = d.PSI
			}
			if d.JensenShannon != nil {
				js = d.JensenShannon
			}
			if d.Wasserstein != nil {
				w = d.Wasserstein
			}
		}
	}
	return psi, js, w
}

func (e *Engine) featureDrift(cp *monitor.ColumnProfile, whole *windowSummary) (FeatureDrift, bool) {
	d := FeatureDrift{Feature: cp.Column, Kind: cp.Kind}
	nan := monitor.Float(math.NaN())
	switch cp.Kind {
	case monitor.Numerical:
		ns := whole.Numeric[cp.Column]
		if ns == nil {
			return d, false
		}
		d.Rows = ns.Binned.Total() + ns.Binned.Missing + ns.Binned.NonFinite
		d.Missing = ns.Binned.Missing
		d.Edges, d.Reference, d.Current = cp.Binned.Edges, cp.Binned.Counts, ns.Binned.Counts
		d.PSI, d.JensenShannon = nan, nan
		if psi, js, err := ns.Binned.Drift(cp.Binned); err == nil {
			d.PSI, d.JensenShannon = monitor.Float(psi), monitor.Float(js)
		}
		std := 0.0
		if cp.Std != nil {
			std = float64(*cp.Std)
		}
		d.Wasserstein = fptr(cp.Sketch.Wasserstein(ns.Sketch) / math.Max(std, 0.001))
	default:
		cs := whole.Categorical[cp.Column]
		if cs == nil {
			return d, false
		}
		for _, v := range cs.Counts {
			d.Rows += v
		}
		d.Rows += cs.Missing
		d.Missing = cs.Missing
		keys := make([]string, 0, len(cp.Categories.Counts)+len(cs.Counts))
		for k := range cp.Categories.Counts {
			keys = append(keys, k)
		}
		for k := range cs.Counts {
			if _, ok := cp.Categories.Counts[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		d.Categories = keys
		for _, k := range keys {
			d.Reference = append(d.Reference, cp.Categories.Counts[k])
			d.Current = append(d.Current, cs.Counts[k])
		}
		d.PSI, d.JensenShannon = nan, nan
		if psi, js, chi, err := cs.Drift(cp.Categories); err == nil {
			d.PSI, d.JensenShannon, d.Chi2PValue = monitor.Float(psi), monitor.Float(js), fptr(chi.PValue)
		}
	}
	return d, true
}
