// Package summary implements the mergeable summaries that streaming
// monitors update at ingest: counts over bins fixed from a reference, a
// relative-error quantile sketch, calibration buckets and confusion counts
// per segment.
//
// Every summary has an Add method for one observation and a Merge method
// that is exact: merging the summaries of several shards, in any order and
// any grouping, gives the same value, bit for bit, as one summary of all the
// observations (Merge is associative and commutative). Reports read a
// summary in O(bins), whatever the number of observations. The design and
// its error bounds are described in docs/monitoring.md.
package summary

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// ErrIncompatible is returned by Merge when two summaries were built with
// different bins or parameters. Check with errors.Is.
var ErrIncompatible = errors.New("summaries are not compatible")

// Binned counts numeric values over fixed edges e_0 < ... < e_k, as
// numpy.histogram would (bin i is [e_i, e_{i+1}), the last bin closed),
// plus an underflow bin (< e_0) and an overflow bin (> e_k) so that no
// value of a later window is lost. Missing values (NaN) and ±Inf are
// counted apart.
type Binned struct {
	Edges     []float64 `json:"edges"`
	Counts    []int64   `json:"counts"` // len(Edges)+1: underflow, bins..., overflow
	Missing   int64     `json:"missing"`
	NonFinite int64     `json:"non_finite"`
}

// NewBinned returns empty counts over edges (at least two, increasing).
func NewBinned(edges []float64) (*Binned, error) {
	if len(edges) < 2 {
		return nil, fmt.Errorf("need at least two edges: %w", ErrIncompatible)
	}
	for i := 1; i < len(edges); i++ {
		if !(edges[i] > edges[i-1]) {
			return nil, fmt.Errorf("edges must increase: %w", ErrIncompatible)
		}
	}
	return &Binned{Edges: slices.Clone(edges), Counts: make([]int64, len(edges)+1)}, nil
}

// ReferenceEdges returns the edges a streaming monitor fixes from a
// reference sample (sorted, finite): numpy's Sturges edges over the
// reference alone. Evidently's offline report uses the reference and
// current samples combined instead; see docs/monitoring.md.
func ReferenceEdges(sortedRef []float64) []float64 {
	return stats.SturgesEdges(sortedRef[0], sortedRef[len(sortedRef)-1], len(sortedRef))
}

// Add counts one value.
func (b *Binned) Add(x float64) {
	switch {
	case math.IsNaN(x):
		b.Missing++
		return
	case math.IsInf(x, 0):
		b.NonFinite++
		return
	}
	b.Counts[b.index(x)]++
}

func (b *Binned) index(x float64) int {
	e := b.Edges
	last := len(e) - 1
	switch {
	case x < e[0]:
		return 0
	case x > e[last]:
		return len(b.Counts) - 1
	case x == e[last]:
		return last
	}
	// Number of edges <= x, which is >= 1 here.
	return sort.Search(len(e), func(i int) bool { return e[i] > x })
}

// Total is the number of finite values counted.
func (b *Binned) Total() int64 {
	var n int64
	for _, c := range b.Counts {
		n += c
	}
	return n
}

// Merge adds o's counts into b. The edges must be identical.
func (b *Binned) Merge(o *Binned) error {
	if !slices.Equal(b.Edges, o.Edges) || len(b.Counts) != len(o.Counts) {
		return fmt.Errorf("binned counts over different edges: %w", ErrIncompatible)
	}
	for i, c := range o.Counts {
		b.Counts[i] += c
	}
	b.Missing += o.Missing
	b.NonFinite += o.NonFinite
	return nil
}

// Drift compares b (current) with ref over their common bins with
// Evidently's PSI (empty bins floored) and Jensen-Shannon distance. The
// underflow and overflow bins take part. Cost: O(bins).
func (b *Binned) Drift(ref *Binned) (psi, js float64, err error) {
	if !slices.Equal(b.Edges, ref.Edges) {
		return 0, 0, fmt.Errorf("binned counts over different edges: %w", ErrIncompatible)
	}
	return countsDrift(ref.Counts, b.Counts)
}

