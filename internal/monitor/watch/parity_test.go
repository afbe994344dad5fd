package watch

import (
	"bytes"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
)

// TestSummariesMatchOffline: fairness and drift from the window summaries
// equal the offline computations (`custody performance --group-column`,
// `custody drift --reference-profile`) on the same rows, and a parity
// breach is flagged.
func TestSummariesMatchOffline(t *testing.T) {
	ref := referenceProfile(t, 10)
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := generate(t0, time.Hour, scenario{rows: 4000, seed: 11, xShift: 0.3})
	// NBA's scores pushed down: fewer positive predictions there.
	for i := range rows {
		if rows[i].sport == "NBA" {
			rows[i].score *= 0.6
		}
	}
	var logs bytes.Buffer
	m := Monitor{Name: "p", Model: "churn", Reference: "r", Window: Duration(time.Hour), Segments: []string{"sport"},
		Metrics: Metrics{Fairness: []FairnessRule{{Attribute: "sport"}}, Drift: []DriftRule{{PSI: ptr(0.05)}}}}
	store, _ := NewFileStore(t.TempDir())
	e, err := New(m, ref, Options{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, e, rows)
	res, err := e.Evaluate(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}

	groups := make([]string, len(rows))
	actual := make([]bool, len(rows))
	pred := make([]bool, len(rows))
	for i, r := range rows {
		groups[i], actual[i], pred[i] = r.sport, r.label == 1, r.score >= 0.5
	}
	want := monitor.EvaluateFairness("sport", groups, actual, pred)
	if len(res.Fairness) != 1 {
		t.Fatalf("fairness: %+v", res.Fairness)
	}
	got := res.Fairness[0]
	for _, pair := range [][2]monitor.Float{
		{got.DemographicParityRatio, want.DemographicParityRatio},
		{got.DemographicParityDifference, want.DemographicParityDifference},
		{got.EqualizedOddsDifference, want.EqualizedOddsDifference},
	} {
		if pair[0] != pair[1] {
			t.Errorf("fairness from summaries %v, offline %v", pair[0], pair[1])
		}
	}
	if !(want.DemographicParityRatio < 0.8) || !breached(res, MetricParityRatio, "sport") {
		t.Errorf("parity ratio %v not flagged", want.DemographicParityRatio)
	}

	// Drift: the same rows as a file, compared with the profile offline.
	path := filepath.Join(t.TempDir(), "cur.csv")
	writeCSV(t, path, rows)
	tab, err := monitor.ReadTableAs(t.Context(), path, nil, []string{"sport", "color"})
	if err != nil {
		t.Fatal(err)
	}
	off, err := monitor.CompareProfile(ref, tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range off {
		var fd *FeatureDrift
		for i := range res.Drift {
			if res.Drift[i].Feature == d.Column {
				fd = &res.Drift[i]
			}
		}
		if fd == nil {
			t.Fatalf("no drift for %s", d.Column)
		}
		if math.Abs(float64(fd.PSI-d.PSI)) > 1e-12 || math.Abs(float64(fd.JensenShannon-d.JensenShannon)) > 1e-12 {
			t.Errorf("%s: psi %v js %v from summaries, offline %v %v", d.Column, fd.PSI, fd.JensenShannon, d.PSI, d.JensenShannon)
		}
	}
	if !breached(res, MetricPSI, "x") {
		t.Errorf("x drift not flagged: %+v", res.Metrics)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("logs mention a secret: %s", logs.String())
	}
}

func breached(r *Result, metric, feature string) bool {
	for _, m := range r.Metrics {
		if m.Metric == metric && m.Feature == feature && m.Segment == "" {
			return m.Breached
		}
	}
	return false
}
