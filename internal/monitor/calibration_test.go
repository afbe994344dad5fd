package monitor

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCalibrationMatchesSklearn(t *testing.T) {
	exp := loadExpected(t)
	if len(exp.Calibration) == 0 {
		t.Fatal("no calibration fixtures")
	}
	tab, err := ReadTable(t.Context(), "testdata/calibration/preds.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, groups := range exp.Calibration {
		strategy, nb, _ := strings.Cut(key, "_")
		bins, _ := strconv.Atoi(nb)
		rep, err := CalibrateTable(tab, CalibrationOptions{ProbColumn: "prob", LabelColumn: "label", SegmentColumn: "segment", Bins: bins, Strategy: strategy})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Calibration{"all": rep.Overall}
		for _, s := range rep.Segments {
			got[s.Segment] = s.Calibration
		}
		if len(got) != len(groups) {
			t.Fatalf("%s: %d groups, want %d", key, len(got), len(groups))
		}
		for g, want := range groups {
			c, ok := got[g]
			if !ok {
				t.Fatalf("%s: no segment %q", key, g)
			}
			name := key + "/" + g
			for i, e := range want.Edges {
				var lo float64
				if i < len(c.Table) {
					lo = float64(c.Table[i].Lower)
				} else {
					lo = float64(c.Table[i-1].Upper)
				}
				if !close(lo, e) {
					t.Errorf("%s: edge %d = %v, want %v", name, i, lo, e)
				}
			}
			j := 0
			for _, b := range c.Table {
				if b.Count == 0 {
					continue
				}
				if j >= len(want.Counts) {
					t.Fatalf("%s: more non-empty bins than sklearn", name)
				}
				if b.Count != want.Counts[j] || !close(float64(*b.FractionPositive), want.ProbTrue[j]) || !close(float64(*b.MeanPredicted), want.ProbPred[j]) {
					t.Errorf("%s: bin %d: n=%d true=%v pred=%v, want n=%d true=%v pred=%v", name, b.Bin, b.Count, *b.FractionPositive, *b.MeanPredicted, want.Counts[j], want.ProbTrue[j], want.ProbPred[j])
				}
				j++
			}
			if j != len(want.Counts) {
				t.Errorf("%s: %d non-empty bins, want %d", name, j, len(want.Counts))
			}
			if !close(float64(c.ECE), want.ECE) || !close(float64(c.MCE), want.MCE) || !close(float64(c.Brier), want.Brier) {
				t.Errorf("%s: ece=%v mce=%v brier=%v, want %v %v %v", name, c.ECE, c.MCE, c.Brier, want.ECE, want.MCE, want.Brier)
			}
			other := c.ECEEqualMass
			if strategy == StrategyQuantile {
				other = c.ECEEqualWidth
			}
			otherKey := map[string]string{StrategyUniform: "quantile_", StrategyQuantile: "uniform_"}[strategy] + nb
			if w := exp.Calibration[otherKey][g].ECE; !close(float64(other), w) {
				t.Errorf("%s: other-strategy ECE %v, want %v", name, other, w)
			}
		}
	}
}

// The fast paths give exactly what the definitions give.
func TestCalibrationFastPathsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(3000)
		piled := trial%50 == 0 // most scores on one value: the fallback path
		if piled {
			n = 200000
		}
		probs := make([]float64, n)
		for i := range probs {
			if piled && r.IntN(10) > 0 {
				probs[i] = 0.5
			} else if r.IntN(3) == 0 {
				probs[i] = float64(r.IntN(11)) / 10 // ties and values on edges
			} else {
				probs[i] = r.Float64()
			}
		}
		bins := 1 + r.IntN(25)
		sorted := slices.Clone(probs)
		slices.Sort(sorted)
		want, _ := CalibrationEdges(sorted, bins, StrategyQuantile)
		if got := quantileEdges(probs, bins); !slices.Equal(got, want) {
			t.Fatalf("trial %d: quantile edges %v, want %v", trial, got, want)
		}
		uni, _ := CalibrationEdges(nil, bins, StrategyUniform)
		inner := uni[1 : len(uni)-1]
		for _, p := range probs {
			if a, b := uniformBinOf(inner, p), binOf(inner, p); a != b {
				t.Fatalf("bins %d p %v: uniformBinOf %d, searchsorted %d", bins, p, a, b)
			}
		}
	}
}

