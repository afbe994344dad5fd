package contract

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
)

// numCollector gathers the numeric values of one column; non-null values
// that are not numbers are counted and make the expectation fail (pandas
// cannot aggregate an object column either).
type numCollector struct {
	col      int
	maxEx    int
	count    int64
	nonNum   int64
	examples []Example
}

func (n *numCollector) column() int  { return n.col }
func (n *numCollector) cost() int    { return 1 }
func (q *quantileChecker) cost() int { return 2 }

func (n *numCollector) value(rec []Cell, line int64) (float64, bool) {
	c := &rec[n.col]
	if c.Kind == KindNull {
		return 0, false
	}
	f, ok := c.Float()
	if !ok || c.Kind == KindBool {
		n.nonNum++
		if len(n.examples) < n.maxEx {
			n.examples = append(n.examples, Example{Line: line, Value: c.exampleValue(), Note: "not a number"})
		}
		return 0, false
	}
	if math.IsNaN(f) {
		return 0, false // pandas reads NaN as missing and skips it
	}
	n.count++
	return f, true
}

func (n *numCollector) report(r *Result) bool {
	if n.nonNum > 0 {
		r.Status = StatusFail
		r.UnexpectedCount = &n.nonNum
		r.Examples = n.examples
		r.Detail = fmt.Sprintf("%d non-numeric values", n.nonNum)
		return false
	}
	return true
}

type aggKind int

const (
	aggMean aggKind = iota
	aggStdev
	aggMin
	aggMax
	aggSum
)

// aggChecker computes mean, sample standard deviation (ddof=1, as pandas'
// Series.std), min, max or sum in one pass (Welford's algorithm for the
// moments).
type aggChecker struct {
	numCollector
	kind      aggKind
	r         rng
	mean, m2  float64
	min, max  float64
	sum, comp float64
}

func (a *aggChecker) observe(rec []Cell, line int64) {
	f, ok := a.value(rec, line)
	if !ok {
		return
	}
	// Each aggregate keeps only its own state (no NaN here: value skips
	// them, so plain comparisons are math.Min/Max).
	switch a.kind {
	case aggMin:
		if a.count == 1 || f < a.min {
			a.min = f
		}
	case aggMax:
		if a.count == 1 || f > a.max {
			a.max = f
		}
	case aggStdev:
		// Welford's update; the sample variance is m2/(n-1).
		d := f - a.mean
		a.mean += d / float64(a.count)
		a.m2 += d * (f - a.mean)
	default:
		// Neumaier-compensated sum: the mean is sum/n, as pandas computes it.
		t := a.sum + f
		if math.Abs(a.sum) >= math.Abs(f) {
			a.comp += (a.sum - t) + f
		} else {
			a.comp += (f - t) + a.sum
		}
		a.sum = t
	}
}

func (a *aggChecker) finish(_ int64, r *Result) {
	if !a.report(r) {
		return
	}
	var v float64
	switch {
	case a.kind == aggSum:
		v = a.sum + a.comp
	case a.count == 0 || (a.kind == aggStdev && a.count < 2):
		r.Status, r.Detail = StatusFail, "not enough numeric values"
		return
	case a.kind == aggMean:
		v = (a.sum + a.comp) / float64(a.count)
	case a.kind == aggStdev:
		v = math.Sqrt(a.m2 / float64(a.count-1))
	case a.kind == aggMin:
		v = a.min
	case a.kind == aggMax:
		v = a.max
	}
	r.Observed = jsonFloat(v)
	r.Status = StatusPass
	if !a.r.contains(v) {
		r.Status = StatusFail
	}
}

// jsonFloat keeps non-finite values representable in JSON (as strings).
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

func buildAggregate(kind aggKind) builder {
	return func(env *buildEnv, kw *kwargs, r *Result) checker {
		col := env.column(kw, r)
		rg := readRange(kw, false)
		if col < 0 || kw.err != nil {
			return nil
		}
		return &aggChecker{numCollector: numCollector{col: col, maxEx: env.limits.MaxExamples}, kind: kind, r: rg}
	}
}

// sampler keeps every value up to cap, then a uniform reservoir sample of
// cap values (Vitter's algorithm R, fixed seed, so runs are reproducible).
type sampler struct {
	cap  int
	seen int64
	vals []float64
	rnd  *rand.Rand
}

func newSampler(cap int) *sampler {
	return &sampler{cap: cap, rnd: rand.New(rand.NewPCG(0x637573746f6479, 1))}
}

