package monitor

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// Column kinds.
const (
	Numerical   = "numerical"
	Categorical = "categorical"
)

// Evidently's default drift decision: which test, and its threshold.
const (
	TestKS            = "ks"
	TestChiSquare     = "chisquare"
	TestZ             = "z"
	TestWasserstein   = "wasserstein"
	TestJensenShannon = "jensenshannon"
)

// DefaultDriftShare is Evidently's default share of drifting columns above
// which (inclusive) the dataset as a whole is said to drift.
const DefaultDriftShare = 0.5

// ColumnDrift is the drift of one column between a reference and a current
// sample. Pointers are nil for statistics that do not apply to the kind.
type ColumnDrift struct {
	Column string `json:"column"`
	Kind   string `json:"type"`

	ReferenceRows         int64 `json:"reference_rows"`
	CurrentRows           int64 `json:"current_rows"`
	ReferenceMissingShare Float `json:"reference_missing_share"`
	CurrentMissingShare   Float `json:"current_missing_share"`

	// Binning used for psi and jensen_shannon: "sturges" or "values".
	Binning string `json:"binning"`
	Bins    int    `json:"bins"`

	PSI           Float `json:"psi"`
	JensenShannon Float `json:"jensen_shannon"`

	WassersteinNormed *Float `json:"wasserstein_normed,omitempty"`
	KSStatistic       *Float `json:"ks_statistic,omitempty"`
	KSPValue          *Float `json:"ks_pvalue,omitempty"`
	KSMethod          string `json:"ks_method,omitempty"`

	Chi2Statistic *Float `json:"chi2_statistic,omitempty"`
	Chi2PValue    *Float `json:"chi2_pvalue,omitempty"`

	// Evidently's default test for this column and its verdict.
	StatTest       string  `json:"stattest"`
	DriftScore     Float   `json:"drift_score"`
	StatThreshold  float64 `json:"stattest_threshold"`
	DefaultDrifted bool    `json:"stattest_drift"`

	// Breaches lists the user thresholds this column breaches.
	Breaches []Breach `json:"breaches,omitempty"`
	// Drifted is the verdict: a breached user threshold when thresholds
	// apply to this column, Evidently's default test otherwise.
	Drifted bool `json:"drifted"`
}

// Breach is a statistic past its threshold.
type Breach struct {
	Stat      string  `json:"stat"`
	Value     Float   `json:"value"`
	Threshold float64 `json:"threshold"`
}

// DriftReport is the drift of every compared column.
type DriftReport struct {
	Reference      string        `json:"reference"`
	Current        string        `json:"current"`
	Columns        []ColumnDrift `json:"columns"`
	DriftedColumns int           `json:"drifted_columns"`
	DriftShare     Float         `json:"drift_share"`
	DriftShareMax  float64       `json:"dataset_drift_threshold"`
	DatasetDrift   bool          `json:"dataset_drift"`
	Breached       bool          `json:"thresholds_breached"`
	// Columns not compared because only one file has them (when no
	// columns were named).
	OnlyInReference []string `json:"only_in_reference,omitempty"`
	OnlyInCurrent   []string `json:"only_in_current,omitempty"`
}

// DriftOptions select and configure the compared columns.
type DriftOptions struct {
	// Columns to compare; empty means every column present in both files.
	Columns []string
	// Categorical forces these columns to be categorical even when all
	// their values are numbers.
	Categorical []string
	// Thresholds are the user's per-statistic limits.
	Thresholds Thresholds
	// DriftShare is the dataset drift threshold (DefaultDriftShare if 0).
	DriftShare float64
}

