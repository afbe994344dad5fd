package monitor

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// Binning strategies of scikit-learn's calibration_curve.
const (
	StrategyUniform  = "uniform"  // equal-width bins: linspace(0, 1, n+1)
	StrategyQuantile = "quantile" // equal-mass bins: percentiles of the scores
)

// CalibrationBin is one row of a reliability table.
type CalibrationBin struct {
	Bin   int   `json:"bin"`
	Lower Float `json:"lower"`
	Upper Float `json:"upper"`
	Count int64 `json:"count"`
	// Mean predicted probability, fraction of positives and their absolute
	// difference; null for an empty bin.
	MeanPredicted    *Float `json:"mean_predicted"`
	FractionPositive *Float `json:"fraction_positive"`
	Gap              *Float `json:"gap"`
}

// Calibration is the calibration of one set of binary predictions.
type Calibration struct {
	Rows     int64  `json:"rows"`
	Strategy string `json:"strategy"`
	Bins     int    `json:"bins"`
	// ECE and MCE for Strategy; ECEEqualWidth and ECEEqualMass for both
	// strategies with the same number of bins.
	ECE           Float            `json:"ece"`
	MCE           Float            `json:"mce"`
	ECEEqualWidth Float            `json:"ece_equal_width"`
	ECEEqualMass  Float            `json:"ece_equal_mass"`
	Brier         Float            `json:"brier"`
	Table         []CalibrationBin `json:"table"`
}

// CalibrationEdges returns scikit-learn's calibration_curve bin edges for
// the scores (sorted ascending): linspace(0, 1, n+1) for uniform, and
// numpy.percentile(scores, linspace(0, 1, n+1)*100) (linear interpolation)
// for quantile.
func CalibrationEdges(sortedScores []float64, bins int, strategy string) ([]float64, error) {
	switch strategy {
	case StrategyUniform:
		return stats.Linspace(0, 1, bins+1), nil
	case StrategyQuantile:
		qs := stats.Linspace(0, 1, bins+1)
		edges := make([]float64, len(qs))
		for i, q := range qs {
			edges[i] = Percentile(sortedScores, q*100)
		}
		return edges, nil
	}
	return nil, fmt.Errorf("strategy %q (want uniform or quantile): %w", strategy, ErrInvalidInput)
}

// quantileEdges is CalibrationEdges(sorted(probs), bins, "quantile")
// computed with selection instead of a full sort: only the order
// statistics next to each percentile are needed.
func quantileEdges(probs []float64, bins int) []float64 {
	n := len(probs)
	qs := stats.Linspace(0, 1, bins+1)
	ranks := percentileRankSet(n, qs)
	at := orderStatistics(probs, ranks)
	edges := make([]float64, len(qs))
	for i, q := range qs {
		edges[i] = percentileFrom(n, q*100, func(r int) float64 { return at[r] })
	}
	return edges
}

// percentileRankSet returns, sorted and without repeats, the ranks of the
// order statistics that numpy's linear percentiles at quantiles qs of n
// values interpolate between.
func percentileRankSet(n int, qs []float64) []int {
	var ranks []int
	for _, q := range qs {
		lo, hi := percentileRanks(n, q*100)
		ranks = append(ranks, lo, hi)
	}
	slices.Sort(ranks)
	return slices.Compact(ranks)
}

