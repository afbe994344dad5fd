package summary

import (
	"math/rand/v2"
	"testing"
)

// Reports read summaries in O(bins): these benchmarks fill summaries with
// a million observations (outside the timed loop) and time one report.
// The cost does not depend on the number of observations.

func BenchmarkCalibrationReport(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	c, _ := NewCalibration(15)
	for i := 0; i < 1_000_000; i++ {
		p := r.Float64()
		c.Add(p, r.Float64() < p)
	}
	for b.Loop() {
		c.Report()
	}
}

func BenchmarkBinnedDrift(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	ref := make([]float64, 1_000_000)
	for i := range ref {
		ref[i] = r.NormFloat64()
	}
	edges := []float64{-4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4}
	rb, _ := NewBinned(edges)
	cb, _ := NewBinned(edges)
	for _, v := range ref {
		rb.Add(v)
		cb.Add(v + 0.1)
	}
	for b.Loop() {
		if _, _, err := cb.Drift(rb); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSketchQuantiles(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	s, _ := NewSketch(0.005)
	for i := 0; i < 1_000_000; i++ {
		s.Add(r.ExpFloat64() * 100)
	}
	for b.Loop() {
		for _, q := range []float64{0.01, 0.25, 0.5, 0.75, 0.99} {
			s.Quantile(q)
		}
	}
}
