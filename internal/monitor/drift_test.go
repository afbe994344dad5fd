package monitor

import (
	"fmt"
	"math"
	"testing"
)

func TestDriftMatchesEvidentlyScipy(t *testing.T) {
	exp := loadExpected(t)
	if len(exp.Drift) == 0 {
		t.Fatal("no drift fixtures")
	}
	for name, cols := range exp.Drift {
		t.Run(name, func(t *testing.T) {
			ext := "csv"
			if name == "jsonl" {
				ext = "jsonl"
			}
			ref, err := ReadTable(t.Context(), fmt.Sprintf("testdata/drift/%s_ref.%s", name, ext), nil)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := ReadTable(t.Context(), fmt.Sprintf("testdata/drift/%s_cur.%s", name, ext), nil)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := CompareTables(ref, cur, DriftOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Columns) != len(cols) {
				t.Fatalf("%d columns, want %d", len(rep.Columns), len(cols))
			}
			for _, d := range rep.Columns {
				want, ok := cols[d.Column]
				if !ok {
					t.Errorf("unexpected column %q", d.Column)
					continue
				}
				checkColumn(t, d, want)
			}
		})
	}
}

func checkColumn(t *testing.T, d ColumnDrift, want map[string]any) {
	t.Helper()
	if d.Kind != want["type"] {
		t.Errorf("%s: type %s, want %v", d.Column, d.Kind, want["type"])
		return
	}
	if d.Binning != want["binning"] || float64(d.Bins) != want["bins"].(float64) {
		t.Errorf("%s: binning %s/%d, want %v/%v", d.Column, d.Binning, d.Bins, want["binning"], want["bins"])
	}
	if d.StatTest != want["stattest"] || d.DefaultDrifted != want["stattest_drift"] {
		t.Errorf("%s: stattest %s drift=%v, want %v drift=%v", d.Column, d.StatTest, d.DefaultDrifted, want["stattest"], want["stattest_drift"])
	}
	stats := map[string]float64{
		"psi":                     float64(d.PSI),
		"jensen_shannon":          float64(d.JensenShannon),
		"reference_missing_share": float64(d.ReferenceMissingShare),
		"current_missing_share":   float64(d.CurrentMissingShare),
		"drift_score":             float64(d.DriftScore),
	}
	opt := func(name string, p *Float) {
		if p == nil {
			stats[name] = math.NaN()
		} else {
			stats[name] = float64(*p)
		}
	}
	if d.Kind == Numerical {
		opt("wasserstein_normed", d.WassersteinNormed)
		opt("ks_statistic", d.KSStatistic)
		opt("ks_pvalue", d.KSPValue)
	} else {
		opt("chi2_statistic", d.Chi2Statistic)
		opt("chi2_pvalue", d.Chi2PValue)
	}
	for k, got := range stats {
		w, ok := want[k]
		if !ok {
			t.Errorf("%s: fixture has no %s", d.Column, k)
			continue
		}
		if !close(got, jsonFloat(w)) {
			t.Errorf("%s: %s = %v, want %v (diff %g)", d.Column, k, got, jsonFloat(w), got-jsonFloat(w))
		}
	}
}

// A threshold on a statistic a column does not have leaves that column to
// Evidently's default test; one it has decides the verdict.
func TestThresholdsApplyByKind(t *testing.T) {
	ref, err := ReadTable(t.Context(), "testdata/drift/basic_ref.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ReadTable(t.Context(), "testdata/drift/basic_cur.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	th, err := ParseThreshold("ks_pvalue=0")
	if err != nil {
		t.Fatal(err)
	}
	base, err := CompareTables(ref, cur, DriftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := CompareTables(ref, cur, DriftOptions{Thresholds: Thresholds{th}})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range rep.Columns {
		switch d.Kind {
		case Numerical: // p < 0 never holds: no breach, no drift
			if d.Drifted || len(d.Breaches) > 0 {
				t.Errorf("%s: drifted %v breaches %v", d.Column, d.Drifted, d.Breaches)
			}
		case Categorical: // no KS: the default test decides
			if d.Drifted != base.Columns[i].DefaultDrifted {
				t.Errorf("%s: drifted %v, default test %v", d.Column, d.Drifted, base.Columns[i].DefaultDrifted)
			}
		}
	}
	if rep.Breached {
		t.Error("breached with an unreachable threshold")
	}
}