// orderStatistics returns the elements of the given ranks (sorted, in
// [0, len(probs))) of probs, values in [0, 1]. One pass counts the values
// per 1/65536 of [0, 1] (the bucket is a monotone function of the value, so
// a rank's bucket follows from the cumulative counts); a second pass keeps
// only the values of the buckets holding a wanted rank, which are then
// sorted. When those buckets hold too much of the data (scores piled on a
// few values), it falls back to quickselect on a copy.
func orderStatistics(probs []float64, ranks []int) map[int]float64 {
	const nb = 1 << 16
	bucket := func(p float64) int { return min(int(p*nb), nb-1) }
	counts := make([]int, nb)
	for _, p := range probs {
		counts[bucket(p)]++
	}
	// For each wanted rank: its bucket and the rank within the bucket.
	type want struct{ rank, b, within int }
	wants := make([]want, 0, len(ranks))
	cum, b := 0, 0
	for _, r := range ranks {
		for cum+counts[b] <= r {
			cum += counts[b]
			b++
		}
		wants = append(wants, want{r, b, r - cum})
	}
	slot := make([]int32, nb) // bucket -> index in keep, or -1
	for i := range slot {
		slot[i] = -1
	}
	var keep [][]float64
	total := 0
	for _, w := range wants {
		if slot[w.b] < 0 {
			slot[w.b] = int32(len(keep))
			keep = append(keep, make([]float64, 0, counts[w.b]))
			total += counts[w.b]
		}
	}
	out := make(map[int]float64, len(ranks))
	if total > len(probs)/8 && total > 1<<16 {
		work := slices.Clone(probs)
		selectRanks(work, 0, ranks)
		for _, r := range ranks {
			out[r] = work[r]
		}
		return out
	}
	for _, p := range probs {
		if k := slot[bucket(p)]; k >= 0 {
			keep[k] = append(keep[k], p)
		}
	}
	for _, v := range keep {
		slices.Sort(v)
	}
	for _, w := range wants {
		out[w.rank] = keep[slot[w.b]][w.within]
	}
	return out
}

// percentileRanks are the two order statistics numpy's linear percentile
// interpolates between.
func percentileRanks(n int, p float64) (int, int) {
	virtual := float64(n-1) * (p / 100)
	if virtual >= float64(n-1) {
		return n - 1, n - 1
	}
	if virtual < 0 {
		return 0, 0
	}
	prev := int(math.Floor(virtual))
	return prev, prev + 1
}

// selectRanks rearranges x (whose first element has rank off) so that
// x[r-off] holds the element of rank r for every r in ranks (sorted), by
// recursive quickselect.
func selectRanks(x []float64, off int, ranks []int) {
	for len(ranks) > 0 && len(x) > 1 {
		if len(x) <= 32 {
			slices.Sort(x)
			return
		}
		// Median of three pivot, three-way partition.
		a, b, c := x[0], x[len(x)/2], x[len(x)-1]
		pivot := max(min(a, b), min(max(a, b), c))
		lt, i, gt := 0, 0, len(x)
		for i < gt {
			switch v := x[i]; {
			case v < pivot:
				x[lt], x[i] = x[i], x[lt]
				lt++
				i++
			case v > pivot:
				gt--
				x[gt], x[i] = x[i], x[gt]
			default:
				i++
			}
		}
		// x[:lt] < pivot, x[lt:gt] == pivot, x[gt:] > pivot.
		k := 0
		for k < len(ranks) && ranks[k]-off < lt {
			k++
		}
		m := k
		for m < len(ranks) && ranks[m]-off < gt {
			m++
		}
		selectRanks(x[:lt], off, ranks[:k])
		x, off, ranks = x[gt:], off+gt, ranks[m:]
	}
}

// Percentile is numpy.percentile(a, p) with the default "linear" method;
// sorted must be sorted ascending and non-empty.
func Percentile(sorted []float64, p float64) float64 {
	return percentileFrom(len(sorted), p, func(r int) float64 { return sorted[r] })
}

// edgesBetweenRanks returns the percentile edges at quantiles qs of n
// values (at gives the value of a rank), and whether each lies between the
// two order statistics it interpolates: the bucket arguments of the
// calibration paths need that; numpy's interpolation keeps it there, but
// they check, and fall back to binning every value when it does not hold.
func edgesBetweenRanks(n int, qs []float64, at func(rank int) float64) ([]float64, bool) {
	edges := make([]float64, len(qs))
	for i, q := range qs {
		edges[i] = percentileFrom(n, q*100, at)
		lo, hi := percentileRanks(n, q*100)
		if !(at(lo) <= edges[i] && edges[i] <= at(hi)) {
			return edges, false
		}
	}
	return edges, true
}

