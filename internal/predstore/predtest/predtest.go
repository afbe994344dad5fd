// Package predtest is the conformance suite every predstore.Store
// implementation passes (run by predsql's tests against SQLite and
// PostgreSQL).
package predtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// Rec returns a test record.
func Rec(id, model string, ts time.Time, score float64) predstore.Record {
	lat := 1.5
	return predstore.Record{
		RequestID: id, TS: ts, Model: model, Version: "1",
		Digest:     "sha256:" + fmt.Sprintf("%064x", len(model)),
		Features:   json.RawMessage(`{"a":1,"b":"x"}`),
		Prediction: json.RawMessage(fmt.Sprintf("%g", score)),
		Segment:    json.RawMessage(`{"sport":"NBA"}`),
		LatencyMS:  &lat,
	}
}

// Run runs the suite; open returns a new, empty store (closed by the
// suite).
func Run(t *testing.T, open func(t *testing.T) predstore.Store) {
	t.Run("AppendGet", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		recs := []predstore.Record{Rec("a", "m", t0, 0.5), Rec("b", "m", t0.Add(time.Second), 0.7)}
		out, err := s.Append(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		want := []predstore.Outcome{predstore.Stored, predstore.Stored}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", out, want)
		}
		r, l, err := s.Get(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		if l != nil {
			t.Fatalf("label %v, want none", l)
		}
		if !r.TS.Equal(t0.Add(time.Second)) || r.Model != "m" || r.Version != "1" || string(r.Prediction) != "0.7" ||
			string(r.Features) != `{"a":1,"b":"x"}` || string(r.Segment) != `{"sport":"NBA"}` || *r.LatencyMS != 1.5 || r.Digest != recs[1].Digest {
			t.Fatalf("got %+v", r)
		}
		if _, _, err := s.Get(ctx, "nope"); !errors.Is(err, predstore.ErrNotFound) {
			t.Fatalf("Get(nope) = %v, want ErrNotFound", err)
		}
	})
	t.Run("Idempotence", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		if _, err := s.Append(ctx, []predstore.Record{Rec("a", "m", t0, 0.5)}); err != nil {
			t.Fatal(err)
		}
		// Across calls and within one call.
		out, err := s.Append(ctx, []predstore.Record{
			Rec("a", "m", t0, 0.5), Rec("a", "m", t0, 0.6), Rec("c", "m", t0, 0.1), Rec("c", "m", t0, 0.1), Rec("c", "m", t0, 0.2),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []predstore.Outcome{predstore.Duplicate, predstore.Conflict, predstore.Stored, predstore.Duplicate, predstore.Conflict}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", out, want)
		}
		r, _, err := s.Get(ctx, "a")
		if err != nil || string(r.Prediction) != "0.5" {
			t.Fatalf("a = %+v, %v: the first content must stay", r, err)
		}
	})
	t.Run("IdempotenceAfterDelete", func(t *testing.T) {
		// The newest rows deleted, then a call mixing a re-used id of a
		// deleted record, a duplicate and a conflict of live ones, and a
		// new id: stores that tell inserted rows from taken ones by row
		// order must not be fooled by the gap.
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		old, young := t0, t0.Add(time.Hour)
		if _, err := s.Append(ctx, []predstore.Record{Rec("a", "m", young, 0.5), Rec("b", "m", young, 0.5), Rec("c", "m", old, 0.5), Rec("d", "m", old, 0.5)}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteBefore(ctx, "m", young); err != nil || n != 2 {
			t.Fatalf("deleted %d, %v", n, err)
		}
		out, err := s.Append(ctx, []predstore.Record{Rec("d", "m", young, 0.9), Rec("a", "m", young, 0.5), Rec("b", "m", young, 0.7), Rec("e", "m", young, 0.1)})
		if err != nil {
			t.Fatal(err)
		}
		want := []predstore.Outcome{predstore.Stored, predstore.Duplicate, predstore.Conflict, predstore.Stored}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", out, want)
		}
		if r, _, err := s.Get(ctx, "d"); err != nil || string(r.Prediction) != "0.9" {
			t.Fatalf("d = %+v, %v", r, err)
		}
	})
	t.Run("Labels", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		if _, err := s.Append(ctx, []predstore.Record{Rec("a", "m", t0, 0.5), Rec("b", "m", t0, 0.5)}); err != nil {
			t.Fatal(err)
		}
		out, err := s.Label(ctx, []predstore.Label{
			{RequestID: "a", Label: json.RawMessage(`1`), TS: t0},
			{RequestID: "zz", Label: json.RawMessage(`0`), TS: t0},
			{RequestID: "b", Label: json.RawMessage(`"x"`), TS: t0},
			{RequestID: "b", Label: json.RawMessage(`"y"`), TS: t0.Add(time.Hour)},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []predstore.Outcome{predstore.Stored, predstore.Unknown, predstore.Stored, predstore.Replaced}
		if fmt.Sprint(out) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", out, want)
		}
		_, l, err := s.Get(ctx, "b")
		if err != nil || l == nil || string(l.Label) != `"y"` || !l.TS.Equal(t0.Add(time.Hour)) {
			t.Fatalf("label of b = %+v, %v", l, err)
		}
		// A later label replaces.
		if out, err := s.Label(ctx, []predstore.Label{{RequestID: "a", Label: json.RawMessage(`0`), TS: t0}}); err != nil || out[0] != predstore.Replaced {
			t.Fatalf("relabel: %v, %v; want replaced", out, err)
		}
		recs, err := s.Records(ctx, []string{"b", "zz", "a"})
		if err != nil || len(recs) != 2 {
			t.Fatalf("Records = %+v, %v; want a and b", recs, err)
		}
		_, l, _ = s.Get(ctx, "a")
		if l == nil || string(l.Label) != "0" {
			t.Fatalf("label of a = %+v, want 0", l)
		}
	})
	t.Run("ExportRetention", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		var recs []predstore.Record
		for i := range 10 {
			recs = append(recs, Rec(fmt.Sprintf("x%d", i), "mx", t0.Add(time.Duration(i)*time.Hour), float64(i)))
			recs = append(recs, Rec(fmt.Sprintf("y%d", i), "my", t0.Add(time.Duration(i)*time.Hour), float64(i)))
		}
		if _, err := s.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Label(ctx, []predstore.Label{{RequestID: "x3", Label: json.RawMessage(`1`), TS: t0}}); err != nil {
			t.Fatal(err)
		}
		ms, err := s.Models(ctx)
		if err != nil || fmt.Sprint(ms) != "[mx my]" {
			t.Fatalf("Models = %v, %v", ms, err)
		}
		var got []string
		labeled := 0
		err = s.Export(ctx, predstore.ExportQuery{Since: t0.Add(2 * time.Hour), Until: t0.Add(5 * time.Hour)}, func(r *predstore.Record, l *predstore.Label) error {
			got = append(got, r.RequestID)
			if l != nil {
				labeled++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[x2 x3 x4 y2 y3 y4]" || labeled != 1 {
			t.Fatalf("export = %v (%d labeled)", got, labeled)
		}
		got = nil
		if err := s.Export(ctx, predstore.ExportQuery{Model: "my", Since: t0.Add(8 * time.Hour)}, func(r *predstore.Record, _ *predstore.Label) error {
			got = append(got, r.RequestID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[y8 y9]" {
			t.Fatalf("export my = %v", got)
		}
		n, err := s.DeleteBefore(ctx, "mx", t0.Add(4*time.Hour))
		if err != nil || n != 4 {
			t.Fatalf("DeleteBefore = %d, %v; want 4", n, err)
		}
		if _, _, err := s.Get(ctx, "x3"); !errors.Is(err, predstore.ErrNotFound) {
			t.Fatalf("x3 after retention: %v", err)
		}
		if _, _, err := s.Get(ctx, "x4"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, "y0"); err != nil {
			t.Fatal(err)
		}
		// The label went with its record: relabelling x3 is unknown now.
		out, err := s.Label(ctx, []predstore.Label{{RequestID: "x3", Label: json.RawMessage(`1`), TS: t0}})
		if err != nil || out[0] != predstore.Unknown {
			t.Fatalf("label of deleted record = %v, %v", out, err)
		}
	})
	t.Run("LargeBatch", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		var recs []predstore.Record
		for i := range 2500 {
			recs = append(recs, Rec(fmt.Sprintf("big-%d", i), "m", t0.Add(time.Duration(i)), float64(i)))
		}
		for round, want := range []predstore.Outcome{predstore.Stored, predstore.Duplicate} {
			out, err := s.Append(ctx, recs)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range out {
				if o != want {
					t.Fatalf("round %d: record %d is %v, want %v", round, i, o, want)
				}
			}
		}
		// Half new, half changed: chunks mixing inserts and conflicts.
		for i := range recs {
			if i%2 == 0 {
				recs[i].RequestID += "-new"
			} else {
				recs[i].Prediction = json.RawMessage("-1")
			}
		}
		out, err := s.Append(ctx, recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if want := []predstore.Outcome{predstore.Stored, predstore.Conflict}[i%2]; o != want {
				t.Fatalf("record %d is %v, want %v", i, o, want)
			}
		}
		n := 0
		if err := s.Export(ctx, predstore.ExportQuery{Model: "m"}, func(*predstore.Record, *predstore.Label) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 2500+1250 {
			t.Fatalf("%d records, want %d", n, 3750)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 16 {
			wg.Go(func() {
				for b := range 10 {
					var recs []predstore.Record
					for i := range 50 {
						recs = append(recs, Rec(fmt.Sprintf("w%d-%d-%d", w, b, i), "m", t0, float64(i)))
					}
					// Every writer also re-sends one shared id: exactly one stores it.
					recs = append(recs, Rec("shared", "m", t0, 1))
					if _, err := s.Append(ctx, recs); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		n := 0
		if err := s.Export(ctx, predstore.ExportQuery{}, func(*predstore.Record, *predstore.Label) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 16*10*50+1 {
			t.Fatalf("%d records stored, want %d", n, 16*10*50+1)
		}
	})
}
