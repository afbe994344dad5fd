package summary

import (
	"fmt"
	"math"
	"slices"
)

// Sketch is a quantile sketch with relative accuracy Alpha (DDSketch:
// Masson, Rim & Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch
// with Relative-Error Guarantees", VLDB 2019). A value x > 0 falls in
// bucket ceil(log_gamma(x)) with gamma = (1+Alpha)/(1-Alpha); negative
// values use a mirrored store; zeros (|x| < MinValue) are counted apart.
// Every quantile it returns is within a relative error Alpha of a value of
// the sample at that rank (numpy's "lower" quantile). Merge adds bucket
// counts, so it is exact, associative and commutative; the memory is
// O(log(max/min)/Alpha) buckets, about 1400 for Alpha = 0.01 over 12
// decades.
type Sketch struct {
	Alpha    float64         `json:"alpha"`
	Pos      map[int32]int64 `json:"pos"`
	Neg      map[int32]int64 `json:"neg"`
	Zero     int64           `json:"zero"`
	Count    int64           `json:"count"`
	Min      float64         `json:"min"`
	Max      float64         `json:"max"`
	logGamma float64
}

// MinValue is the smallest magnitude a Sketch tells from zero.
const MinValue = 1e-300

// NewSketch returns an empty sketch with relative accuracy alpha in (0, 1).
func NewSketch(alpha float64) (*Sketch, error) {
	if !(alpha > 0 && alpha < 1) {
		return nil, fmt.Errorf("alpha %v: %w", alpha, ErrIncompatible)
	}
	s := &Sketch{Alpha: alpha, Pos: map[int32]int64{}, Neg: map[int32]int64{}, Min: math.Inf(1), Max: math.Inf(-1)}
	s.init()
	return s, nil
}

func (s *Sketch) init() {
	s.logGamma = math.Log((1 + s.Alpha) / (1 - s.Alpha))
}

func (s *Sketch) key(x float64) int32 { return int32(math.Ceil(math.Log(x) / s.logGamma)) }

// value is the representative of bucket k: 2*gamma^k/(gamma+1), within
// Alpha of every value in the bucket.
func (s *Sketch) value(k int32) float64 {
	return 2 * math.Exp(float64(k)*s.logGamma) / (math.Exp(s.logGamma) + 1)
}

// Add records x; NaN and ±Inf are ignored (and reported false).
func (s *Sketch) Add(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if s.logGamma == 0 {
		s.init()
	}
	switch {
	case x >= MinValue:
		s.Pos[s.key(x)]++
	case x <= -MinValue:
		s.Neg[s.key(-x)]++
	default:
		s.Zero++
	}
	s.Count++
	s.Min = math.Min(s.Min, x)
	s.Max = math.Max(s.Max, x)
	return true
}

// Merge adds o into s; both must have the same Alpha.
func (s *Sketch) Merge(o *Sketch) error {
	if s.Alpha != o.Alpha {
		return fmt.Errorf("sketches with alpha %v and %v: %w", s.Alpha, o.Alpha, ErrIncompatible)
	}
	for k, v := range o.Pos {
		s.Pos[k] += v
	}
	for k, v := range o.Neg {
		s.Neg[k] += v
	}
	s.Zero += o.Zero
	s.Count += o.Count
	s.Min = math.Min(s.Min, o.Min)
	s.Max = math.Max(s.Max, o.Max)
	return nil
}

// Quantile returns an estimate of the q-quantile (0 <= q <= 1): within
// relative error Alpha of the sample value of rank floor(q*(Count-1)) in
// ascending order; NaN when empty. Cost: O(buckets log buckets).
func (s *Sketch) Quantile(q float64) float64 {
	if s.Count == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	if s.logGamma == 0 {
		s.init()
	}
	rank := int64(q * float64(s.Count-1))
	var v float64
	// Negative values, most negative first: largest key first.
	neg := sortedKeys(s.Neg)
	var seen int64
	found := false
	for i := len(neg) - 1; i >= 0; i-- {
		seen += s.Neg[neg[i]]
		if seen > rank {
			v, found = -s.value(neg[i]), true
			break
		}
	}
	if !found {
		seen += s.Zero
		if seen > rank {
			v, found = 0, true
		}
	}
	if !found {
		for _, k := range sortedKeys(s.Pos) {
			seen += s.Pos[k]
			if seen > rank {
				v = s.value(k)
				break
			}
		}
	}
	return math.Max(s.Min, math.Min(s.Max, v))
}

func sortedKeys(m map[int32]int64) []int32 {
	keys := make([]int32, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Validate checks a Sketch read from outside: alpha in (0, 1), no negative
// count, and a count equal to the sum of the buckets.
func (s *Sketch) Validate() error {
	if !(s.Alpha > 0 && s.Alpha < 1) {
		return fmt.Errorf("alpha %v: %w", s.Alpha, ErrIncompatible)
	}
	n := s.Zero
	for _, m := range []map[int32]int64{s.Pos, s.Neg} {
		for _, v := range m {
			if v < 0 {
				return fmt.Errorf("negative count: %w", ErrIncompatible)
			}
			n += v
		}
	}
	if s.Zero < 0 || n != s.Count {
		return fmt.Errorf("count %d, buckets hold %d: %w", s.Count, n, ErrIncompatible)
	}
	return nil
}

// points returns the sketch as (value, count) pairs in increasing order of
// value: each bucket at its representative value, clamped to [Min, Max].
func (s *Sketch) points() (vals []float64, counts []int64) {
	if s.logGamma == 0 {
		s.init()
	}
	clamp := func(v float64) float64 { return math.Max(s.Min, math.Min(s.Max, v)) }
	neg := sortedKeys(s.Neg)
	for i := len(neg) - 1; i >= 0; i-- {
		vals, counts = append(vals, clamp(-s.value(neg[i]))), append(counts, s.Neg[neg[i]])
	}
	if s.Zero > 0 {
		vals, counts = append(vals, clamp(0)), append(counts, s.Zero)
	}
	for _, k := range sortedKeys(s.Pos) {
		vals, counts = append(vals, clamp(s.value(k))), append(counts, s.Pos[k])
	}
	return vals, counts
}

// Wasserstein returns the first Wasserstein distance between the
// distributions the two sketches hold, each value replaced by its
// bucket's representative: ∫ |F_s(x) − F_o(x)| dx over the merged points,
// as scipy.stats.wasserstein_distance computes it on weighted samples.
// Every value moves by at most a relative Alpha, so the result is within
// Alpha·(mean |x| of s + mean |x| of o) of the exact distance. NaN when
// either sketch is empty. Cost: O(buckets log buckets).
func (s *Sketch) Wasserstein(o *Sketch) float64 {
	if s.Count == 0 || o.Count == 0 {
		return math.NaN()
	}
	av, ac := s.points()
	bv, bc := o.points()
	na, nb := float64(s.Count), float64(o.Count)
	var ca, cb int64 // cumulative counts at or below the current point
	var w float64
	i, j := 0, 0
	prev := math.Inf(-1)
	for i < len(av) || j < len(bv) {
		x := math.Inf(1)
		if i < len(av) {
			x = av[i]
		}
		if j < len(bv) && bv[j] < x {
			x = bv[j]
		}
		if !math.IsInf(prev, -1) {
			w += math.Abs(float64(ca)/na-float64(cb)/nb) * (x - prev)
		}
		for i < len(av) && av[i] == x {
			ca += ac[i]
			i++
		}
		for j < len(bv) && bv[j] == x {
			cb += bc[j]
			j++
		}
		prev = x
	}
	return w
}
