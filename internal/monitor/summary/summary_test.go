package summary

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// mergeAll merges parts in a random order and a random grouping (a random
// binary tree), so that the property covers associativity and
// commutativity.
func mergeAll[T any](r *rand.Rand, parts []T, merge func(a, b T) T) T {
	for len(parts) > 1 {
		i := r.IntN(len(parts) - 1)
		if r.IntN(2) == 0 {
			parts[i] = merge(parts[i], parts[i+1])
		} else {
			parts[i] = merge(parts[i+1], parts[i])
		}
		parts = slices.Delete(parts, i+1, i+2)
	}
	return parts[0]
}

func sample(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		switch r.IntN(50) {
		case 0:
			x[i] = math.NaN()
		case 1:
			x[i] = math.Inf(1)
		default:
			x[i] = r.NormFloat64()*3 + 1
		}
	}
	return x
}

func TestBinnedMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		ref := sample(r, 500)
		clean := slices.DeleteFunc(slices.Clone(ref), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
		slices.Sort(clean)
		edges := ReferenceEdges(clean)
		data := sample(r, 1+r.IntN(2000))
		whole, _ := NewBinned(edges)
		for _, v := range data {
			whole.Add(v)
		}
		k := 1 + r.IntN(8)
		parts := make([]*Binned, k)
		for i := range parts {
			parts[i], _ = NewBinned(edges)
		}
		for _, v := range data {
			parts[r.IntN(k)].Add(v)
		}
		got := mergeAll(r, parts, func(a, b *Binned) *Binned {
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			return a
		})
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("trial %d: merged counts differ from the whole", trial)
		}
		// Inside the edges the bins are numpy.histogram's.
		var in []float64
		for _, v := range data {
			if v >= edges[0] && v <= edges[len(edges)-1] {
				in = append(in, v)
			}
		}
		slices.Sort(in)
		if want := stats.HistogramSorted(in, edges); !slices.Equal(whole.Counts[1:len(whole.Counts)-1], want) {
			t.Fatalf("trial %d: bins %v, histogram %v", trial, whole.Counts, want)
		}
	}
	a, _ := NewBinned([]float64{0, 1})
	b, _ := NewBinned([]float64{0, 2})
	if err := a.Merge(b); err == nil {
		t.Fatal("merged counts over different edges")
	}
}

func TestBinnedDriftMatchesOffline(t *testing.T) {
	// With every current value inside the reference's range, the summary
	// PSI/JS over fixed edges equal the offline statistics over the same
	// edges (outer bins empty on both sides).
	r := rand.New(rand.NewPCG(3, 4))
	ref := make([]float64, 3000)
	cur := make([]float64, 2000)
	for i := range ref {
		ref[i] = r.Float64() * 10
	}
	for i := range cur {
		cur[i] = 1 + r.Float64()*8
	}
	slices.Sort(ref)
	slices.Sort(cur)
	edges := ReferenceEdges(ref)
	rb, _ := NewBinned(edges)
	cb, _ := NewBinned(edges)
	for _, v := range ref {
		rb.Add(v)
	}
	for _, v := range cur {
		cb.Add(v)
	}
	psi, js, err := cb.Drift(rb)
	if err != nil {
		t.Fatal(err)
	}
	rc := stats.HistogramSorted(ref, edges)
	cc := stats.HistogramSorted(cur, edges)
	rc = append(append([]int64{0}, rc...), 0)
	cc = append(append([]int64{0}, cc...), 0)
	wpsi := stats.PSI(stats.FillZeros(stats.Shares(rc, 3000)), stats.FillZeros(stats.Shares(cc, 2000)))
	wjs := stats.JensenShannon(stats.Shares(rc, 3000), stats.Shares(cc, 2000))
	if psi != wpsi || js != wjs {
		t.Fatalf("summary psi=%v js=%v, offline %v %v", psi, js, wpsi, wjs)
	}
}

func TestSketchMergeExactAndAccurate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const alpha = 0.01
	for trial := 0; trial < 30; trial++ {
		n := 1 + r.IntN(5000)
		data := make([]float64, n)
		for i := range data {
			switch r.IntN(3) {
			case 0:
				data[i] = r.ExpFloat64() * 100
			case 1:
				data[i] = -r.ExpFloat64()
			default:
				data[i] = math.Round(r.NormFloat64())
			}
		}
		whole, _ := NewSketch(alpha)
		k := 1 + r.IntN(6)
		parts := make([]*Sketch, k)
		for i := range parts {
			parts[i], _ = NewSketch(alpha)
		}
		for _, v := range data {
			whole.Add(v)
			parts[r.IntN(k)].Add(v)
		}
		got := mergeAll(r, parts, func(a, b *Sketch) *Sketch {
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			return a
		})
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("trial %d: merged sketch differs from the whole", trial)
		}
		sorted := slices.Clone(data)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
			want := sorted[int(q*float64(n-1))]
			est := got.Quantile(q)
			if math.Abs(est-want) > alpha*math.Abs(want)+1e-12 {
				t.Fatalf("trial %d: q=%v estimate %v, exact %v: beyond alpha", trial, q, est, want)
			}
		}
	}
}

func TestConfusionMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	classes := []string{"cat", "dog", "eel"}
	segs := []string{"eu", "us"}
	whole := NewConfusion()
	parts := []*Confusion{NewConfusion(), NewConfusion(), NewConfusion()}
	for i := 0; i < 5000; i++ {
		s, a, p := segs[r.IntN(2)], classes[r.IntN(3)], classes[r.IntN(3)]
		whole.Add(s, a, p)
		parts[r.IntN(3)].Add(s, a, p)
	}
	got := mergeAll(r, parts, func(a, b *Confusion) *Confusion {
		if err := a.Merge(b); err != nil {
			t.Fatal(err)
		}
		return a
	})
	if !reflect.DeepEqual(got, whole) {
		t.Fatal("merged confusion differs from the whole")
	}
	all, bySeg := got.Segments()
	if all.Rows != 5000 || len(bySeg) != 2 || bySeg[0].Rows+bySeg[1].Rows != 5000 {
		t.Fatalf("rows: all %d, segments %+v", all.Rows, bySeg)
	}
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	back := NewConfusion()
	if err := json.Unmarshal(data, back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, got) {
		t.Fatal("JSON round trip changed the counts")
	}
}

func TestSketchWasserstein(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	a, _ := NewSketch(0.005)
	b, _ := NewSketch(0.005)
	var xs, ys []float64
	for i := 0; i < 20000; i++ {
		x, y := r.NormFloat64()*2+10, r.NormFloat64()*2+10.5
		xs, ys = append(xs, x), append(ys, y)
		a.Add(x)
		b.Add(y)
	}
	slices.Sort(xs)
	slices.Sort(ys)
	want := stats.Wasserstein1Sorted(xs, ys)
	got := a.Wasserstein(b)
	// Values near 10 move by at most 0.5 %: about 0.05 each way.
	if math.Abs(got-want) > 0.005*2*11 {
		t.Fatalf("sketch W1 %v, exact %v", got, want)
	}
	if d := a.Wasserstein(a); d != 0 {
		t.Fatalf("W1 of a sketch with itself = %v", d)
	}
	empty, _ := NewSketch(0.005)
	if !math.IsNaN(a.Wasserstein(empty)) {
		t.Fatal("W1 with an empty sketch is not NaN")
	}
}
