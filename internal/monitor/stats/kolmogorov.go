package stats

import (
	"math"
)

// This file computes the survival function of the two-sided one-sample
// Kolmogorov-Smirnov statistic D_n, the distribution scipy calls kstwo and
// uses for the asymptotic two-sample p-value. The algorithm choice follows
// Simard & L'Ecuyer, "Computing the Two-Sided Kolmogorov-Smirnov
// Distribution", J. Stat. Softw. 39(11), 2011, with the same thresholds as
// scipy.stats._ksstats (scipy 1.10): Ruben-Gambino for the extremes, the
// Durbin matrix (Marsaglia-Tsang-Wang) and Pomeranz recursions for small n,
// Pelz-Good otherwise, and twice the one-sided Smirnov tail where that tail
// is accurate.

const (
	e128 = 128
)

var (
	ep128 = math.Ldexp(1, e128)
	em128 = math.Ldexp(1, -e128)
)

var stirlingCoeffs = [...]float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2}

func polyval(c []float64, x float64) float64 {
	r := 0.0
	for _, v := range c {
		r = r*x + v
	}
	return r
}

// logNFactorialDivNPowN is log(n!/n^n) by Stirling's series.
func logNFactorialDivNPowN(n float64) float64 {
	rn := 1.0 / n
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*polyval(stirlingCoeffs[:], rn/n)
}

func clip01(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}

// KolmogorovSF returns Pr(D_n > x) for the two-sided one-sample
// Kolmogorov-Smirnov statistic with n observations (scipy's kstwo.sf).
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	// Support of kstwo is [0.5/n, 1].
	if x <= 0.5/float64(n) {
		return 1
	}
	if x >= 1 {
		return 0
	}
	fn := float64(n)
	t := fn * x
	if t <= 1.0 {
		if t <= 0.5 {
			return 1
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1.0 / fn) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logNFactorialDivNPowN(fn) + fn*math.Log(2*t-1))
		}
		return clip01(1 - prob)
	}
	if t >= fn-1 {
		return clip01(2 * math.Pow(1.0-x, fn))
	}
	if x >= 0.5 {
		return clip01(2 * SmirnovSF(n, x))
	}
	nxsquared := t * x
	if n <= 140 {
		if nxsquared <= 0.754693 {
			return clip01(1 - kolmognDMTW(n, x))
		}
		if nxsquared <= 4 {
			return clip01(1 - kolmognPomeranz(n, x))
		}
		return clip01(2 * SmirnovSF(n, x))
	}
	if nxsquared >= 370.0 {
		return 0
	}
	if nxsquared >= 2.2 {
		return clip01(2 * SmirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nxsquared >= 18.0:
		cdf = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdf = kolmognDMTW(n, x)
	default:
		cdf = kolmognPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

// kolmognDMTW is Pr(D_n <= d) by the Durbin matrix algorithm in the
// Marsaglia-Tsang-Wang formulation.
func kolmognDMTW(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	H := newMat(m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		v[j-1] = 1.0 - math.Pow(h, float64(j))
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] *= fac
	}
	tt := math.Pow(math.Max(2*h-1.0, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1.0 + tt) * fac
	for i := 1; i < m; i++ {
		// H[i-1:, i] = w[:m-i+1]
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-(i-1)])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}
	Hpwr := identity(m)
	nn := n
	expnt := 0
	Hexpnt := 0
	for nn > 0 {
		if nn%2 == 1 {
			Hpwr = matmul(Hpwr, H)
			expnt += Hexpnt
		}
		H = matmul(H, H)
		Hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			H.scale(1 / ep128)
			Hexpnt += e128
		}
		nn /= 2
	}
	p := Hpwr.at(k-1, k-1)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

type mat struct {
	n int
	a []float64
}

func newMat(n int) mat                { return mat{n: n, a: make([]float64, n*n)} }
func (m mat) at(i, j int) float64     { return m.a[i*m.n+j] }
func (m mat) set(i, j int, v float64) { m.a[i*m.n+j] = v }
func (m mat) scale(f float64) {
	for i := range m.a {
		m.a[i] *= f
	}
}

func identity(n int) mat {
	m := newMat(n)
	for i := 0; i < n; i++ {
		m.set(i, i, 1)
	}
	return m
}

func matmul(x, y mat) mat {
	n := x.n
	r := newMat(n)
	for i := 0; i < n; i++ {
		ri := r.a[i*n : (i+1)*n]
		for k := 0; k < n; k++ {
			xik := x.a[i*n+k]
			if xik == 0 {
				continue
			}
			yk := y.a[k*n : (k+1)*n]
			for j := range ri {
				ri[j] += xik * yk[j]
			}
		}
	}
	return r
}