// percentileFrom is numpy's linear percentile given the order statistics.
func percentileFrom(n int, p float64, at func(rank int) float64) float64 {
	q := p / 100
	virtual := float64(n-1) * q
	if virtual >= float64(n-1) {
		return at(n - 1)
	}
	if virtual < 0 {
		return at(0)
	}
	prev := math.Floor(virtual)
	gamma := virtual - prev
	a, b := at(int(prev)), at(int(prev)+1)
	diff := b - a
	if gamma >= 0.5 {
		return b - diff*(1-gamma)
	}
	return a + diff*gamma
}

// binOf is numpy.searchsorted(edges[1:-1], p) (side "left"), the bin
// scikit-learn's calibration_curve assigns: a score equal to an inner edge
// falls in the bin below it.
func binOf(inner []float64, p float64) int {
	return sort.SearchFloat64s(inner, p)
}

// uniformBinOf is binOf for the edges linspace(0, 1, len(inner)+2): a guess
// from p*bins corrected against the actual edges, so the result is exactly
// binOf's.
func uniformBinOf(inner []float64, p float64) int {
	k := int(p * float64(len(inner)+1))
	k = min(max(k, 0), len(inner))
	for k > 0 && p <= inner[k-1] {
		k--
	}
	for k < len(inner) && p > inner[k] {
		k++
	}
	return k
}

// Calibrate computes the reliability table, ECE, MCE and Brier score of
// binary predictions: probs in [0, 1] and outcomes (true = positive).
func Calibrate(probs []float64, outcomes []bool, bins int, strategy string) (Calibration, error) {
	if len(probs) != len(outcomes) {
		return Calibration{}, fmt.Errorf("%d probabilities and %d outcomes: %w", len(probs), len(outcomes), ErrInvalidInput)
	}
	if len(probs) == 0 {
		return Calibration{}, ErrEmptyColumn
	}
	if bins < 1 {
		return Calibration{}, fmt.Errorf("bins %d: %w", bins, ErrInvalidInput)
	}
	if strategy != StrategyUniform && strategy != StrategyQuantile {
		_, err := CalibrationEdges(nil, bins, strategy)
		return Calibration{}, err
	}
	c := Calibration{Rows: int64(len(probs)), Strategy: strategy, Bins: bins}
	uni, qua, brier, err := calibrationPasses(probs, outcomes, bins)
	if err != nil {
		return Calibration{}, err
	}
	c.ECEEqualWidth, c.ECEEqualMass = uni.ece, qua.ece
	if strategy == StrategyUniform {
		c.ECE, c.MCE, c.Table = uni.ece, uni.mce, uni.table
	} else {
		c.ECE, c.MCE, c.Table = qua.ece, qua.mce, qua.table
	}
	c.Brier = Float(brier)
	return c, nil
}

// binning is the result of one binning strategy.
type binning struct {
	table    []CalibrationBin
	ece, mce Float
}

// binAcc accumulates the predictions of bins.
type binAcc struct {
	counts, trues []int64
	sums          []float64
}

func newBinAcc(nb int) binAcc {
	return binAcc{counts: make([]int64, nb), trues: make([]int64, nb), sums: make([]float64, nb)}
}

func (a *binAcc) add(k int, p float64, y bool) {
	t := int64(0)
	if y {
		t = 1 // a conditional move: outcomes are not predictable
	}
	a.counts[k]++
	a.sums[k] += p
	a.trues[k] += t
}

func (a *binAcc) merge(o binAcc) {
	for k := range a.counts {
		a.counts[k] += o.counts[k]
		a.trues[k] += o.trues[k]
		a.sums[k] += o.sums[k]
	}
}

