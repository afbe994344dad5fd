package monitor

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

type perfExpected struct {
	Performance struct {
		Reference, Current struct {
			Accuracy  float64   `json:"accuracy"`
			Classes   []string  `json:"classes"`
			Precision []float64 `json:"precision"`
			Recall    []float64 `json:"recall"`
		}
		ByClass   concExpected `json:"by_class"`
		BySegment concExpected `json:"by_segment"`
		Fairness  struct {
			Groups   []string  `json:"groups"`
			Sel      []float64 `json:"selection_rate"`
			TPR      []float64 `json:"tpr"`
			FPR      []float64 `json:"fpr"`
			DPD      float64   `json:"demographic_parity_difference"`
			DPR      float64   `json:"demographic_parity_ratio"`
			EOD      float64   `json:"equalized_odds_difference"`
			Rule     bool      `json:"four_fifths_rule_passed"`
			Accuracy float64   `json:"accuracy"`
		} `json:"fairness"`
	} `json:"performance"`
}

type concExpected struct {
	Strata   []string  `json:"strata"`
	Z        []float64 `json:"z"`
	P        []float64 `json:"p"`
	Holm     []float64 `json:"holm"`
	Q        float64   `json:"q"`
	QDF      int       `json:"q_df"`
	QP       float64   `json:"q_p"`
	OverallZ float64   `json:"overall_z"`
	OverallP float64   `json:"overall_p"`
}

func loadPerf(t *testing.T) perfExpected {
	t.Helper()
	data, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e perfExpected
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Performance.Current.Classes) == 0 {
		t.Fatal("no performance fixtures")
	}
	return e
}

func checkPerf(t *testing.T, name string, got Performance, acc float64, classes []string, prec, rec []float64) {
	t.Helper()
	if !close(float64(got.Accuracy), acc) {
		t.Errorf("%s: accuracy %v, sklearn %v", name, got.Accuracy, acc)
	}
	if len(got.Classes) != len(classes) {
		t.Fatalf("%s: %d classes, sklearn %d", name, len(got.Classes), len(classes))
	}
	for i, c := range got.Classes {
		if c.Class != classes[i] || !close(float64(c.Precision), prec[i]) || !close(float64(c.Recall), rec[i]) {
			t.Errorf("%s: class %s precision %v recall %v, sklearn %s %v %v", name, c.Class, c.Precision, c.Recall, classes[i], prec[i], rec[i])
		}
	}
}

func checkConc(t *testing.T, name string, got *Concentration, want concExpected) {
	t.Helper()
	if got == nil || len(got.Strata) != len(want.Strata) {
		t.Fatalf("%s: strata %+v, want %v", name, got, want.Strata)
	}
	for i, s := range got.Strata {
		if s.Stratum != want.Strata[i] || !close(float64(s.Z), want.Z[i]) || !close(float64(s.PValue), want.P[i]) || !close(float64(s.PValueHolm), want.Holm[i]) {
			t.Errorf("%s: %s z=%v p=%v holm=%v, statsmodels %s %v %v %v", name, s.Stratum, s.Z, s.PValue, s.PValueHolm, want.Strata[i], want.Z[i], want.P[i], want.Holm[i])
		}
	}
	if !close(float64(got.Q), want.Q) || got.QDF != want.QDF || !close(float64(got.QPValue), want.QP) {
		t.Errorf("%s: Q=%v df=%d p=%v, statsmodels %v %d %v", name, got.Q, got.QDF, got.QPValue, want.Q, want.QDF, want.QP)
	}
	if !close(float64(got.Overall.Z), want.OverallZ) || !close(float64(got.Overall.PValue), want.OverallP) {
		t.Errorf("%s: overall z=%v p=%v, statsmodels %v %v", name, got.Overall.Z, got.Overall.PValue, want.OverallZ, want.OverallP)
	}
}

func TestPerformanceMatchesSklearnStatsmodels(t *testing.T) {
	e := loadPerf(t).Performance
	ref, err := ReadTable(t.Context(), "testdata/performance/ref.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ReadTable(t.Context(), "testdata/performance/cur.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := EvaluateTables(cur, ref, PerformanceOptions{LabelColumn: "label", PredColumn: "pred", SegmentColumn: "segment"})
	if err != nil {
		t.Fatal(err)
	}
	checkPerf(t, "current", rep.Current, e.Current.Accuracy, e.Current.Classes, e.Current.Precision, e.Current.Recall)
	checkPerf(t, "reference", *rep.ReferencePerf, e.Reference.Accuracy, e.Reference.Classes, e.Reference.Precision, e.Reference.Recall)
	checkConc(t, "by class", rep.ByClass, e.ByClass)
	checkConc(t, "by segment", rep.BySegment, e.BySegment)
	// make_fixtures.py degrades class "c" and segment "mobile" only.
	if rep.ByClass.Verdict != VerdictConcentrated || !slices.Equal(rep.ByClass.ConcentratedIn, []string{"c"}) {
		t.Errorf("by class: verdict %s %v, want concentrated in c", rep.ByClass.Verdict, rep.ByClass.ConcentratedIn)
	}
	if rep.BySegment.Verdict != VerdictConcentrated || !slices.Equal(rep.BySegment.ConcentratedIn, []string{"mobile"}) {
		t.Errorf("by segment: verdict %s %v, want concentrated in mobile", rep.BySegment.Verdict, rep.BySegment.ConcentratedIn)
	}
}

func TestFairnessMatchesFairlearnDefinitions(t *testing.T) {
	f := loadPerf(t).Performance.Fairness
	tab, err := ReadTable(t.Context(), "testdata/performance/fairness.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := EvaluateTables(tab, nil, PerformanceOptions{LabelColumn: "label", ProbColumn: "prob", GroupColumns: []string{"group"}})
	if err != nil {
		t.Fatal(err)
	}
	if !close(float64(rep.Current.Accuracy), f.Accuracy) {
		t.Errorf("accuracy %v, sklearn %v", rep.Current.Accuracy, f.Accuracy)
	}
	if len(rep.Fairness) != 1 || len(rep.Fairness[0].Groups) != len(f.Groups) {
		t.Fatalf("fairness %+v", rep.Fairness)
	}
	got := rep.Fairness[0]
	for i, g := range got.Groups {
		if g.Group != f.Groups[i] || !close(float64(g.SelectionRate), f.Sel[i]) || !close(float64(g.TPR), f.TPR[i]) || !close(float64(g.FPR), f.FPR[i]) {
			t.Errorf("group %s: sel %v tpr %v fpr %v, want %s %v %v %v", g.Group, g.SelectionRate, g.TPR, g.FPR, f.Groups[i], f.Sel[i], f.TPR[i], f.FPR[i])
		}
	}
	if !close(float64(got.DemographicParityDifference), f.DPD) || !close(float64(got.DemographicParityRatio), f.DPR) ||
		!close(float64(got.EqualizedOddsDifference), f.EOD) || got.FourFifthsRule != f.Rule {
		t.Errorf("dpd %v dpr %v eod %v rule %v, want %v %v %v %v", got.DemographicParityDifference, got.DemographicParityRatio, got.EqualizedOddsDifference, got.FourFifthsRule, f.DPD, f.DPR, f.EOD, f.Rule)
	}
}
