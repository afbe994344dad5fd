// Package watchtest is the conformance suite of watch.SummaryStore: every
// implementation (the file store, and database-backed ones later) runs
// TestStore.
package watchtest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/monitor/watch"
)

// TestStore checks a SummaryStore; open returns an empty store.
func TestStore(t *testing.T, open func(t *testing.T) watch.SummaryStore) {
	ctx := t.Context()
	s := open(t)
	w0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	w1 := w0.Add(time.Hour)

	got, err := s.LoadSummaries(ctx, "m", w0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	if st, err := s.LoadState(ctx, "m"); err != nil || st != nil {
		t.Fatalf("empty state: %q %v", st, err)
	}
	segs := []string{"", "sport=NBA", "sport=N/A ../x", "é=<>\x00", "long=" + strings.Repeat("v", 300)}
	for i, seg := range segs {
		if err := s.SaveSummary(ctx, "m", w1, seg, fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatalf("save %q: %v", seg, err)
		}
	}
	if err := s.SaveSummary(ctx, "m", w0, "", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSummary(ctx, "other", w0, "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Replacing is atomic and complete.
	if err := s.SaveSummary(ctx, "m", w1, "", []byte("v0-new")); err != nil {
		t.Fatal(err)
	}
	got, err = s.LoadSummaries(ctx, "m", w1)
	if err != nil || len(got) != len(segs) || string(got[""]) != "v0-new" || string(got["é=<>\x00"]) != "v3" || string(got["sport=N/A ../x"]) != "v2" {
		t.Fatalf("load: %q %v", got, err)
	}
	ws, err := s.Windows(ctx, "m")
	if err != nil || len(ws) != 2 || !ws[0].Equal(w0) || !ws[1].Equal(w1) {
		t.Fatalf("windows: %v %v", ws, err)
	}
	if err := s.DeleteWindow(ctx, "m", w0); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.Windows(ctx, "m"); len(ws) != 1 || !ws[0].Equal(w1) {
		t.Fatalf("after delete: %v", ws)
	}
	if ws, _ := s.Windows(ctx, "other"); len(ws) != 1 {
		t.Fatalf("delete crossed monitors: %v", ws)
	}
	for i, w := range []time.Time{w1, w0, w1.Add(time.Hour)} {
		if err := s.SaveResult(ctx, "m", w, fmt.Appendf(nil, "r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveResult(ctx, "m", w1, []byte("r0-new")); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Results(ctx, "m", 0)
	if err != nil || len(rs) != 3 || string(rs[0]) != "r1" || string(rs[1]) != "r0-new" || string(rs[2]) != "r2" {
		t.Fatalf("results: %q %v", rs, err)
	}
	if rs, _ := s.Results(ctx, "m", 2); len(rs) != 2 || string(rs[0]) != "r0-new" {
		t.Fatalf("results limit: %q", rs)
	}
	if err := s.SaveState(ctx, "m", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if st, err := s.LoadState(ctx, "m"); err != nil || !bytes.Equal(st, []byte(`{"a":1}`)) {
		t.Fatalf("state: %q %v", st, err)
	}
}