func (a *binAcc) result(edges []float64, n int) binning {
	trues := make([]float64, len(a.trues))
	for k, v := range a.trues {
		trues[k] = float64(v)
	}
	var r binning
	r.table, r.ece, r.mce = reliabilityFromSums(edges, a.counts, a.sums, trues, int64(n))
	return r
}

// calBuckets is the number of equal-width buckets of [0, 1] that locate
// the order statistics of the quantile edges (see calibrationPasses).
const calBuckets = 1 << 14

func calBucket(p float64) int { return min(int(p*calBuckets), calBuckets-1) }

// spans cuts n rows into one span per worker (one for short inputs).
func spans(n int) [][2]int {
	w := 1
	if n >= 1<<16 {
		w = min(max(runtime.GOMAXPROCS(0), 1), 8)
	}
	out := make([][2]int, w)
	for i := range out {
		out[i] = [2]int{n * i / w, n * (i + 1) / w}
	}
	return out
}

// calibrationPasses bins the predictions with both strategies and computes
// the Brier score in two parallel passes over the data, with no sort:
//
//  1. check the range, bin with the equal-width edges, sum the squared
//     errors, and count the scores per bucket of [0, 1] (calBucket, a
//     monotone function of the score, so the rank range of every bucket
//     follows from the counts);
//  2. the quantile edges interpolate between the order statistics of a
//     few ranks. A score in a bucket holding none of those ranks is
//     strictly between two of them, so its bin follows from its bucket's
//     rank range; the scores of the other buckets are kept, sorted to give
//     the order statistics and so the edges, and binned one by one.
//
// Sums are accumulated per worker and added at the end, so they can
// differ from a sequential sum in the last bits.
func calibrationPasses(probs []float64, outcomes []bool, bins int) (uni, qua binning, brier float64, err error) {
	n := len(probs)
	uniEdges := stats.Linspace(0, 1, bins+1)
	uniInner := uniEdges[1 : len(uniEdges)-1]
	sp := spans(n)
	type partA struct {
		uni    binAcc
		counts []uint32
		brier  neumaierSum
		bad    bool
		badV   float64
	}
	pa := make([]partA, len(sp))
	var wg sync.WaitGroup
	for w := range sp {
		wg.Go(func() {
			a := partA{uni: newBinAcc(bins), counts: make([]uint32, calBuckets)}
			lo, hi := sp[w][0], sp[w][1]
			ys := outcomes[lo:hi]
			for i, p := range probs[lo:hi] {
				if !(p >= 0 && p <= 1) {
					a.bad, a.badV = true, p
					break
				}
				y := ys[i]
				k := uniformBinOf(uniInner, p)
				a.uni.add(k, p, y)
				a.counts[calBucket(p)]++
				t := uint64(0)
				if y {
					t = 1 // no branch on the outcome
				}
				d := float64(t) - p
				a.brier.add(d * d)
			}
			pa[w] = a
		})
	}
	wg.Wait()
	for _, a := range pa {
		if a.bad {
			return uni, qua, 0, fmt.Errorf("probability %v outside [0, 1]: %w", a.badV, ErrInvalidInput)
		}
	}
	ua := pa[0].uni
	counts := make([]int, calBuckets)
	var bs neumaierSum
	for w, a := range pa {
		if w > 0 {
			ua.merge(a.uni)
		}
		for b, c := range a.counts {
			counts[b] += int(c)
		}
		bs.add(a.brier.s)
		bs.add(a.brier.c)
	}
	uni = ua.result(uniEdges, n)
	brier = bs.sum() / float64(n)

	// The ranks whose order statistics the quantile edges need.
	qs := stats.Linspace(0, 1, bins+1)
	ranks := percentileRankSet(n, qs)
	// start[b] is the rank of the first score of bucket b; slot[b] the
	// index of b among the kept buckets, or -1.
	start := make([]int, calBuckets+1)
	for b, c := range counts {
		start[b+1] = start[b] + c
	}
	slot := make([]int32, calBuckets)
	for b := range slot {
		slot[b] = -1
	}
	var kept []int // kept buckets, ascending
	keptRows := 0
	for _, r := range ranks {
		b := sort.Search(calBuckets, func(b int) bool { return start[b+1] > r })
		if slot[b] < 0 {
			slot[b] = int32(len(kept))
			kept = append(kept, b)
			keptRows += counts[b]
		}
	}
	if keptRows > n/8 && keptRows > 1<<16 {
		// Scores piled on a few values: select on a copy instead.
		edges := quantileEdges(probs, bins)
		var acc binAcc
		acc, err = binParallel(probs, outcomes, edges, sp)
		return uni, acc.result(edges, n), brier, err
	}
	// bucketBin[b]: for a bucket holding none of the ranks, the bin of its
	// scores: the number of inner edges whose upper rank is below the
	// bucket's first rank.
	inner := bins - 1
	upper := make([]int, inner) // upper rank of inner edge i
	for i := range upper {
		_, upper[i] = percentileRanks(n, qs[i+1]*100)
	}
	bucketBin := make([]int32, calBuckets)
	k := 0
	for b := range bucketBin {
		for k < inner && upper[k] < start[b] {
			k++
		}
		bucketBin[b] = int32(k)
	}
	type partB struct {
		acc   binAcc
		keep  [][]float64 // scores of each kept bucket
		keepY [][]bool
	}
	pb := make([]partB, len(sp))
	for w := range sp {
		wg.Go(func() {
			b := partB{acc: newBinAcc(bins), keep: make([][]float64, len(kept)), keepY: make([][]bool, len(kept))}
			lo, hi := sp[w][0], sp[w][1]
			ys := outcomes[lo:hi]
			for i, p := range probs[lo:hi] {
				bk := calBucket(p)
				if s := slot[bk]; s >= 0 {
					b.keep[s] = append(b.keep[s], p)
					b.keepY[s] = append(b.keepY[s], ys[i])
					continue
				}
				b.acc.add(int(bucketBin[bk]), p, ys[i])
			}
			pb[w] = b
		})
	}
	wg.Wait()
	qa := pb[0].acc
	for _, b := range pb[1:] {
		qa.merge(b.acc)
	}
	// The order statistics from the kept scores, sorted.
	sorted := make([][]float64, len(kept))
	for s := range kept {
		for _, b := range pb {
			sorted[s] = append(sorted[s], b.keep[s]...)
		}
		slices.Sort(sorted[s])
	}
	at := func(r int) float64 {
		b := sort.Search(calBuckets, func(b int) bool { return start[b+1] > r })
		return sorted[slot[b]][r-start[b]]
	}
	edges, ok := edgesBetweenRanks(n, qs, at)
	if !ok {
		var acc binAcc
		acc, err = binParallel(probs, outcomes, edges, sp)
		return uni, acc.result(edges, n), brier, err
	}
	qInner := edges[1 : len(edges)-1]
	for _, b := range pb {
		for s := range b.keep {
			for i, p := range b.keep[s] {
				qa.add(binOf(qInner, p), p, b.keepY[s][i])
			}
		}
	}
	return uni, qa.result(edges, n), brier, nil
}

