package summary_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/summary"
)

// mergeAll merges parts in a random order and grouping.
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

func TestCalibrationMergeExactAndMatchesOffline(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 30; trial++ {
		n := 1 + r.IntN(3000)
		probs := make([]float64, n)
		ys := make([]bool, n)
		for i := range probs {
			probs[i] = math.Round(r.Float64()*1000) / 1000
			ys[i] = r.Float64() < probs[i]
		}
		bins := 1 + r.IntN(20)
		whole, _ := summary.NewCalibration(bins)
		k := 1 + r.IntN(6)
		parts := make([]*summary.Calibration, k)
		for i := range parts {
			parts[i], _ = summary.NewCalibration(bins)
		}
		for i, p := range probs {
			whole.Add(p, ys[i])
			parts[r.IntN(k)].Add(p, ys[i])
		}
		got := mergeAll(r, parts, func(a, b *summary.Calibration) *summary.Calibration {
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
			return a
		})
		if !reflect.DeepEqual(got, whole) {
			t.Fatalf("trial %d: merged buckets differ from the whole", trial)
		}
		rep := got.Report()
		off, err := monitor.Calibrate(probs, ys, bins, monitor.StrategyUniform)
		if err != nil {
			t.Fatal(err)
		}
		// Scores are quantised to 2^-52: agreement to 1e-12.
		if math.Abs(rep.ECE-float64(off.ECE)) > 1e-12 || math.Abs(rep.MCE-float64(off.MCE)) > 1e-12 || math.Abs(rep.Brier-float64(off.Brier)) > 1e-12 {
			t.Fatalf("trial %d: summary ece=%v mce=%v brier=%v, offline %v %v %v", trial, rep.ECE, rep.MCE, rep.Brier, off.ECE, off.MCE, off.Brier)
		}
		for i, b := range rep.Buckets {
			if b.Count != off.Table[i].Count {
				t.Fatalf("trial %d: bucket %d count %d, offline %d", trial, i, b.Count, off.Table[i].Count)
			}
		}
	}
}
