package stats

import (
	"math"
)

// KSMethod says how a two-sample Kolmogorov-Smirnov p-value was computed.
type KSMethod string

const (
	KSExact      KSMethod = "exact"
	KSAsymptotic KSMethod = "asymp"
)

// ksMaxAutoN is scipy's MAX_AUTO_N: with method="auto", ks_2samp is exact
// when both samples have at most this many observations.
const ksMaxAutoN = 10000

// KSResult is a two-sided two-sample Kolmogorov-Smirnov test.
type KSResult struct {
	Statistic float64
	PValue    float64
	Method    KSMethod
}

// KS2Samp is scipy.stats.ks_2samp(a, b) with alternative="two-sided" and
// method="auto" (scipy 1.10): the statistic is the largest distance between
// the two empirical distribution functions; the p-value is exact (Hodges'
// lattice-path counting, Viehmann's recursion for 1-p) when both samples
// have at most 10000 observations, and otherwise Pr(D_n > d) of the
// one-sample two-sided distribution with n = round(n1*n2/(n1+n2)).
//
// a and b must be sorted ascending, free of NaN and non-empty.
func KS2Samp(a, b []float64) KSResult {
	n1, n2 := len(a), len(b)
	fn1, fn2 := float64(n1), float64(n2)
	// Walk the distinct values of the union; the ECDF difference only
	// changes there.
	maxS, minS := math.Inf(-1), math.Inf(1)
	i, j := 0, 0
	for i < n1 || j < n2 {
		var v float64
		switch {
		case j >= n2 || (i < n1 && a[i] <= b[j]):
			v = a[i]
		default:
			v = b[j]
		}
		for i < n1 && a[i] <= v {
			i++
		}
		for j < n2 && b[j] <= v {
			j++
		}
		d := float64(i)/fn1 - float64(j)/fn2
		if d > maxS {
			maxS = d
		}
		if d < minS {
			minS = d
		}
	}
	minAbs := clip01(-minS)
	d := maxS
	if minAbs > maxS {
		d = minAbs
	}
	g := gcd(n1, n2)
	if max(n1, n2) <= ksMaxAutoN {
		if ok, dd, p := ksExact(n1, n2, g, d); ok {
			return KSResult{Statistic: dd, PValue: clip01(p), Method: KSExact}
		} else {
			d = dd
		}
	}
	m, n := math.Max(fn1, fn2), math.Min(fn1, fn2)
	en := m * n / (m + n)
	p := KolmogorovSF(int(math.RoundToEven(en)), d)
	return KSResult{Statistic: d, PValue: clip01(p), Method: KSAsymptotic}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksExact is scipy's _attempt_exact_2kssamp for the two-sided alternative.
// It also returns d rounded onto the lattice h/lcm(n1, n2), which scipy
// reports as the statistic.
func ksExact(n1, n2, g int, d float64) (bool, float64, float64) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	d = float64(h) / float64(lcm)
	if h == 0 {
		return true, d, 1.0
	}
	var p float64
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 || p > 1 {
		return false, d, p
	}
	return true, d, p
}

// probOutsideSquare is Pr(D_{n,n} >= h/n) by a Horner-like evaluation of
// 2 * sum_k (-1)^(k+1) binom(2n, n-kh) / binom(2n, n).
func probOutsideSquare(n, h int) float64 {
	P := 0.0
	k := int(math.Floor(float64(n) / float64(h)))
	for k >= 0 {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1.0 - P)
		k--
	}
	return 2 * P
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// outerProbInside is the proportion of lattice paths from (0,0) to (m,n)
// that leave the band |x/m - y/n| < h/lcm(m,n), computed directly as 1-p
// (Hodges 1958; Viehmann 2021, arXiv:2102.08037).
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg := m / g
	ng := n / g
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	A := make([]float64, lenA)
	for i := range A {
		A[i] = 1
	}
	for i := minj; i < maxj; i++ {
		A[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(floorDiv(ng*i-h, mg)+1, 0)
		minj = min(minj, n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1.0
		}
		val := 1.0
		if minj == 0 {
			val = 0.0
		}
		fi := float64(i)
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (A[jj+minj-lastminj]*fi + val*float64(j)) / (fi + float64(j))
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for q := maxj - minj; q < maxj-minj+(lastlen-curlen) && q < lenA; q++ {
				A[q] = 1
			}
		}
	}
	return A[maxj-minj-1]
}