// binParallel bins the predictions over edges by binary search.
func binParallel(probs []float64, outcomes []bool, edges []float64, sp [][2]int) (binAcc, error) {
	inner := edges[1 : len(edges)-1]
	parts := make([]binAcc, len(sp))
	var wg sync.WaitGroup
	for w := range sp {
		wg.Go(func() {
			a := newBinAcc(len(edges) - 1)
			lo, hi := sp[w][0], sp[w][1]
			ys := outcomes[lo:hi]
			for i, p := range probs[lo:hi] {
				a.add(binOf(inner, p), p, ys[i])
			}
			parts[w] = a
		})
	}
	wg.Wait()
	for _, a := range parts[1:] {
		parts[0].merge(a)
	}
	return parts[0], nil
}

// calibrateSimple is Calibrate by the definitions, sequentially: the
// reference the tests compare the fast passes with.
func calibrateSimple(probs []float64, outcomes []bool, bins int, strategy string) (Calibration, error) {
	for _, p := range probs {
		if !(p >= 0 && p <= 1) {
			return Calibration{}, fmt.Errorf("probability %v outside [0, 1]: %w", p, ErrInvalidInput)
		}
	}
	c := Calibration{Rows: int64(len(probs)), Strategy: strategy, Bins: bins}
	sorted := slices.Clone(probs)
	slices.Sort(sorted)
	qEdges, _ := CalibrationEdges(sorted, bins, StrategyQuantile)
	var uni, qua binning
	qua.table, qua.ece, qua.mce = reliability(probs, outcomes, qEdges, false)
	uni.table, uni.ece, uni.mce = reliability(probs, outcomes, stats.Linspace(0, 1, bins+1), false)
	c.ECEEqualWidth, c.ECEEqualMass = uni.ece, qua.ece
	if strategy == StrategyUniform {
		c.ECE, c.MCE, c.Table = uni.ece, uni.mce, uni.table
	} else {
		c.ECE, c.MCE, c.Table = qua.ece, qua.mce, qua.table
	}
	var b neumaierSum
	for i, p := range probs {
		y := 0.0
		if outcomes[i] {
			y = 1
		}
		b.add((y - p) * (y - p))
	}
	c.Brier = Float(b.sum() / float64(len(probs)))
	return c, nil
}