// CompareTables computes the drift report of cur against ref.
func CompareTables(ref, cur *Table, opts DriftOptions) (*DriftReport, error) {
	share := opts.DriftShare
	if share == 0 {
		share = DefaultDriftShare
	}
	rep := &DriftReport{Reference: ref.Path, Current: cur.Path, DriftShareMax: share}
	names := opts.Columns
	if len(names) == 0 {
		for _, c := range ref.Columns {
			if cur.Column(c.Name) != nil {
				names = append(names, c.Name)
			} else {
				rep.OnlyInReference = append(rep.OnlyInReference, c.Name)
			}
		}
		for _, c := range cur.Columns {
			if ref.Column(c.Name) == nil {
				rep.OnlyInCurrent = append(rep.OnlyInCurrent, c.Name)
			}
		}
	}
	for _, name := range names {
		rc, cc := ref.Column(name), cur.Column(name)
		if rc == nil {
			return nil, fmt.Errorf("column %q not in reference: %w", name, ErrUnknownColumn)
		}
		if cc == nil {
			return nil, fmt.Errorf("column %q not in current: %w", name, ErrUnknownColumn)
		}
		kind := Numerical
		if !rc.Numeric() || !cc.Numeric() || slices.Contains(opts.Categorical, name) {
			kind = Categorical
		}
		var d ColumnDrift
		var err error
		if kind == Numerical {
			var rs, cs []float64
			var wg sync.WaitGroup
			wg.Go(func() { rs = finiteSorted(rc.Floats()) })
			cs = finiteSorted(cc.Floats())
			wg.Wait()
			d, err = NumericDrift(rs, cs)
		} else {
			d, err = categoricalColumns(rc, cc)
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		d.Column = name
		d.ReferenceRows, d.CurrentRows = rc.Rows, cc.Rows
		d.ReferenceMissingShare, d.CurrentMissingShare = Float(rc.MissingShare()), Float(cc.MissingShare())
		d.Breaches = opts.Thresholds.Check(&d)
		if opts.Thresholds.AppliesTo(&d) {
			d.Drifted = len(d.Breaches) > 0
		} else {
			d.Drifted = d.DefaultDrifted
		}
		if len(d.Breaches) > 0 {
			rep.Breached = true
		}
		if d.Drifted {
			rep.DriftedColumns++
		}
		rep.Columns = append(rep.Columns, d)
	}
	if len(rep.Columns) > 0 {
		rep.DriftShare = Float(float64(rep.DriftedColumns) / float64(len(rep.Columns)))
		rep.DatasetDrift = float64(rep.DriftShare) >= share
	}
	return rep, nil
}

// NumericDrift compares two sorted samples of finite numbers with
// Evidently's numerical statistics. Both must be non-empty.
func NumericDrift(ref, cur []float64) (ColumnDrift, error) {
	if len(ref) == 0 || len(cur) == 0 {
		return ColumnDrift{}, ErrEmptyColumn
	}
	d := ColumnDrift{Kind: Numerical}
	nRef, nCur := int64(len(ref)), int64(len(cur))
	var rc, cc []int64
	if countDistinctUpTo(ref, stats.MaxDistinctForValueBins+1) > stats.MaxDistinctForValueBins {
		lo := math.Min(ref[0], cur[0])
		hi := math.Max(ref[len(ref)-1], cur[len(cur)-1])
		edges := stats.SturgesEdges(lo, hi, len(ref)+len(cur))
		rc = stats.HistogramSorted(ref, edges)
		cc = stats.HistogramSorted(cur, edges)
		d.Binning = "sturges"
	} else {
		rc, cc = valueCounts(ref, cur)
		d.Binning = "values"
	}
	d.Bins = len(rc)
	d.PSI, d.JensenShannon = psiJS(rc, cc, nRef, nCur)
	// The two walks over the samples run side by side.
	var w Float
	var wg sync.WaitGroup
	wg.Go(func() { w = Float(stats.WassersteinNormed(ref, cur)) })
	ks := stats.KS2Samp(ref, cur)
	wg.Wait()
	d.WassersteinNormed = &w
	kss, ksp := Float(ks.Statistic), Float(ks.PValue)
	d.KSStatistic, d.KSPValue, d.KSMethod = &kss, &ksp, string(ks.Method)

	// Evidently's default test (get_stattest with no stattest configured).
	// Only whether there are at most five distinct values matters.
	nValues := countDistinctUnionUpTo(ref, cur, 6)
	switch {
	case nRef <= 1000 && nValues <= 5:
		rcv, ccv := valueCounts(ref, cur)
		if nValues > 2 {
			chi := stats.ChiSquare(chiObsExp(rcv, ccv, nRef, nCur))
			d.setDefault(TestChiSquare, chi.PValue, 0.05, chi.PValue < 0.05)
		} else {
			p := zTest(rcv, ccv, nRef, nCur, countDistinct(ref), countDistinct(cur), ref[0] == cur[0])
			d.setDefault(TestZ, p, 0.05, p < 0.05)
		}
	case nRef <= 1000:
		d.setDefault(TestKS, ks.PValue, 0.05, ks.PValue <= 0.05)
	case nValues <= 5:
		d.setDefault(TestJensenShannon, float64(d.JensenShannon), 0.1, float64(d.JensenShannon) >= 0.1)
	default:
		d.setDefault(TestWasserstein, float64(w), 0.1, float64(w) >= 0.1)
	}
	return d, nil
}

func (d *ColumnDrift) setDefault(test string, score, threshold float64, drift bool) {
	d.StatTest, d.DriftScore, d.StatThreshold, d.DefaultDrifted = test, Float(score), threshold, drift
}

// psiJS computes PSI (empty bins floored) and the Jensen-Shannon distance
// (no floor) from bin counts, as Evidently's get_binned_data does.
func psiJS(rc, cc []int64, nRef, nCur int64) (Float, Float) {
	rp, cp := stats.Shares(rc, nRef), stats.Shares(cc, nCur)
	js := stats.JensenShannon(rp, cp)
	psi := stats.PSI(stats.FillZeros(rp), stats.FillZeros(cp))
	return Float(psi), Float(js)
}

func countDistinct(sorted []float64) int {
	return countDistinctUpTo(sorted, len(sorted))
}

// countDistinctUpTo counts the distinct values of sorted, stopping at
// limit.
func countDistinctUpTo(sorted []float64, limit int) int {
	n := 0
	for i, v := range sorted {
		if i == 0 || v != sorted[i-1] {
			n++
			if n >= limit {
				break
			}
		}
	}
	return n
}

// countDistinctUnionUpTo counts the distinct values of the union of two
// sorted samples, stopping at limit.
func countDistinctUnionUpTo(a, b []float64, limit int) int {
	n := 0
	i, j := 0, 0
	for (i < len(a) || j < len(b)) && n < limit {
		var v float64
		if j >= len(b) || (i < len(a) && a[i] <= b[j]) {
			v = a[i]
		} else {
			v = b[j]
		}
		n++
		for i < len(a) && a[i] == v {
			i++
		}
		for j < len(b) && b[j] == v {
			j++
		}
	}
	return n
}

// valueCounts counts each distinct value of the union of two sorted
// samples, in ascending order.
func valueCounts(a, b []float64) (ac, bc []int64) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v float64
		if j >= len(b) || (i < len(a) && a[i] <= b[j]) {
			v = a[i]
		} else {
			v = b[j]
		}
		var x, y int64
		for i < len(a) && a[i] == v {
			i++
			x++
		}
		for j < len(b) && b[j] == v {
			j++
			y++
		}
		ac, bc = append(ac, x), append(bc, y)
	}
	return ac, bc
}