func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		if ip1mod2 == 0 {
			if ip1div2 == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
			}
		} else {
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// kolmognPomeranz is Pr(D_n <= x) by the Pomeranz (1974) recursion.
func kolmognPomeranz(n int, x float64) float64 {
	fn := float64(n)
	t := fn * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1.0-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gpower := make([]float64, npwrs)
	twogpower := make([]float64, npwrs)
	onem2gpower := make([]float64, npwrs)
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	expnt := 0
	gOverN, twoGOverN, oneMinusTwoGOverN := g/fn, 2*g/fn, (1-2*g)/fn
	for m := 1; m < npwrs; m++ {
		gpower[m] = gpower[m-1] * gOverN / float64(m)
		twogpower[m] = twogpower[m-1] * twoGOverN / float64(m)
		onem2gpower[m] = onem2gpower[m-1] * oneMinusTwoGOverN / float64(m)
	}
	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	V0s, V1s := 0, 0
	j1, _ := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	conv := make([]float64, 2*npwrs)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		V0s, V1s = V1s, V0s
		clear(V1)
		var j2 int
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pwrs []float64
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		default:
			pwrs = onem2gpower
		}
		ln2 := j2 - k1 + 1
		if ln2 > 0 {
			a := V0[k1-V0s : k1-V0s+ln2]
			b := pwrs[:ln2]
			// Full convolution of a and b (numpy.convolve), only the
			// entries [j1-k1, j2-k1] are used.
			convStart := j1 - k1
			convLen := j2 - j1 + 1
			c := conv[:convLen]
			for o := 0; o < convLen; o++ {
				idx := convStart + o
				s := 0.0
				lo := max(0, idx-(len(b)-1))
				hi := min(idx, len(a)-1)
				for p := lo; p <= hi; p++ {
					s += a[p] * b[idx-p]
				}
				c[o] = s
			}
			copy(V1[:convLen], c)
			mx := 0.0
			for _, v := range V1 {
				mx = math.Max(mx, v)
			}
			if 0 < mx && mx < em128 {
				for q := range V1 {
					V1[q] *= ep128
				}
				expnt -= e128
			}
			V1s = V0s + j1 - k1
		}
	}
	ans := V1[n-V1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += e128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

// kolmognPelzGood is the Pelz-Good (1976) approximation of Pr(D_n <= x).
func kolmognPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	pi2 := math.Pi * math.Pi
	pi4 := pi2 * pi2
	pi6 := pi4 * pi2
	sqrt2pi := math.Sqrt(2 * math.Pi)
	z := math.Sqrt(float64(n)) * x
	zsquared, zthree, zfour, zsix := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)
	qlog := -pi2 / 8 / zsquared
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a := -zsquared
	k1b := pi2 / 4
	k2a := 6*zsix + 2*zfour
	k2b := (2*zfour - 5*zsquared) * pi2 / 4
	k2c := pi4 * (1 - 2*zsquared) / 16
	k3d := pi6 * (5 - 30*zsquared) / 64
	k3c := pi4 * (-60*zsquared + 212*zfour) / 16
	k3b := pi2 * (135*zfour - 96*zsix) / 4
	k3a := -30*zsix - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		msq, m4, m6 := m*m, math.Pow(m, 4), math.Pow(m, 6)
		qpower := math.Pow(q, float64(8*k))
		c := [4]float64{1.0,
			k1a + k1b*msq,
			k2a + k2b*msq + k2c*m4,
			k3a + k3b*msq + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qpower + c[i]
		}
	}
	den := [4]float64{z, 6 * zfour, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] *= q
		K[i] *= sqrt2pi
		K[i] /= den[i]
	}
	q = math.Exp(-pi2 / 2 / zsquared)
	var k2extra, k3extra float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k > 0; k-- {
		ksq := float64(k * k)
		qp := math.Pow(q, ksq)
		k2extra += ksq * qp
		kspi := math.Pi * float64(k)
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp
	}
	k2extra *= pi2 * sqrt2pi / (-36 * zthree)
	K[2] += k2extra
	k3extra *= pi2 * sqrt2pi / (216 * zsix)
	K[3] += k3extra
	fn := float64(n)
	for i := range K {
		K[i] /= math.Pow(fn, float64(i)/2.0)
	}
	return K[0] + K[1] + K[2] + K[3]
}

// SmirnovSF returns Pr(D+_n > x), the one-sided Smirnov tail (scipy's
// special.smirnov), by the Birnbaum-Tingey sum evaluated in log space with
// an exact running binomial coefficient. For n above one million it uses the
// same asymptotic formula as scipy, exp(-(6nx+1)^2/(18n)).
func SmirnovSF(n int, x float64) float64 {
	if !(n > 0 && x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	fn := float64(n)
	nx := fn * x
	nxfl := int(math.Floor(nx))
	alpha := nx - float64(nxfl)
	if nxfl == 0 || (nxfl == 1 && alpha == 0) {
		cdf := x * math.Pow(1+x, fn-1)
		return 1 - cdf
	}
	const minLog = -7.08396418532264106224e2
	if -2*fn*x*x < minLog {
		return 0
	}
	if nxfl >= n-1 {
		return math.Pow(1-x, fn)
	}
	if n > 1000000 {
		logp := -math.Pow(6.0*fn*x+1, 2) / 18.0 / fn
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 - (-math.Expm1(logp))
	}
	// sf = x * sum_{v=0}^{n-nxfl-1} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v)
	// log C(n, v) grows to about n*ln 2 while the terms stay near 1, so
	// it is accumulated with a compensated sum: a plain running sum over
	// up to 10^6 steps loses about 1e-8 of relative accuracy.
	last := n - nxfl - 1
	var logC neumaier
	var terms []float64
	maxT := math.Inf(-1)
	for v := 0; v <= last; v++ {
		if v > 0 {
			logC.add(math.Log(float64(n-v+1) / float64(v)))
		}
		fv := float64(v)
		a := x + fv/fn
		b := (fn-fv)/fn - x
		if b <= 0 {
			break
		}
		lt := (logC.s + ((fv-1)*math.Log(a) + (fn-fv)*math.Log(b))) + logC.c
		terms = append(terms, lt)
		if lt > maxT {
			maxT = lt
		}
		// Terms decay geometrically past the peak: stop once negligible.
		if lt < maxT-50 && v > 2 {
			break
		}
	}
	s := 0.0
	for _, lt := range terms {
		s += math.Exp(lt - maxT)
	}
	return clip01(x * s * math.Exp(maxT))
}
