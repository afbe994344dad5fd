package stats

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// MaxDistinctForValueBins is Evidently's cut-off: a numeric column whose
// reference has at most this many distinct values is binned one bin per
// value, like a categorical column; above it, Sturges bins are used.
const MaxDistinctForValueBins = 20

// SturgesEdges returns numpy.histogram_bin_edges(x, bins="sturges") for a
// sample of n finite values with the given minimum and maximum: the width
// (max-min)/(log2(n)+1), ceil(range/width) equal bins (one if the width is
// zero), edges by numpy.linspace (start + i*step, the last edge exactly max),
// and a range of zero widened to [min-0.5, max+0.5].
func SturgesEdges(minV, maxV float64, n int) []float64 {
	first, last := minV, maxV
	if first == last {
		first -= 0.5
		last += 0.5
	}
	nbins := 1
	if n > 0 {
		width := (maxV - minV) / (math.Log2(float64(n)) + 1.0)
		if width != 0 {
			nbins = int(math.Ceil((last - first) / width))
		}
	}
	return Linspace(first, last, nbins+1)
}

// Linspace is numpy.linspace(start, stop, num) with endpoint=True.
func Linspace(start, stop float64, num int) []float64 {
	y := make([]float64, num)
	div := num - 1
	delta := stop - start
	if div > 0 {
		step := delta / float64(div)
		for i := range y {
			if step == 0 {
				y[i] = float64(i) / float64(div) * delta
			} else {
				y[i] = float64(i) * step
			}
			y[i] += start
		}
		y[num-1] = stop
	} else if num == 1 {
		y[0] = start
	}
	return y
}

// HistogramSorted counts sorted values into the bins of edges the way
// numpy.histogram does with an array of edges: bin i is
// [edges[i], edges[i+1]), the last bin also holds values equal to the last
// edge, and values outside the edges are not counted.
func HistogramSorted(sorted, edges []float64) []int64 {
	counts := make([]int64, len(edges)-1)
	prev := sort.SearchFloat64s(sorted, edges[0]) // values < edges[0]
	for i := 1; i < len(edges); i++ {
		var c int
		if i == len(edges)-1 {
			c = upperBound(sorted, edges[i])
		} else {
			c = sort.SearchFloat64s(sorted, edges[i])
		}
		counts[i-1] = int64(c - prev)
		prev = c
	}
	return counts
}

// upperBound is the number of values <= v in sorted.
func upperBound(sorted []float64, v float64) int {
	return sort.Search(len(sorted), func(i int) bool { return sorted[i] > v })
}

// Shares divides counts by the sample size n.
func Shares(counts []int64, n int64) []float64 {
	p := make([]float64, len(counts))
	for i, c := range counts {
		p[i] = float64(c) / float64(n)
	}
	return p
}

// FillZeros replaces the empty bins of shares the way Evidently's
// get_binned_data does (feel_zeroes=True): with the smallest non-zero share
// divided by 10^6 when that share is at most 0.0001, and with 0.0001
// otherwise. It modifies p in place and returns it.
func FillZeros(p []float64) []float64 {
	minNZ := math.Inf(1)
	for _, v := range p {
		if v != 0 && v < minNZ {
			minNZ = v
		}
	}
	if math.IsInf(minNZ, 1) {
		return p
	}
	fill := 0.0001
	if minNZ <= 0.0001 {
		fill = minNZ / 1e6
	}
	for i, v := range p {
		if v == 0 {
			p[i] = fill
		}
	}
	return p
}

// PSI is the population stability index sum((r-c) * ln(r/c)) over bins of
// reference shares r and current shares c (already floored with FillZeros).
func PSI(ref, cur []float64) float64 {
	s := 0.0
	for i := range ref {
		s += (ref[i] - cur[i]) * math.Log(ref[i]/cur[i])
	}
	return s
}

// JensenShannon is scipy.spatial.distance.jensenshannon(p, q) with the
// natural logarithm: both vectors are normalised to sum 1, and the result is
// sqrt((KL(p||m) + KL(q||m)) / 2) with m = (p+q)/2.
func JensenShannon(p, q []float64) float64 {
	sp, sq := 0.0, 0.0
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	left, right := 0.0, 0.0
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2.0
		left += relEntr(pi, m)
		right += relEntr(qi, m)
	}
	return math.Sqrt((left + right) / 2.0)
}

