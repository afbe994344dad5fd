package monitor

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// ClassMetrics are scikit-learn's per-class precision and recall (0 when
// undefined, sklearn's zero_division default) with their counts.
type ClassMetrics struct {
	Class     string `json:"class"`
	Support   int64  `json:"support"`
	Predicted int64  `json:"predicted"`
	Correct   int64  `json:"correct"`
	Precision Float  `json:"precision"`
	Recall    Float  `json:"recall"`
}

// Performance is accuracy and per-class metrics.
type Performance struct {
	Rows     int64          `json:"rows"`
	Accuracy Float          `json:"accuracy"`
	Classes  []ClassMetrics `json:"classes"`
}

// Evaluate computes accuracy_score and precision/recall per class (sklearn
// average=None) over the union of actual and predicted labels.
func Evaluate(actual, predicted []string) Performance {
	type cc struct{ support, predicted, correct int64 }
	m := map[string]*cc{}
	get := func(k string) *cc {
		if m[k] == nil {
			m[k] = &cc{}
		}
		return m[k]
	}
	var correct int64
	for i := range actual {
		get(actual[i]).support++
		get(predicted[i]).predicted++
		if actual[i] == predicted[i] {
			get(actual[i]).correct++
			correct++
		}
	}
	p := Performance{Rows: int64(len(actual))}
	if p.Rows > 0 {
		p.Accuracy = Float(float64(correct) / float64(p.Rows))
	} else {
		p.Accuracy = Float(math.NaN())
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := m[k]
		cm := ClassMetrics{Class: k, Support: c.support, Predicted: c.predicted, Correct: c.correct}
		if c.predicted > 0 {
			cm.Precision = Float(float64(c.correct) / float64(c.predicted))
		}
		if c.support > 0 {
			cm.Recall = Float(float64(c.correct) / float64(c.support))
		}
		p.Classes = append(p.Classes, cm)
	}
	return p
}

// ProportionTest compares the accuracy of one stratum (a class or a
// segment) between the reference and the current window.
type ProportionTest struct {
	Stratum         string `json:"stratum"`
	RefRows         int64  `json:"reference_rows"`
	CurRows         int64  `json:"current_rows"`
	RefAccuracy     Float  `json:"reference_accuracy"`
	CurAccuracy     Float  `json:"current_accuracy"`
	Change          Float  `json:"change"`
	Z               Float  `json:"z"`
	PValue          Float  `json:"p_value"`
	PValueHolm      Float  `json:"p_value_holm"`
	SignificantDrop bool   `json:"significant_drop"`
}

// Concentration says whether a change in accuracy between two windows is
// uniform across strata or concentrated in some of them.
//
// Method: per stratum, a two-sided two-proportion z-test with pooled
// variance on the share of correct predictions (reference vs current),
// p-values adjusted with Holm's step-down procedure; across strata,
// Cochran's Q test of heterogeneity of the per-stratum accuracy changes
// (inverse-variance weights, unpooled variances with the Haldane-Anscombe
// +0.5 correction; Q ~ chi2(k-1)). The drop is "concentrated" when Q is
// significant at Alpha, in the strata whose Holm-adjusted drop is
// significant and larger than the pooled (inverse-variance weighted) change;
// "uniform" when accuracy dropped significantly otherwise; "none" else.
// See docs/monitoring.md.
type Concentration struct {
	By             string           `json:"by"` // "class" or the segment column
	Overall        ProportionTest   `json:"overall"`
	Strata         []ProportionTest `json:"strata"`
	Q              Float            `json:"heterogeneity_q"`
	QDF            int              `json:"heterogeneity_df"`
	QPValue        Float            `json:"heterogeneity_p_value"`
	PooledChange   Float            `json:"pooled_change"`
	Alpha          float64          `json:"alpha"`
	Verdict        string           `json:"verdict"` // none, uniform, concentrated
	ConcentratedIn []string         `json:"concentrated_in,omitempty"`
}

// Verdicts of a concentration test.
const (
	VerdictNone         = "none"
	VerdictUniform      = "uniform"
	VerdictConcentrated = "concentrated"
)