// chiObsExp builds Evidently's chi-square inputs: observed current counts
// and expected counts = reference counts * (n_cur / n_ref).
func chiObsExp(rc, cc []int64, nRef, nCur int64) (obs, exp []float64) {
	k := float64(nCur) / float64(nRef)
	obs = make([]float64, len(rc))
	exp = make([]float64, len(rc))
	for i := range rc {
		obs[i] = float64(cc[i])
		exp[i] = float64(rc[i]) * k
	}
	return obs, exp
}

// zTest is Evidently's z-test: the first key in sorted order against the
// rest. counts are aligned on sorted keys.
func zTest(rc, cc []int64, nRef, nCur int64, refDistinct, curDistinct int, sameFirst bool) float64 {
	if refDistinct == 1 && curDistinct == 1 && sameFirst {
		return 1
	}
	_, p := stats.ZTestProportions(nRef-rc[0], nRef, nCur-cc[0], nCur)
	return p
}

// categoricalColumns compares two columns by their text values.
func categoricalColumns(rc, cc *Column) (ColumnDrift, error) {
	if !rc.HasText() || !cc.HasText() {
		return ColumnDrift{}, fmt.Errorf("too many distinct values for a categorical column: %w", ErrInvalidInput)
	}
	ref := textCounts(rc)
	cur := textCounts(cc)
	return CategoricalDrift(ref, cur)
}

func textCounts(c *Column) map[string]int64 {
	codes, dict := c.Text()
	n := make([]int64, len(dict))
	for _, k := range codes {
		if k >= 0 {
			n[k]++
		}
	}
	m := make(map[string]int64, len(dict))
	for i, v := range dict {
		if n[i] > 0 {
			m[v] = n[i]
		}
	}
	return m
}

// CategoricalDrift compares the value counts of a categorical column
// (missing values excluded) with Evidently's categorical statistics.
func CategoricalDrift(ref, cur map[string]int64) (ColumnDrift, error) {
	keys := make([]string, 0, len(ref)+len(cur))
	var nRef, nCur int64
	for k, v := range ref {
		keys = append(keys, k)
		nRef += v
	}
	for k, v := range cur {
		if _, ok := ref[k]; !ok {
			keys = append(keys, k)
		}
		nCur += v
	}
	if nRef == 0 || nCur == 0 {
		return ColumnDrift{}, ErrEmptyColumn
	}
	sort.Strings(keys)
	rc := make([]int64, len(keys))
	cc := make([]int64, len(keys))
	for i, k := range keys {
		rc[i], cc[i] = ref[k], cur[k]
	}
	d := ColumnDrift{Kind: Categorical, Binning: "values", Bins: len(keys)}
	d.PSI, d.JensenShannon = psiJS(rc, cc, nRef, nCur)
	chi := stats.ChiSquare(chiObsExp(rc, cc, nRef, nCur))
	cs, cp := Float(chi.Statistic), Float(chi.PValue)
	d.Chi2Statistic, d.Chi2PValue = &cs, &cp
	nValues := len(keys)
	switch {
	case nRef <= 1000 && nValues > 2:
		d.setDefault(TestChiSquare, chi.PValue, 0.05, chi.PValue < 0.05)
	case nRef <= 1000:
		sameFirst := len(ref) == 1 && len(cur) == 1 && keys[0] == firstKey(ref) && keys[0] == firstKey(cur)
		p := zTest(rc, cc, nRef, nCur, len(ref), len(cur), sameFirst)
		d.setDefault(TestZ, p, 0.05, p < 0.05)
	default:
		d.setDefault(TestJensenShannon, float64(d.JensenShannon), 0.1, float64(d.JensenShannon) >= 0.1)
	}
	return d, nil
}

func firstKey(m map[string]int64) string {
	for k := range m {
		return k
	}
	return ""
}