func relEntr(x, y float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.NaN()
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	default:
		return math.Inf(1)
	}
}

// Wasserstein1Sorted is scipy.stats.wasserstein_distance(u, v): the area
// between the two empirical distribution functions. u and v must be sorted.
func Wasserstein1Sorted(u, v []float64) float64 {
	nu, nv := float64(len(u)), float64(len(v))
	var acc neumaier
	i, j := 0, 0
	prev := math.NaN()
	// Walk distinct values of the union; between consecutive values the
	// ECDFs are constant.
	for i < len(u) || j < len(v) {
		var x float64
		switch {
		case j >= len(v) || (i < len(u) && u[i] <= v[j]):
			x = u[i]
		default:
			x = v[j]
		}
		if !math.IsNaN(prev) {
			acc.add(math.Abs(float64(i)/nu-float64(j)/nv) * (x - prev))
		}
		for i < len(u) && u[i] <= x {
			i++
		}
		for j < len(v) && v[j] <= x {
			j++
		}
		prev = x
	}
	return acc.sum()
}

// MeanStd returns numpy's mean and population standard deviation (ddof=0),
// with compensated sums.
func MeanStd(x []float64) (mean, std float64) {
	var s neumaier
	for _, v := range x {
		s.add(v)
	}
	mean = s.sum() / float64(len(x))
	var q neumaier
	for _, v := range x {
		d := v - mean
		q.add(d * d)
	}
	return mean, math.Sqrt(q.sum() / float64(len(x)))
}

// neumaier is a compensated (Kahan-Babuska-Neumaier) running sum.
type neumaier struct{ s, c float64 }

func (n *neumaier) add(x float64) {
	t := n.s + x
	if math.Abs(n.s) >= math.Abs(x) {
		n.c += (n.s - t) + x
	} else {
		n.c += (x - t) + n.s
	}
	n.s = t
}

func (n *neumaier) sum() float64 { return n.s + n.c }

// WassersteinNormed is Evidently's normed Wasserstein distance: W1 divided
// by max(std(reference), 0.001), std with ddof=0. Both inputs sorted.
func WassersteinNormed(ref, cur []float64) float64 {
	_, sd := MeanStd(ref)
	return Wasserstein1Sorted(ref, cur) / math.Max(sd, 0.001)
}

// ChiSquareResult is a chi-square goodness-of-fit test.
type ChiSquareResult struct {
	Statistic float64
	PValue    float64
	DF        int
}

// ChiSquare is scipy.stats.chisquare(obs, exp): sum((o-e)^2/e) with k-1
// degrees of freedom; p = chi2.sf. An expected count of zero with a
// positive observation gives +Inf and p = 0; fewer than two categories give
// a NaN p-value, as scipy does.
func ChiSquare(obs, exp []float64) ChiSquareResult {
	stat := 0.0
	for i := range obs {
		d := obs[i] - exp[i]
		stat += d * d / exp[i]
	}
	df := len(obs) - 1
	return ChiSquareResult{Statistic: stat, PValue: Chi2SF(stat, float64(df)), DF: df}
}

// Chi2SF is the chi-square survival function, the regularized upper
// incomplete gamma function Q(df/2, x/2) (scipy.special.chdtrc).
func Chi2SF(x, df float64) float64 {
	if math.IsNaN(x) || !(df > 0) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return mathext.GammaIncRegComp(df/2, x/2)
}

// NormCDF is the standard normal distribution function (scipy's ndtr).
func NormCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// ZTestProportions is Evidently's two-sided z-test for the difference of two
// proportions with a pooled variance: k1 successes out of n1 against k2 out
// of n2; p = 2*(1-Phi(|z|)).
func ZTestProportions(k1, n1, k2, n2 int64) (z, p float64) {
	p1 := float64(k1) / float64(n1)
	p2 := float64(k2) / float64(n2)
	P := (p1*float64(n1) + p2*float64(n2)) / float64(n1+n2)
	z = (p1 - p2) / math.Sqrt(P*(1-P)*(1.0/float64(n1)+1.0/float64(n2)))
	return z, 2 * (1 - NormCDF(math.Abs(z)))
}

// NormSF is the standard normal survival function (scipy's norm.sf).
func NormSF(z float64) float64 {
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