// reliability bins the predictions over edges and returns the table, ECE
// (sum over non-empty bins of count/N * |fraction positive - mean
// predicted|) and MCE (the largest such gap).
func reliability(probs []float64, outcomes []bool, edges []float64, uniform bool) ([]CalibrationBin, Float, Float) {
	nb := len(edges) - 1
	inner := edges[1 : len(edges)-1]
	sums := make([]float64, nb)
	trues := make([]float64, nb)
	counts := make([]int64, nb)
	for i, p := range probs {
		var k int
		if uniform {
			k = uniformBinOf(inner, p)
		} else {
			k = binOf(inner, p)
		}
		sums[k] += p
		if outcomes[i] {
			trues[k]++
		}
		counts[k]++
	}
	return reliabilityFromSums(edges, counts, sums, trues, int64(len(probs)))
}

func reliabilityFromSums(edges []float64, counts []int64, sums, trues []float64, n int64) ([]CalibrationBin, Float, Float) {
	table := make([]CalibrationBin, len(counts))
	ece, mce := 0.0, 0.0
	for k := range counts {
		table[k] = CalibrationBin{Bin: k, Lower: Float(edges[k]), Upper: Float(edges[k+1]), Count: counts[k]}
		if counts[k] == 0 {
			continue
		}
		pt := trues[k] / float64(counts[k])
		pp := sums[k] / float64(counts[k])
		gap := math.Abs(pt - pp)
		fpt, fpp, fg := Float(pt), Float(pp), Float(gap)
		table[k].FractionPositive, table[k].MeanPredicted, table[k].Gap = &fpt, &fpp, &fg
		ece += float64(counts[k]) / float64(n) * gap
		mce = math.Max(mce, gap)
	}
	return table, Float(ece), Float(mce)
}

type neumaierSum struct{ s, c float64 }

func (n *neumaierSum) add(x float64) {
	t := n.s + x
	if math.Abs(n.s) >= math.Abs(x) {
		n.c += (n.s - t) + x
	} else {
		n.c += (x - t) + n.s
	}
	n.s = t
}

func (n *neumaierSum) sum() float64 { return n.s + n.c }