// proportionTest is the pooled two-proportion z-test (statsmodels
// proportions_ztest with the pooled variance); z is current minus
// reference. When the pooled variance is 0 (both windows all right or all
// wrong) z is 0 and p is 1.
func proportionTest(name string, k1, n1, k2, n2 int64) ProportionTest {
	t := ProportionTest{Stratum: name, RefRows: n1, CurRows: n2}
	nan := Float(math.NaN())
	t.RefAccuracy, t.CurAccuracy, t.Change, t.Z, t.PValue = nan, nan, nan, nan, nan
	if n1 == 0 || n2 == 0 {
		return t
	}
	p1 := float64(k1) / float64(n1)
	p2 := float64(k2) / float64(n2)
	t.RefAccuracy, t.CurAccuracy, t.Change = Float(p1), Float(p2), Float(p2-p1)
	P := float64(k1+k2) / float64(n1+n2)
	se := math.Sqrt(P * (1 - P) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		t.Z, t.PValue = 0, 1
		return t
	}
	z := (p2 - p1) / se
	t.Z = Float(z)
	t.PValue = Float(2 * stats.NormSF(math.Abs(z)))
	return t
}

// Holm returns Holm's step-down adjusted p-values (statsmodels
// multipletests method="holm"): sort ascending, p_(i) * (m - i) for i from
// 0, running maximum, capped at 1. NaN p-values are left out and stay NaN.
func Holm(p []float64) []float64 {
	idx := make([]int, 0, len(p))
	for i, v := range p {
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	out := make([]float64, len(p))
	for i := range out {
		out[i] = math.NaN()
	}
	m := len(idx)
	run := 0.0
	for r, i := range idx {
		v := math.Min(1, p[i]*float64(m-r))
		run = math.Max(run, v)
		out[i] = run
	}
	return out
}

// CochranQ is the heterogeneity test of per-stratum changes in a
// proportion: d = p2 - p1, v = p1(1-p1)/n1 + p2(1-p2)/n2 with each p
// taken as (k+0.5)/(n+1), w = 1/v, Q = sum w (d - dbar)^2 with dbar the
// weighted mean, compared to chi2(k-1). Strata with an empty window are
// skipped.
func CochranQ(k1, n1, k2, n2 []int64) (q float64, df int, p, dbar float64) {
	var ws, wd []float64
	for i := range k1 {
		if n1[i] == 0 || n2[i] == 0 {
			continue
		}
		a := float64(k1[i]) / float64(n1[i])
		b := float64(k2[i]) / float64(n2[i])
		a1 := (float64(k1[i]) + 0.5) / (float64(n1[i]) + 1)
		b1 := (float64(k2[i]) + 0.5) / (float64(n2[i]) + 1)
		v := a1*(1-a1)/float64(n1[i]) + b1*(1-b1)/float64(n2[i])
		ws = append(ws, 1/v)
		wd = append(wd, b-a)
	}
	if len(ws) < 2 {
		return math.NaN(), 0, math.NaN(), math.NaN()
	}
	var sw, swd float64
	for i := range ws {
		sw += ws[i]
		swd += ws[i] * wd[i]
	}
	dbar = swd / sw
	for i := range ws {
		q += ws[i] * (wd[i] - dbar) * (wd[i] - dbar)
	}
	df = len(ws) - 1
	return q, df, stats.Chi2SF(q, float64(df)), dbar
}

// Concentrate runs the concentration test of cur against ref, by actual
// class (strata == nil) or by the given row strata.
func Concentrate(by string, refActual, refPred, refStrata, curActual, curPred, curStrata []string, alpha float64) Concentration {
	m := map[string]*StratumCounts{}
	get := func(s string) *StratumCounts {
		if m[s] == nil {
			m[s] = &StratumCounts{Stratum: s}
		}
		return m[s]
	}
	for i := range refActual {
		s := refActual[i]
		if refStrata != nil {
			s = refStrata[i]
		}
		c := get(s)
		c.RefRows++
		if refActual[i] == refPred[i] {
			c.RefCorrect++
		}
	}
	for i := range curActual {
		s := curActual[i]
		if curStrata != nil {
			s = curStrata[i]
		}
		c := get(s)
		c.CurRows++
		if curActual[i] == curPred[i] {
			c.CurCorrect++
		}
	}
	strata := make([]StratumCounts, 0, len(m))
	for _, c := range m {
		strata = append(strata, *c)
	}
	return ConcentrateCounts(by, strata, alpha)
}

// StratumCounts are the correct predictions and rows of one stratum in
// the reference and the current window: all a concentration test needs,
// so that it runs on summaries (summary.Confusion) as well as on rows.
type StratumCounts struct {
	Stratum             string
	RefCorrect, RefRows int64
	CurCorrect, CurRows int64
}

// ConcentrateCounts runs the concentration test on per-stratum counts
// (any order; strata are reported sorted by name). Cost: O(strata).
func ConcentrateCounts(by string, strata []StratumCounts, alpha float64) Concentration {
	strata = slices.Clone(strata)
	sort.Slice(strata, func(i, j int) bool { return strata[i].Stratum < strata[j].Stratum })
	var all StratumCounts
	for _, c := range strata {
		all.RefCorrect += c.RefCorrect
		all.RefRows += c.RefRows
		all.CurCorrect += c.CurCorrect
		all.CurRows += c.CurRows
	}
	res := Concentration{By: by, Alpha: alpha, Overall: proportionTest("all", all.RefCorrect, all.RefRows, all.CurCorrect, all.CurRows)}
	var ps []float64
	var k1, n1, k2, n2 []int64
	for _, c := range strata {
		t := proportionTest(c.Stratum, c.RefCorrect, c.RefRows, c.CurCorrect, c.CurRows)
		res.Strata = append(res.Strata, t)
		ps = append(ps, float64(t.PValue))
		k1, n1, k2, n2 = append(k1, c.RefCorrect), append(n1, c.RefRows), append(k2, c.CurCorrect), append(n2, c.CurRows)
	}
	for i, h := range Holm(ps) {
		res.Strata[i].PValueHolm = Float(h)
		res.Strata[i].SignificantDrop = h < alpha && res.Strata[i].Change < 0
	}
	q, df, qp, dbar := CochranQ(k1, n1, k2, n2)
	res.Q, res.QDF, res.QPValue, res.PooledChange = Float(q), df, Float(qp), Float(dbar)
	var drops, worse []string
	for _, t := range res.Strata {
		if t.SignificantDrop {
			drops = append(drops, t.Stratum)
			if float64(t.Change) < dbar {
				worse = append(worse, t.Stratum)
			}
		}
	}
	overallDrop := float64(res.Overall.PValue) < alpha && res.Overall.Change < 0
	switch {
	case qp < alpha && len(worse) > 0:
		res.Verdict, res.ConcentratedIn = VerdictConcentrated, worse
	case overallDrop || len(drops) > 0:
		res.Verdict = VerdictUniform
	default:
		res.Verdict = VerdictNone
	}
	return res
}

// GroupFairness is one group's rates for a binary prediction.
type GroupFairness struct {
	Group         string `json:"group"`
	Rows          int64  `json:"rows"`
	SelectionRate Float  `json:"selection_rate"`
	TPR           Float  `json:"true_positive_rate"`
	FPR           Float  `json:"false_positive_rate"`
	// Ratio of this group's selection rate to the highest one.
	ImpactRatio Float `json:"impact_ratio"`
}

// Fairness is fairlearn's group metrics for one protected attribute.
type Fairness struct {
	Attribute                   string          `json:"attribute"`
	Groups                      []GroupFairness `json:"groups"`
	DemographicParityDifference Float           `json:"demographic_parity_difference"`
	DemographicParityRatio      Float           `json:"demographic_parity_ratio"`
	EqualizedOddsDifference     Float           `json:"equalized_odds_difference"`
	FourFifthsRule              bool            `json:"four_fifths_rule_passed"`
}

// EvaluateFairness computes, for binary outcomes (true = positive class)
// and predictions per group: selection rate P(pred=1|g), TPR and FPR;
// demographic parity difference (max - min selection rate) and ratio
// (min / max), equalized odds difference (the larger of the TPR and FPR
// max-min differences), as fairlearn defines them with method
// "between_groups"; and the four-fifths rule (every group's selection rate
// is at least 0.8 of the highest). A rate undefined for a group (no
// positives for TPR, no negatives for FPR) is NaN and left out of the
// differences.
func EvaluateFairness(attr string, groups []string, actual, predicted []bool) Fairness {
	m := map[string]*GroupCounts{}
	for i, g := range groups {
		c := m[g]
		if c == nil {
			c = &GroupCounts{Group: g}
			m[g] = c
		}
		c.Rows++
		if predicted[i] {
			c.Selected++
		}
		if actual[i] {
			c.Positives++
			if predicted[i] {
				c.TruePositives++
			}
		} else {
			c.Negatives++
			if predicted[i] {
				c.FalsePositives++
			}
		}
	}
	counts := make([]GroupCounts, 0, len(m))
	for _, c := range m {
		counts = append(counts, *c)
	}
	return FairnessCounts(attr, counts)
}

// GroupCounts are the counts behind one group's fairness rates.
type GroupCounts struct {
	Group                     string
	Rows, Selected            int64 // rows, rows predicted positive
	Positives, TruePositives  int64 // actual positive, and predicted positive among them
	Negatives, FalsePositives int64 // actual negative, and predicted positive among them
}

// FairnessCounts is EvaluateFairness on per-group counts (any order).
// Cost: O(groups).
func FairnessCounts(attr string, counts []GroupCounts) Fairness {
	type cnt struct{ n, sel, pos, tp, neg, fp int64 }
	m := map[string]*cnt{}
	for _, g := range counts {
		m[g.Group] = &cnt{g.Rows, g.Selected, g.Positives, g.TruePositives, g.Negatives, g.FalsePositives}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	f := Fairness{Attribute: attr}
	rate := func(a, b int64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	selMin, selMax := math.Inf(1), math.Inf(-1)
	tMin, tMax, fMin, fMax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, g := range names {
		c := m[g]
		gf := GroupFairness{Group: g, Rows: c.n, SelectionRate: Float(rate(c.sel, c.n)), TPR: Float(rate(c.tp, c.pos)), FPR: Float(rate(c.fp, c.neg))}
		f.Groups = append(f.Groups, gf)
		s, t, fp := float64(gf.SelectionRate), float64(gf.TPR), float64(gf.FPR)
		selMin, selMax = math.Min(selMin, s), math.Max(selMax, s)
		if !math.IsNaN(t) {
			tMin, tMax = math.Min(tMin, t), math.Max(tMax, t)
		}
		if !math.IsNaN(fp) {
			fMin, fMax = math.Min(fMin, fp), math.Max(fMax, fp)
		}
	}
	if len(names) == 0 {
		nan := Float(math.NaN())
		f.DemographicParityDifference, f.DemographicParityRatio, f.EqualizedOddsDifference = nan, nan, nan
		return f
	}
	f.DemographicParityDifference = Float(selMax - selMin)
	if selMax > 0 {
		f.DemographicParityRatio = Float(selMin / selMax)
	} else {
		f.DemographicParityRatio = Float(math.NaN())
	}
	eo := math.NaN()
	if !math.IsInf(tMin, 0) {
		eo = tMax - tMin
	}
	if !math.IsInf(fMin, 0) {
		if math.IsNaN(eo) {
			eo = fMax - fMin
		} else {
			eo = math.Max(eo, fMax-fMin)
		}
	}
	f.EqualizedOddsDifference = Float(eo)
	f.FourFifthsRule = true
	for i := range f.Groups {
		r := math.NaN()
		if selMax > 0 {
			r = float64(f.Groups[i].SelectionRate) / selMax
		}
		f.Groups[i].ImpactRatio = Float(r)
		if !(r >= 0.8) {
			f.FourFifthsRule = false
		}
	}
	return f
}

// Labels returns a column's values as class names and a validity mask
// (false where missing). Numbers are written in their shortest form so
// that "1" and "1.0" name the same class.
func Labels(c *Column) ([]string, []bool, error) {
	out := make([]string, c.Rows)
	valid := make([]bool, c.Rows)
	if c.Numeric() {
		for i, v := range c.Floats() {
			if !math.IsNaN(v) {
				out[i], valid[i] = strconv.FormatFloat(v, 'g', -1, 64), true
			}
		}
		return out, valid, nil
	}
	if !c.HasText() {
		return nil, nil, fmt.Errorf("column %q: too many distinct values for labels: %w", c.Name, ErrInvalidInput)
	}
	codes, dict := c.Text()
	for i, k := range codes {
		if k >= 0 {
			out[i], valid[i] = dict[k], true
		}
	}
	return out, valid, nil
}