func countsDrift(rc, cc []int64) (psi, js float64, err error) {
	var nr, nc int64
	for i := range rc {
		nr += rc[i]
		nc += cc[i]
	}
	if nr == 0 || nc == 0 {
		return math.NaN(), math.NaN(), errors.New("no values to compare")
	}
	rp, cp := stats.Shares(rc, nr), stats.Shares(cc, nc)
	js = stats.JensenShannon(rp, cp)
	psi = stats.PSI(stats.FillZeros(rp), stats.FillZeros(cp))
	return psi, js, nil
}

// Categories counts the values of a categorical column.
type Categories struct {
	Counts  map[string]int64 `json:"counts"`
	Missing int64            `json:"missing"`
}

// NewCategories returns empty counts.
func NewCategories() *Categories { return &Categories{Counts: map[string]int64{}} }

// Add counts one value; missing values are counted apart.
func (c *Categories) Add(v string, missing bool) {
	if missing {
		c.Missing++
		return
	}
	c.Counts[v]++
}

// Merge adds o's counts into c.
func (c *Categories) Merge(o *Categories) error {
	for k, v := range o.Counts {
		c.Counts[k] += v
	}
	c.Missing += o.Missing
	return nil
}

// Drift compares c (current) with ref: PSI, Jensen-Shannon distance and
// the chi-square goodness of fit, as Evidently defines them for
// categorical columns. Cost: O(categories).
func (c *Categories) Drift(ref *Categories) (psi, js float64, chi stats.ChiSquareResult, err error) {
	keys := make([]string, 0, len(ref.Counts)+len(c.Counts))
	for k := range ref.Counts {
		keys = append(keys, k)
	}
	for k := range c.Counts {
		if _, ok := ref.Counts[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	rc := make([]int64, len(keys))
	cc := make([]int64, len(keys))
	var nr, nc int64
	for i, k := range keys {
		rc[i], cc[i] = ref.Counts[k], c.Counts[k]
		nr += rc[i]
		nc += cc[i]
	}
	psi, js, err = countsDrift(rc, cc)
	if err != nil {
		return psi, js, chi, err
	}
	k := float64(nc) / float64(nr)
	obs := make([]float64, len(keys))
	exp := make([]float64, len(keys))
	for i := range keys {
		obs[i], exp[i] = float64(cc[i]), float64(rc[i])*k
	}
	return psi, js, stats.ChiSquare(obs, exp), nil
}

// ExactSum is an exact sum of values in [0, 1] quantised to multiples of
// 2^-52, held as a 128-bit integer count of 2^-52 units. Integer addition
// makes the sum exact, associative and commutative; quantising a score
// moves it by at most 2^-53 (1.1e-16).
type ExactSum struct {
	Hi uint64 `json:"hi"`
	Lo uint64 `json:"lo"`
}

const fixedScale = 1 << 52

func (f *ExactSum) addUnits(u uint64) {
	var c uint64
	f.Lo, c = bits.Add64(f.Lo, u, 0)
	f.Hi += c
}

func (f *ExactSum) add(o ExactSum) {
	var c uint64
	f.Lo, c = bits.Add64(f.Lo, o.Lo, 0)
	f.Hi, _ = bits.Add64(f.Hi, o.Hi, c)
}

func (f ExactSum) float() float64 {
	return (float64(f.Hi)*(1<<64) + float64(f.Lo)) / fixedScale
}

// Calibration holds calibration buckets over fixed equal-width bins of
// [0, 1]: per bucket the count, the exact sum of scores and the number of
// positive outcomes. A score equal to an inner edge falls in the lower
// bucket, as in scikit-learn's calibration_curve.
type Calibration struct {
	Edges     []float64  `json:"edges"`
	Count     []int64    `json:"count"`
	SumScore  []ExactSum `json:"sum_score"`
	Positives []int64    `json:"positives"`
	// SumSq is the exact sum of squared errors (p-y)^2, quantised like
	// the scores, for the Brier score.
	SumSq ExactSum `json:"sum_squared_error"`
}

// NewCalibration returns empty buckets over linspace(0, 1, bins+1).
func NewCalibration(bins int) (*Calibration, error) {
	if bins < 1 {
		return nil, fmt.Errorf("bins %d: %w", bins, ErrIncompatible)
	}
	return &Calibration{
		Edges: stats.Linspace(0, 1, bins+1), Count: make([]int64, bins),
		SumScore: make([]ExactSum, bins), Positives: make([]int64, bins),
	}, nil
}

func quantise(p float64) uint64 { return uint64(math.Round(p * fixedScale)) }

// Add records one prediction p in [0, 1] and its outcome. It reports false
// (and records nothing) when p is outside [0, 1] or NaN.
func (c *Calibration) Add(p float64, positive bool) bool {
	if !(p >= 0 && p <= 1) {
		return false
	}
	k := sort.SearchFloat64s(c.Edges[1:len(c.Edges)-1], p)
	c.Count[k]++
	c.SumScore[k].addUnits(quantise(p))
	y := 0.0
	if positive {
		c.Positives[k]++
		y = 1
	}
	c.SumSq.addUnits(quantise((y - p) * (y - p)))
	return true
}

// Merge adds o into c. Both must have the same edges.
func (c *Calibration) Merge(o *Calibration) error {
	if !slices.Equal(c.Edges, o.Edges) {
		return fmt.Errorf("calibration buckets over different edges: %w", ErrIncompatible)
	}
	for k := range c.Count {
		c.Count[k] += o.Count[k]
		c.SumScore[k].add(o.SumScore[k])
		c.Positives[k] += o.Positives[k]
	}
	c.SumSq.add(o.SumSq)
	return nil
}

// Bucket is one row of a reliability table read from a summary.
type Bucket struct {
	Lower, Upper     float64
	Count            int64
	MeanPredicted    float64 // NaN when empty
	FractionPositive float64 // NaN when empty
}

// CalibrationReport is what a summary yields in O(bins).
type CalibrationReport struct {
	Rows    int64
	ECE     float64
	MCE     float64
	Brier   float64
	Buckets []Bucket
}

// Report computes ECE, MCE, Brier score and the reliability table.
func (c *Calibration) Report() CalibrationReport {
	var r CalibrationReport
	for _, n := range c.Count {
		r.Rows += n
	}
	for k, n := range c.Count {
		b := Bucket{Lower: c.Edges[k], Upper: c.Edges[k+1], Count: n, MeanPredicted: math.NaN(), FractionPositive: math.NaN()}
		if n > 0 {
			b.MeanPredicted = c.SumScore[k].float() / float64(n)
			b.FractionPositive = float64(c.Positives[k]) / float64(n)
			gap := math.Abs(b.FractionPositive - b.MeanPredicted)
			r.ECE += float64(n) / float64(r.Rows) * gap
			r.MCE = math.Max(r.MCE, gap)
		}
		r.Buckets = append(r.Buckets, b)
	}
	if r.Rows > 0 {
		r.Brier = c.SumSq.float() / float64(r.Rows)
	} else {
		r.ECE, r.MCE, r.Brier = math.NaN(), math.NaN(), math.NaN()
	}
	return r
}

// Validate checks a Binned read from outside (JSON): increasing finite
// edges, one count per bin plus underflow and overflow, no negative count.
func (b *Binned) Validate() error {
	if len(b.Edges) < 2 || len(b.Counts) != len(b.Edges)+1 {
		return fmt.Errorf("%d edges and %d counts: %w", len(b.Edges), len(b.Counts), ErrIncompatible)
	}
	for i, e := range b.Edges {
		if math.IsNaN(e) || math.IsInf(e, 0) || i > 0 && !(e > b.Edges[i-1]) {
			return fmt.Errorf("edges must be finite and increase: %w", ErrIncompatible)
		}
	}
	for _, c := range b.Counts {
		if c < 0 {
			return fmt.Errorf("negative count: %w", ErrIncompatible)
		}
	}
	if b.Missing < 0 || b.NonFinite < 0 {
		return fmt.Errorf("negative count: %w", ErrIncompatible)
	}
	return nil
}

// Validate checks Categories read from outside: no negative count.
func (c *Categories) Validate() error {
	if c.Missing < 0 {
		return fmt.Errorf("negative count: %w", ErrIncompatible)
	}
	for _, v := range c.Counts {
		if v < 0 {
			return fmt.Errorf("negative count: %w", ErrIncompatible)
		}
	}
	return nil
}