// Outcomes converts a label column to booleans (true = positive) and a
// validity mask (false where the label is missing). With posLabel empty
// the labels must be numbers in {0, 1} or {-1, 1} and 1 is positive, as
// scikit-learn decides; otherwise a label equal to posLabel (as text, or as
// a number when the column is numeric) is positive. More than two distinct
// labels is an error.
func Outcomes(c *Column, posLabel string) (out []bool, valid []bool, err error) {
	n := int(c.Rows)
	out = make([]bool, n)
	valid = make([]bool, n)
	distinct := map[string]bool{}
	if c.Numeric() {
		var pos float64
		if posLabel != "" {
			v, ok := ParseNumber(posLabel)
			if !ok {
				return nil, nil, fmt.Errorf("--pos-label %q is not a number but column %q is numeric: %w", posLabel, c.Name, ErrInvalidInput)
			}
			pos = v
		} else {
			pos = 1
		}
		// Each worker marks its rows and notes its first three distinct
		// labels in order; joined in worker order they are the first
		// distinct labels of the column.
		floats := c.Floats()
		sp := spans(len(floats))
		firsts := make([][]float64, len(sp))
		var wg sync.WaitGroup
		for w := range sp {
			wg.Go(func() {
				lo, hi := sp[w][0], sp[w][1]
				o, ok := out[lo:hi], valid[lo:hi]
				var seen []float64
				a, b := math.NaN(), math.NaN() // the first two of seen
				for i, v := range floats[lo:hi] {
					if v != v {
						continue
					}
					ok[i] = true
					o[i] = v == pos
					if v == a || v == b || slices.Contains(seen, v) {
						continue
					}
					if len(seen) == 0 {
						a = v
					} else {
						b = v
					}
					seen = append(seen, v)
					if len(seen) > 2 {
						break
					}
				}
				firsts[w] = seen
			})
		}
		wg.Wait()
		var seen []float64
		for _, f := range firsts {
			for _, v := range f {
				if !slices.Contains(seen, v) {
					seen = append(seen, v)
					distinct[strconv.FormatFloat(v, 'g', -1, 64)] = true
				}
			}
		}
		if len(seen) > 2 {
			return nil, nil, fmt.Errorf("column %q: more than two distinct labels, only binary labels are supported: %w", c.Name, ErrInvalidInput)
		}
		if posLabel == "" {
			for k := range distinct {
				if k != "0" && k != "1" && k != "-1" {
					return nil, nil, fmt.Errorf("column %q: labels are not {0, 1} or {-1, 1}; name the positive class with --pos-label: %w", c.Name, ErrInvalidInput)
				}
			}
			if distinct["0"] && distinct["-1"] {
				return nil, nil, fmt.Errorf("column %q: labels -1, 0 and 1: %w", c.Name, ErrInvalidInput)
			}
		}
	} else {
		if posLabel == "" {
			return nil, nil, fmt.Errorf("column %q has non-numeric labels; name the positive class with --pos-label: %w", c.Name, ErrInvalidInput)
		}
		if !c.HasText() {
			return nil, nil, fmt.Errorf("column %q: too many distinct labels: %w", c.Name, ErrInvalidInput)
		}
		codes, dict := c.Text()
		for i, k := range codes {
			if k < 0 {
				continue
			}
			valid[i] = true
			out[i] = dict[k] == posLabel
			distinct[dict[k]] = true
		}
	}
	if len(distinct) > 2 {
		return nil, nil, fmt.Errorf("column %q: %d distinct labels, only binary labels are supported: %w", c.Name, len(distinct), ErrInvalidInput)
	}
	return out, valid, nil
}

// CalibrationOptions configure a calibration report.
type CalibrationOptions struct {
	ProbColumn    string
	LabelColumn   string
	SegmentColumn string // optional
	PosLabel      string // optional, see Outcomes
	Bins          int    // default 10
	Strategy      string // default uniform
}

// SegmentCalibration is the calibration of one segment.
type SegmentCalibration struct {
	Segment string `json:"segment"`
	Calibration
}

