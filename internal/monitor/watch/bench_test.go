package watch

import (
	"testing"
	"time"
)

// BenchmarkObserve is the ingest cost of one prediction and its label
// (two features, one segment key), without persistence.
func BenchmarkObserve(b *testing.B) {
	store, _ := NewFileStore(b.TempDir())
	m := Monitor{Name: "b", Model: "churn", Reference: "r", Window: Duration(time.Hour), Segments: []string{"sport"}}
	e, err := New(m, referenceProfile(b, 10), Options{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := generate(t0, time.Hour, scenario{rows: 4096, seed: 1})
	preds := make([]Prediction, len(rows))
	labels := make([]Label, len(rows))
	for i, r := range rows {
		preds[i] = r.prediction("churn")
		labels[i] = Label{Prediction: preds[i], Label: "1"}
	}
	ctx := b.Context()
	i := 0
	for b.Loop() {
		k := i % len(rows)
		e.ObservePrediction(ctx, preds[k])
		e.ObserveLabel(ctx, labels[k])
		i++
	}
}