// The two-pass parallel calibration gives what the definitions give: the
// same bins and counts, sums equal up to the order of addition.
func TestCalibratePassesMatchSimple(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	near := func(a, b Float) bool {
		x, y := float64(a), float64(b)
		// Everything is in [0, 1]. A sequential sum of 10^5 equal scores
		// (numpy's bincount, calibrateSimple) is itself off by ~1e-13
		// relative, and gaps are differences of close numbers: compare
		// absolutely, far below the 1e-9 of the sklearn fixtures.
		return math.Abs(x-y) <= 1e-11
	}
	for trial := 0; trial < 40; trial++ {
		n := 1 + r.IntN(5000)
		if trial%2 == 0 {
			n = 1<<16 + r.IntN(200000) // parallel passes
		}
		kind := trial % 5
		probs := make([]float64, n)
		ys := make([]bool, n)
		for i := range probs {
			switch {
			case kind == 0 && r.IntN(10) > 0:
				probs[i] = 0.5 // piled: the selection fallback
			case kind == 1:
				probs[i] = float64(r.IntN(11)) / 10 // ties, values on edges
			case kind == 2:
				probs[i] = math.Pow(r.Float64(), 8) // crowded near 0
			case kind == 3 && r.IntN(50) == 0:
				probs[i] = float64(r.IntN(2)) // exact 0 and 1
			default:
				probs[i] = r.Float64()
			}
			ys[i] = r.Float64() < probs[i]
		}
		bins := 1 + r.IntN(30)
		if trial%7 == 0 {
			bins = 1000
		}
		for _, strategy := range []string{StrategyUniform, StrategyQuantile} {
			got, err := Calibrate(probs, ys, bins, strategy)
			if err != nil {
				t.Fatal(err)
			}
			want, err := calibrateSimple(probs, ys, bins, strategy)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.ECE, want.ECE) || !near(got.MCE, want.MCE) || !near(got.Brier, want.Brier) ||
				!near(got.ECEEqualMass, want.ECEEqualMass) || !near(got.ECEEqualWidth, want.ECEEqualWidth) {
				t.Fatalf("trial %d %s: %+v, want %+v", trial, strategy, got, want)
			}
			for k, b := range got.Table {
				w := want.Table[k]
				if b.Count != w.Count || b.Lower != w.Lower || b.Upper != w.Upper || (b.Gap == nil) != (w.Gap == nil) ||
					(b.Gap != nil && (!near(*b.Gap, *w.Gap) || !near(*b.MeanPredicted, *w.MeanPredicted) || *b.FractionPositive != *w.FractionPositive)) {
					t.Fatalf("trial %d %s bin %d: %+v, want %+v (%v %v %v, want %v %v %v)", trial, strategy, k, b, w, *b.Gap, *b.MeanPredicted, *b.FractionPositive, *w.Gap, *w.MeanPredicted, *w.FractionPositive)
				}
			}
		}
	}
	if _, err := Calibrate([]float64{0.5, 1.5}, []bool{true, false}, 10, StrategyUniform); err == nil {
		t.Fatal("probability 1.5 accepted")
	}
}

func TestOutcomesParallel(t *testing.T) {
	col := func(vals ...float64) *Column {
		c := newColumn("y")
		for i := 0; i < 200000; i++ {
			v := vals[i%len(vals)]
			if i == 150000 && len(vals) > 3 {
				v = vals[3] // a label only in the second half
			}
			c.Rows++
			c.num = append(c.num, v)
		}
		return c
	}
	nan := math.NaN()
	for _, tc := range []struct {
		vals []float64
		ok   bool
	}{
		{[]float64{0, 1, nan}, true},
		{[]float64{-1, 1, 1}, true},
		{[]float64{0, 1, math.Copysign(0, -1)}, true}, // -0 and 0 are one label
		{[]float64{0, 1, 1, 2}, false},                // a third label late
		{[]float64{-1, 1, 0}, false},
		{[]float64{0, 2, 2}, false},
	} {
		c := col(tc.vals...)
		out, valid, err := Outcomes(c, "")
		if (err == nil) != tc.ok {
			t.Fatalf("%v: err %v", tc.vals, err)
		}
		if err != nil {
			continue
		}
		for i, v := range c.num {
			if valid[i] != !math.IsNaN(v) || out[i] != (v == 1) {
				t.Fatalf("%v: row %d: out %v valid %v", tc.vals, i, out[i], valid[i])
			}
		}
	}
}