// CalibrationReport is the calibration of a file of predictions, overall
// and per segment.
type CalibrationReport struct {
	Input       string               `json:"input"`
	ProbColumn  string               `json:"prob_column"`
	LabelColumn string               `json:"label_column"`
	SkippedRows int64                `json:"skipped_rows"`
	Overall     Calibration          `json:"overall"`
	Segments    []SegmentCalibration `json:"segments,omitempty"`
}

// CalibrateTable computes a calibration report. Rows whose probability or
// label is missing are skipped (and counted); rows with a missing segment
// count only in the overall figures. Quantile edges are computed per
// segment from that segment's scores, as calling calibration_curve on the
// segment would.
func CalibrateTable(t *Table, opts CalibrationOptions) (*CalibrationReport, error) {
	if opts.Bins == 0 {
		opts.Bins = 10
	}
	if opts.Strategy == "" {
		opts.Strategy = StrategyUniform
	}
	pc, lc := t.Column(opts.ProbColumn), t.Column(opts.LabelColumn)
	if pc == nil {
		return nil, fmt.Errorf("column %q: %w", opts.ProbColumn, ErrUnknownColumn)
	}
	if lc == nil {
		return nil, fmt.Errorf("column %q: %w", opts.LabelColumn, ErrUnknownColumn)
	}
	if !pc.Numeric() {
		return nil, fmt.Errorf("column %q: %w", opts.ProbColumn, ErrNotNumeric)
	}
	out, valid, err := Outcomes(lc, opts.PosLabel)
	if err != nil {
		return nil, err
	}
	var segCodes []int32
	var segDict []string
	if opts.SegmentColumn != "" {
		sc := t.Column(opts.SegmentColumn)
		if sc == nil {
			return nil, fmt.Errorf("column %q: %w", opts.SegmentColumn, ErrUnknownColumn)
		}
		if !sc.HasText() {
			return nil, fmt.Errorf("segment column %q has too many distinct values: %w", opts.SegmentColumn, ErrInvalidInput)
		}
		segCodes, segDict = sc.Text()
	}
	rep := &CalibrationReport{Input: t.Path, ProbColumn: opts.ProbColumn, LabelColumn: opts.LabelColumn}
	probs := pc.Floats()
	// Without missing values the columns are used as they are.
	P, Y := probs, out
	var segP [][]float64
	var segY [][]bool
	sp := spans(len(probs))
	gaps := make([]bool, len(sp))
	var wg sync.WaitGroup
	for w := range sp {
		wg.Go(func() {
			lo, hi := sp[w][0], sp[w][1]
			ok := valid[lo:hi]
			for i, p := range probs[lo:hi] {
				if p != p || !ok[i] {
					gaps[w] = true
					break
				}
			}
		})
	}
	wg.Wait()
	complete := !slices.Contains(gaps, true)
	if !complete || segCodes != nil {
		if !complete {
			P, Y = make([]float64, 0, len(probs)), make([]bool, 0, len(probs))
		}
		segP = make([][]float64, len(segDict))
		segY = make([][]bool, len(segDict))
		for i, p := range probs {
			if math.IsNaN(p) || !valid[i] {
				rep.SkippedRows++
				continue
			}
			if !complete {
				P = append(P, p)
				Y = append(Y, out[i])
			}
			if segCodes != nil && segCodes[i] >= 0 {
				k := segCodes[i]
				segP[k] = append(segP[k], p)
				segY[k] = append(segY[k], out[i])
			}
		}
	}
	rep.Overall, err = Calibrate(P, Y, opts.Bins, opts.Strategy)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(segDict))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return segDict[order[a]] < segDict[order[b]] })
	for _, k := range order {
		if len(segP[k]) == 0 {
			continue
		}
		c, err := Calibrate(segP[k], segY[k], opts.Bins, opts.Strategy)
		if err != nil {
			return nil, fmt.Errorf("segment %q: %w", segDict[k], err)
		}
		rep.Segments = append(rep.Segments, SegmentCalibration{Segment: segDict[k], Calibration: c})
	}
	return rep, nil
}
