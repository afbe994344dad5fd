package watch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestScheduleAndRestart checks the schedule (EvaluateDue with a label
// delay), that summaries and the breach streak survive a restart (a new
// Set over the same store), and routing by model.
func TestScheduleAndRestart(t *testing.T) {
	dir := t.TempDir()
	prof, err := json.Marshal(referenceProfile(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref.json"), prof, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(strings.NewReader(`
monitors:
  - name: a
    model: churn
    reference: ref.json
    window: 1h
    label_delay: 30m
    min_rows: 200
    consecutive: 2
    rollback: true
  - name: b
    model: other
    reference: ref.json
    window: 1h
`), "cfg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(t0.Unix())
	var rollbacks atomic.Int32
	store, err := NewFileStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	open := func() *Set {
		s, err := OpenSet(cfg, dir, SetOptions{Store: store,
			Rollbacker: RollbackFunc(func(context.Context, string, string, string) error { rollbacks.Add(1); return nil }),
			Options:    Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batch := func(s *Set, i int, shift float64) {
		rows := generate(t0.Add(time.Duration(i)*time.Hour), time.Hour, scenario{rows: 1000, seed: uint64(i), shift: shift})
		var preds []Prediction
		var labels []Label
		for _, r := range rows {
			preds = append(preds, r.prediction("churn"))
			labels = append(labels, Label{Prediction: r.prediction("churn"), Label: map[int]string{0: "0", 1: "1"}[r.label]})
		}
		if err := s.ObserveBatch(t.Context(), preds, labels); err != nil {
			t.Fatal(err)
		}
	}
	s := open()
	batch(s, 0, 0.3)
	// The window has not ended plus the label delay: nothing is due.
	now.Store(t0.Add(80 * time.Minute).Unix())
	if rs, err := s.Engine("a").EvaluateDue(t.Context()); err != nil || len(rs) != 0 {
		t.Fatalf("due too early: %d, %v", len(rs), err)
	}
	now.Store(t0.Add(91 * time.Minute).Unix())
	rs, err := s.Engine("a").EvaluateDue(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Consecutive != 1 {
		t.Fatalf("due: %v %v", rs, err)
	}
	if ws, _ := s.Engine("b").Windows(t.Context()); len(ws) != 0 {
		t.Fatalf("monitor b got churn's records: %v", ws)
	}
	// Restart: the second breaching window completes the streak.
	s = open()
	batch(s, 1, 0.3)
	now.Store(t0.Add(151 * time.Minute).Unix())
	rs, err = s.Engine("a").EvaluateDue(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Consecutive != 2 || rs[0].Action == nil || rollbacks.Load() != 1 {
		t.Fatalf("after restart: %+v %v, rollbacks %d", rs, err, rollbacks.Load())
	}
	// Evaluating an old window again replaces its result only.
	r, err := s.Engine("a").Evaluate(t.Context(), t0)
	if err != nil || !r.Reevaluated || r.Action != nil || rollbacks.Load() != 1 {
		t.Fatalf("re-evaluation: %+v %v", r, err)
	}
	// Late labels for window 0 arriving after a restart are merged with
	// the stored summaries.
	s = open()
	if err := s.ObserveBatch(t.Context(), nil, []Label{{Prediction: Prediction{TS: t0.Add(time.Minute), Model: "churn", Score: ptr(0.5)}, Label: "1"}}); err != nil {
		t.Fatal(err)
	}
	r, err = s.Engine("a").Report(t.Context(), t0, t0.Add(time.Hour))
	if err != nil || r.Labelled != 1001 || r.Predictions != 1000 {
		t.Fatalf("late label: %d labelled, %v", r.Labelled, err)
	}
}

func TestRunStops(t *testing.T) {
	store, _ := NewFileStore(t.TempDir())
	m := Monitor{Name: "r", Model: "m", Reference: "x", Window: Duration(time.Hour)}
	e, err := New(m, referenceProfile(t, 10), Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	s := &Set{engines: []*Engine{e}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Millisecond); close(done) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	<-done
}

// TestIngestDuringSlowRollback: a rollback (or webhook) in progress must
// not block ingest. If it did, this test would deadlock.
func TestIngestDuringSlowRollback(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	rb := RollbackFunc(func(ctx context.Context, _, _, _ string) error {
		close(entered)
		<-release
		return nil
	})
	store, _ := NewFileStore(t.TempDir())
	m := Monitor{Name: "slow", Model: "churn", Reference: "r", Window: Duration(time.Hour), Consecutive: 1, Rollback: true, MinRows: 10}
	e, err := New(m, referenceProfile(t, 10), Options{Store: store, Rollbacker: rb})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	feed(t, e, generate(t0, time.Hour, scenario{rows: 500, seed: 3, shift: 0.4}))
	done := make(chan *Result)
	go func() {
		r, err := e.Evaluate(context.Background(), t0)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-entered
	next := generate(t0.Add(time.Hour), time.Hour, scenario{rows: 10, seed: 4})
	for _, r := range next {
		if _, err := e.ObservePrediction(t.Context(), r.prediction("churn")); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if r := <-done; r == nil || r.Action == nil || r.Action.Kind != EventRollback {
		t.Fatalf("result %+v", r)
	}
}

func TestObserveRecords(t *testing.T) {
	store, _ := NewFileStore(t.TempDir())
	m := Monitor{Name: "raw", Model: "churn", Reference: "r", Window: Duration(time.Hour), Segments: []string{"sport"}, MinRows: 1, PositiveClass: "yes", NegativeClass: "no"}
	e, err := New(m, referenceProfile(t, 10), Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	s := &Set{engines: []*Engine{e}}
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rec := RawRecord{TS: t0, RequestID: "a", Model: "churn", Features: json.RawMessage(`{"x":1.5,"color":"red"}`),
		Prediction: json.RawMessage(`{"yes":0.8,"no":0.2}`), Segment: json.RawMessage(`{"sport":"NBA"}`)}
	other := rec
	other.Model = "other"
	bad := rec
	bad.Features = json.RawMessage(`{"x":{"nested":1}}`)
	err = s.ObserveRecords(t.Context(), []RawRecord{rec, other, bad}, []RawLabel{{Prediction: rec, Label: json.RawMessage(`"yes"`)}})
	if err == nil || !strings.Contains(err.Error(), "1 records could not be decoded") {
		t.Fatalf("want one undecodable record, got %v", err)
	}
	r, err := e.Evaluate(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Predictions != 1 || r.Labelled != 1 || r.Calibration.Rows != 1 || *r.Accuracy != 1 || len(r.Segments) != 1 || r.Segments[0].Segment != "sport=NBA" {
		t.Fatalf("result: %+v", r)
	}
}

func TestFlushEvery(t *testing.T) {
	store, _ := NewFileStore(t.TempDir())
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	m := Monitor{Name: "fe", Model: "churn", Reference: "r", Window: Duration(time.Hour)}
	e, err := New(m, referenceProfile(t, 10), Options{Store: store, FlushEvery: time.Minute, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	s := &Set{engines: []*Engine{e}}
	stored := func() int64 {
		raw, err := store.LoadSummaries(t.Context(), "fe", t0)
		if err != nil {
			t.Fatal(err)
		}
		if raw[""] == nil {
			return 0
		}
		w, err := e.decodeSummary(raw[""], true)
		if err != nil {
			t.Fatal(err)
		}
		return w.Predictions
	}
	rows := generate(t0, time.Hour, scenario{rows: 20, seed: 1})
	p := func(i int) []Prediction { return []Prediction{rows[i].prediction("churn")} }
	if err := s.ObserveBatch(t.Context(), p(0), nil); err != nil || stored() != 1 {
		t.Fatalf("first batch not flushed: %d %v", stored(), err)
	}
	if err := s.ObserveBatch(t.Context(), p(1), nil); err != nil || stored() != 1 {
		t.Fatalf("second batch flushed within FlushEvery: %d %v", stored(), err)
	}
	if err := s.Flush(t.Context()); err != nil || stored() != 2 {
		t.Fatalf("Flush: %d %v", stored(), err)
	}
}