func (s *sampler) add(f float64) {
	s.seen++
	if len(s.vals) < s.cap {
		s.vals = append(s.vals, f)
		return
	}
	if j := s.rnd.Int64N(s.seen); j < int64(s.cap) {
		s.vals[j] = f
	}
}

func (s *sampler) exact() bool { return s.seen <= int64(s.cap) }

// rankErrorBound is ε such that, by the Dvoretzky–Kiefer–Wolfowitz
// inequality, the sample's empirical CDF is within ε of the column's at every
// point with probability at least 1-1e-6: ε = sqrt(ln(2/δ)/(2k)), δ = 1e-6.
// Zero when exact.
func (s *sampler) rankErrorBound() float64 {
	if s.exact() {
		return 0
	}
	return math.Sqrt(math.Log(2/1e-6) / (2 * float64(len(s.vals))))
}

// quantile follows numpy.quantile's methods (pandas Series.quantile
// "interpolation"): with sorted x and virtual index h = q(n-1), "nearest"
// takes x[round-half-to-even(h)], "lower" x[floor h], "higher" x[ceil h],
// "midpoint" their mean and "linear" interpolates. GE's pandas engine uses
// "nearest" unless allow_relative_error names another method.
func quantile(sorted []float64, q float64, method string) float64 {
	n := len(sorted)
	h := q * float64(n-1)
	lo := int(math.Floor(h))
	hi := int(math.Ceil(h))
	lo, hi = min(max(lo, 0), n-1), min(max(hi, 0), n-1)
	switch method {
	case "lower":
		return sorted[lo]
	case "higher":
		return sorted[hi]
	case "midpoint":
		return (sorted[lo] + sorted[hi]) / 2
	case "linear":
		return sorted[lo] + (h-float64(lo))*(sorted[hi]-sorted[lo])
	}
	i := int(math.RoundToEven(h))
	return sorted[min(max(i, 0), n-1)]
}

// quantileRanks appends the indexes [quantile] may read for q over n
// sorted values.
func quantileRanks(n int, q float64, ks []int) []int {
	h := q * float64(n-1)
	for _, i := range []int{int(math.Floor(h)), int(math.Ceil(h)), int(math.RoundToEven(h))} {
		ks = append(ks, min(max(i, 0), n-1))
	}
	return ks
}

// selectRanks reorders v so that v[k] is the value a full sort would put
// there, for every k in ks: successive quickselects over the part right of
// the previous rank, O(len(v)) on average instead of a sort's
// O(len(v) log len(v)).
func selectRanks(v []float64, ks []int) {
	slices.Sort(ks)
	lo := 0
	for _, k := range ks {
		if k < lo {
			continue
		}
		quickselect(v[lo:], k-lo, 2*bits.Len(uint(len(v))))
		lo = k + 1
	}
}

// quickselect places the k-th smallest value of a at a[k], smaller or
// equal values before it and greater or equal after. Past depth
// partitions (an adversarial input) it sorts.
func quickselect(a []float64, k, depth int) {
	for len(a) > 16 {
		if depth == 0 {
			slices.Sort(a)
			return
		}
		depth--
		// Median of three as the pivot, then Hoare partitioning.
		m := len(a) / 2
		if a[m] < a[0] {
			a[m], a[0] = a[0], a[m]
		}
		if a[len(a)-1] < a[0] {
			a[len(a)-1], a[0] = a[0], a[len(a)-1]
		}
		if a[len(a)-1] < a[m] {
			a[len(a)-1], a[m] = a[m], a[len(a)-1]
		}
		pivot := a[m]
		i, j := 0, len(a)-1
		for i <= j {
			for a[i] < pivot {
				i++
			}
			for pivot < a[j] {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			a = a[:j+1]
		case k >= i:
			a, k = a[i:], k-i
		default:
			return // j < k < i: a[k] equals the pivot and is in place
		}
	}
	slices.Sort(a)
}

type quantileChecker struct {
	numCollector
	s         *sampler
	qs        []float64
	ranges    []rng
	method    string
	medianRng *rng
}

func (q *quantileChecker) observe(rec []Cell, line int64) {
	if f, ok := q.value(rec, line); ok {
		q.s.add(f)
	}
}

func (q *quantileChecker) finish(_ int64, r *Result) {
	if !q.report(r) {
		return
	}
	if len(q.s.vals) == 0 {
		r.Status, r.Detail = StatusFail, "no numeric values"
		return
	}
	vals := q.s.vals
	// Only the order statistics the quantiles read are placed (no NaN:
	// numCollector skips them).
	var ks []int
	if q.medianRng != nil {
		ks = quantileRanks(len(vals), 0.5, ks)
	}
	for _, p := range q.qs {
		ks = quantileRanks(len(vals), p, ks)
	}
	selectRanks(vals, ks)
	r.Status = StatusPass
	if q.medianRng != nil {
		med := quantile(vals, 0.5, "linear") // pandas Series.median
		r.Observed = jsonFloat(med)
		if !q.medianRng.contains(med) {
			r.Status = StatusFail
		}
	} else {
		got := make([]any, len(q.qs))
		for i, p := range q.qs {
			v := quantile(vals, p, q.method)
			got[i] = jsonFloat(v)
			if !q.ranges[i].contains(v) {
				r.Status = StatusFail
			}
		}
		r.Observed = map[string]any{"quantiles": q.qs, "values": got}
	}
	if !q.s.exact() {
		r.Detail = fmt.Sprintf("estimated from a uniform sample of %d of %d values; rank error <= %.4f with probability >= 1-1e-6", len(q.s.vals), q.s.seen, q.s.rankErrorBound())
	}
}

func buildQuantiles(env *buildEnv, kw *kwargs, r *Result) checker {
	col := env.column(kw, r)
	qr := kw.object("quantile_ranges")
	method := "nearest"
	kw.used["allow_relative_error"] = true
	switch v := kw.m["allow_relative_error"].(type) {
	case nil:
	case bool:
		if v {
			kw.fail(`"allow_relative_error": true is not a pandas interpolation method`)
		}
	case string:
		switch v {
		case "nearest", "lower", "higher", "midpoint", "linear":
			method = v
		default:
			kw.fail(`"allow_relative_error" must be one of linear, lower, higher, midpoint, nearest`)
		}
	default:
		kw.fail(`"allow_relative_error" must be false or an interpolation method`)
	}
	if qr == nil {
		kw.fail(`missing "quantile_ranges"`)
	}
	if kw.err != nil {
		return nil
	}
	sub := newKwargs(qr)
	ql := sub.list("quantiles", true)
	vr := sub.list("value_ranges", true)
	if sub.err != nil {
		kw.fail("quantile_ranges: %v", sub.err)
		return nil
	}
	if len(ql) != len(vr) || len(ql) == 0 {
		kw.fail(`"quantile_ranges": quantiles and value_ranges must have the same, non-zero length`)
		return nil
	}
	q := &quantileChecker{method: method}
	for i := range ql {
		p, ok := ql[i].(float64)
		if !ok || p < 0 || p > 1 {
			kw.fail(`"quantile_ranges": quantiles must be numbers in [0, 1]`)
			return nil
		}
		pair, ok := vr[i].([]any)
		if !ok || len(pair) != 2 {
			kw.fail(`"quantile_ranges": each value range must be [min, max]`)
			return nil
		}
		var rg rng
		for j, p := range []**float64{&rg.min, &rg.max} {
			switch v := pair[j].(type) {
			case nil:
			case float64:
				*p = &v
			default:
				kw.fail(`"quantile_ranges": range ends must be numbers or null`)
				return nil
			}
		}
		q.qs = append(q.qs, p)
		q.ranges = append(q.ranges, rg)
	}
	if col < 0 {
		return nil
	}
	q.numCollector = numCollector{col: col, maxEx: env.limits.MaxExamples}
	q.s = newSampler(env.limits.SampleCap)
	return q
}

func buildMedian(env *buildEnv, kw *kwargs, r *Result) checker {
	col := env.column(kw, r)
	rg := readRange(kw, false)
	if col < 0 || kw.err != nil {
		return nil
	}
	return &quantileChecker{
		numCollector: numCollector{col: col, maxEx: env.limits.MaxExamples},
		s:            newSampler(env.limits.SampleCap),
		medianRng:    &rg,
	}
}

// PSI (population stability index) between a reference distribution p over
// bins and the observed distribution a over the same bins:
//
//	PSI = Σ_i (a_i - p_i) · ln(a_i / p_i)
//
// with every fraction floored at psiEpsilon so that empty bins stay finite.
// Numeric references give interior bin edges e_1 < ... < e_{k-1}; bin i holds
// values v with e_{i-1} <= v < e_i (e_0 = -∞, e_k = +∞), so k = len(edges)+1
// fractions. Categorical references give a fraction per category; values
// outside the list fall in an implicit "other" bin whose reference fraction
// is 1 - Σ p_i. Nulls are not counted; non-numeric values in a numeric PSI
// fail the expectation.
const psiEpsilon = 1e-4

type psiChecker struct {
	numCollector
	edges     []float64
	cats      map[string]int
	catNames  []string
	ref       []float64
	counts    []int64
	total     int64
	threshold float64
}

func (p *psiChecker) observe(rec []Cell, line int64) {
	if p.cats != nil {
		c := &rec[p.col]
		if c.Kind == KindNull {
			return
		}
		i, ok := p.cats[bstr(c.Raw)]
		if !ok {
			i = len(p.catNames)
		}
		p.counts[i]++
		p.total++
		return
	}
	f, ok := p.value(rec, line)
	if !ok {
		return
	}
	i := sort.Search(len(p.edges), func(i int) bool { return p.edges[i] > f })
	p.counts[i]++
	p.total++
}

func (p *psiChecker) finish(_ int64, r *Result) {
	if !p.report(r) {
		return
	}
	if p.total == 0 {
		r.Status, r.Detail = StatusFail, "no values"
		return
	}
	psi := 0.0
	actual := make([]float64, len(p.counts))
	for i, n := range p.counts {
		a := math.Max(float64(n)/float64(p.total), psiEpsilon)
		e := math.Max(p.ref[i], psiEpsilon)
		actual[i] = float64(n) / float64(p.total)
		psi += (a - e) * math.Log(a/e)
	}
	r.Observed = map[string]any{"psi": psi, "actual_fractions": actual, "expected_fractions": p.ref}
	r.Status = StatusPass
	if !(psi < p.threshold) {
		r.Status = StatusFail
	}
}

func buildPSI(env *buildEnv, kw *kwargs, r *Result) checker {
	col := env.column(kw, r)
	th := kw.num("threshold")
	if th == nil {
		kw.fail(`missing "threshold"`)
	}
	ref := kw.object("reference")
	if path := kw.str("reference_path", false); path != "" {
		if ref != nil {
			kw.fail(`give "reference" or "reference_path", not both`)
		} else if env.loadRef == nil {
			kw.fail(`"reference_path" cannot be loaded here`)
		} else {
			var err error
			if ref, err = env.loadRef(path); err != nil {
				kw.fail("reference_path: %v", err)
			}
		}
	}
	if ref == nil && kw.err == nil {
		kw.fail(`missing "reference"`)
	}
	if kw.err != nil {
		return nil
	}
	p := &psiChecker{threshold: *th}
	rk := newKwargs(ref)
	rk.used["column"], rk.used["count"] = true, true // written by BuildProfile
	if cats := rk.object("categories"); cats != nil {
		names := make([]string, 0, len(cats))
		for k := range cats {
			names = append(names, k)
		}
		sort.Strings(names)
		p.cats = map[string]int{}
		sum := 0.0
		for i, k := range names {
			f, ok := cats[k].(float64)
			if !ok || f < 0 || f > 1 {
				kw.fail("reference: category fractions must be numbers in [0, 1]")
				return nil
			}
			p.cats[k] = i
			p.ref = append(p.ref, f)
			sum += f
		}
		if sum > 1+1e-9 {
			kw.fail("reference: category fractions sum to more than 1")
			return nil
		}
		p.catNames = names
		p.ref = append(p.ref, math.Max(0, 1-sum))
	} else {
		edges := rk.list("edges", true)
		fr := rk.list("fractions", true)
		if rk.err != nil {
			kw.fail("reference: %v", rk.err)
			return nil
		}
		if len(fr) != len(edges)+1 {
			kw.fail("reference: want len(fractions) = len(edges)+1")
			return nil
		}
		for i, e := range edges {
			f, ok := e.(float64)
			if !ok || (i > 0 && f <= p.edges[i-1]) {
				kw.fail("reference: edges must be increasing numbers")
				return nil
			}
			p.edges = append(p.edges, f)
		}
		sum := 0.0
		for _, v := range fr {
			f, ok := v.(float64)
			if !ok || f < 0 {
				kw.fail("reference: fractions must be non-negative numbers")
				return nil
			}
			p.ref = append(p.ref, f)
			sum += f
		}
		if math.Abs(sum-1) > 1e-6 {
			kw.fail("reference: fractions must sum to 1 (got %v)", sum)
			return nil
		}
	}
	if u := rk.unknown(); len(u) > 0 && p.cats == nil {
		kw.fail("reference: unknown keys %q", u)
		return nil
	}
	if col < 0 {
		return nil
	}
	p.numCollector = numCollector{col: col, maxEx: env.limits.MaxExamples}
	p.counts = make([]int64, len(p.ref))
	return p
}
