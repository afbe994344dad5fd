// Package storetest is the conformance suite every [store.Store]
// implementation must pass. Implementations call [Run] from their tests
// with a function that opens a fresh, empty store, and [RunShared] with a
// function that opens a second handle on the same database (two server
// processes sharing one database).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// Opener returns a fresh, empty store; the suite closes it.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Models", testModels},
		{"Versions", testVersions},
		{"Aliases", testAliases},
		{"DatasetsAndRuns", testDatasetsAndRuns},
		{"Evidence", testEvidence},
		{"Tokens", testTokens},
		{"ApprovalsAndStatus", testApprovalsAndStatus},
		{"RollbackLeavesNothing", testRollback},
		{"ConcurrentWritersSomeFailing", testConcurrentFailures},
		{"Defer", testDefer},
		{"EventsOrdered", testEvents},
		{"Log", testLog},
		{"Deployments", testDeployments},
		{"AliasLogIndex", testAliasLogIndex},
		{"ConcurrentAliasWriters", func(t *testing.T, s store.Store) { testConcurrentAliases(t, s, s) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// RunShared checks that two handles on one database (as two servers
// behind a load balancer have) stay consistent under concurrent writes.
// open returns two stores on the same fresh database.
func RunShared(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	t.Run("ConcurrentAliasWriters", func(t *testing.T) {
		a, b := open(t)
		t.Cleanup(func() { a.Close(); b.Close() })
		testConcurrentAliases(t, a, b)
	})
	t.Run("ConcurrentLogAppenders", func(t *testing.T) {
		a, b := open(t)
		t.Cleanup(func() { a.Close(); b.Close() })
		testConcurrentLog(t, a, b)
	})
	t.Run("ConcurrentVersionCreators", func(t *testing.T) {
		a, b := open(t)
		t.Cleanup(func() { a.Close(); b.Close() })
		testConcurrentVersions(t, a, b)
	})
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

func mustCreateModel(t *testing.T, s store.Store, name string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateModel(ctx, &store.Model{Name: name, CreatedBy: "tester", CreatedAt: t0, UpdatedAt: t0})
		return err
	})
}

// Manifest returns a valid single-file manifest whose content is seed.
func Manifest(seed string) digest.Manifest {
	d := digestOf(seed)
	return digest.Manifest{
		Kind: "file", Name: "model.bin", Digest: d, OMSRoot: digestOf(string(d[:])),
		Serialization: digest.Serialization{Method: "files", HashType: "sha256"},
		Resources:     []digest.Resource{{Name: "model.bin", Algorithm: "sha256", Digest: d.Hex()}},
		Files:         []digest.File{{Name: "model.bin", Size: int64(len(seed))}},
	}
}

func digestOf(s string) digest.Digest {
	var d digest.Digest
	copy(d[:], fmt.Sprintf("%-32s", s))
	return d
}

func version(model, v, seed string) *store.Version {
	return &store.Version{
		Model: model, Version: v, Manifest: Manifest(seed),
		Signatures: []store.Signature{{Bundle: json.RawMessage(`{"b":1}`), Signer: "key abc"}},
		URI:        "s3://bucket/" + model + "/" + v, Format: "safetensors", ScanVerdict: "safe",
		CreatedBy: "tester", CreatedAt: t0,
	}
}

func testModels(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.GetModel(ctx, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetModel(absent) = %v, want ErrNotFound", err)
	}
	want := &store.Model{Name: "m1", Description: "first", Owners: []string{"alice"}, Tags: []string{"nlp", "prod"}, CreatedBy: "alice", CreatedAt: t0, UpdatedAt: t0}
	var created1, created2 bool
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created1, err = tx.CreateModel(ctx, want)
		return err
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created2, err = tx.CreateModel(ctx, &store.Model{Name: "m1", Description: "second", CreatedAt: t0, UpdatedAt: t0})
		return err
	})
	if !created1 || created2 {
		t.Fatalf("CreateModel created = %v, %v; want true, false", created1, created2)
	}
	got, err := s.GetModel(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetModel = %+v, want %+v", got, want)
	}
	want.Description, want.Tags, want.UpdatedAt = "changed", nil, t0.Add(time.Hour)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateModel(ctx, want) })
	got, _ = s.GetModel(ctx, "m1")
	if got.Description != "changed" || len(got.Tags) != 0 || !got.UpdatedAt.Equal(want.UpdatedAt) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after UpdateModel: %+v", got)
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateModel(ctx, &store.Model{Name: "absent"})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateModel(absent) = %v, want ErrNotFound", err)
	}
	for _, n := range []string{"m3", "m2", "m0"} {
		mustCreateModel(t, s, n)
	}
	list, err := s.ListModels(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if names := modelNames(list); !reflect.DeepEqual(names, []string{"m0", "m1", "m2", "m3"}) {
		t.Fatalf("ListModels = %v", names)
	}
	list, _ = s.ListModels(ctx, "m1", 1)
	if names := modelNames(list); !reflect.DeepEqual(names, []string{"m2"}) {
		t.Fatalf("ListModels(after m1, 1) = %v", names)
	}
}

func modelNames(ms []store.Model) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func testVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateModel(t, s, "m")
	v1 := version("m", "1", "weights-1")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CreateVersion(ctx, v1) })
	got, err := s.GetVersion(ctx, "m", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v1) {
		t.Fatalf("GetVersion = %+v\nwant %+v", got, v1)
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateVersion(ctx, version("m", "1", "other")) })
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateVersion(duplicate) = %v, want ErrExists", err)
	}
	got, _ = s.GetVersion(ctx, "m", "1")
	if got.Manifest.Digest != v1.Manifest.Digest {
		t.Fatal("a refused duplicate changed the stored version")
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateVersion(ctx, version("nomodel", "1", "x"))
	})
	if err == nil {
		t.Fatal("CreateVersion for a model that does not exist succeeded")
	}
	if _, err := s.GetVersion(ctx, "m", "2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetVersion(absent) = %v, want ErrNotFound", err)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, v := range []string{"3", "2"} {
			if err := tx.CreateVersion(ctx, version("m", v, "w"+v)); err != nil {
				return err
			}
		}
		return nil
	})
	vs, err := s.ListVersions(ctx, "m", "1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Version != "2" || vs[1].Version != "3" {
		t.Fatalf("ListVersions(after 1) = %+v", vs)
	}
}

func testAliases(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateModel(t, s, "m")
	if _, err := s.ResolveAlias(ctx, "m", "production", time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ResolveAlias(never set) = %v, want ErrNotFound", err)
	}
	steps := []struct{ version, prev string }{{"1", ""}, {"2", "1"}, {"", "2"}, {"1", ""}}
	for i, st := range steps {
		e := &store.AliasEvent{Model: "m", Alias: "production", Version: st.version, Previous: st.prev, Actor: "a", At: t0.Add(time.Duration(i) * time.Hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.AppendAlias(ctx, e) })
		if e.Seq == 0 {
			t.Fatal("AppendAlias did not set Seq")
		}
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.AppendAlias(ctx, &store.AliasEvent{Model: "m", Alias: "staging", Version: "2", Actor: "a", At: t0})
	})
	hist, err := s.AliasHistory(ctx, "m", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(steps) {
		t.Fatalf("history has %d events, want %d", len(hist), len(steps))
	}
	for i, e := range hist {
		if e.Version != steps[i].version || e.Previous != steps[i].prev || !e.At.Equal(t0.Add(time.Duration(i)*time.Hour)) {
			t.Fatalf("history[%d] = %+v", i, e)
		}
		if i > 0 && e.Seq <= hist[i-1].Seq {
			t.Fatalf("history not ordered by seq: %+v", hist)
		}
	}
	at := func(d time.Duration) string {
		e, err := s.ResolveAlias(ctx, "m", "production", t0.Add(d))
		if errors.Is(err, store.ErrNotFound) {
			return "<none>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return e.Version
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "<none>"}, {0, "1"}, {90 * time.Minute, "2"}, {2 * time.Hour, ""}, {150 * time.Minute, ""}, {100 * time.Hour, "1"}} {
		if got := at(c.d); got != c.want {
			t.Errorf("production at t0%+v = %q, want %q", c.d, got, c.want)
		}
	}
	cur, err := s.ResolveAlias(ctx, "m", "production", time.Time{})
	if err != nil || cur.Version != "1" {
		t.Fatalf("current production = %+v, %v", cur, err)
	}
	all, err := s.ListAliases(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Alias != "production" || all[0].Version != "1" || all[1].Alias != "staging" || all[1].Version != "2" {
		t.Fatalf("ListAliases = %+v", all)
	}
	held := func(v string) string {
		es, err := s.VersionAliases(ctx, "m", v)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if e.Version != v {
				t.Fatalf("VersionAliases(%s) returned %+v", v, e)
			}
			out = append(out, fmt.Sprintf("%s@%s", e.Alias, e.At.Sub(t0)))
		}
		return strings.Join(out, " ")
	}
	// 1 held production twice (the latest counts); 2 held production and
	// staging; 9 never held anything.
	if got := held("1"); got != "production@3h0m0s" {
		t.Errorf("VersionAliases(1) = %q", got)
	}
	if got := held("2"); got != "production@1h0m0s staging@0s" {
		t.Errorf("VersionAliases(2) = %q", got)
	}
	if got := held("9"); got != "" {
		t.Errorf("VersionAliases(9) = %q", got)
	}
}

func testDatasetsAndRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	rows := int64(1000)
	ds := &store.Dataset{
		Name: "imdb", Version: "v1", Digest: digestOf("imdb"), DVCMD5: "0123456789abcdef0123456789abcdef.dir",
		SourceURI: "s3://data/imdb", Size: 42, Rows: &rows,
		Files:     []store.DatasetFile{{Path: "train.csv", Size: 42, SHA256: digestOf("f").Hex(), MD5: "0123456789abcdef0123456789abcdef"}},
		CreatedBy: "bob", CreatedAt: t0,
	}
	ds2 := &store.Dataset{Name: "imdb", Version: "v2", Digest: digestOf("imdb2"), DVCMD5: "x", Files: []store.DatasetFile{}, CreatedBy: "bob", CreatedAt: t0}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateDataset(ctx, ds); err != nil {
			return err
		}
		return tx.CreateDataset(ctx, ds2)
	})
	got, err := s.GetDataset(ctx, "imdb", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ds) {
		t.Fatalf("GetDataset = %+v\nwant %+v", got, ds)
	}
	if got, _ := s.GetDataset(ctx, "imdb", "v2"); got == nil || got.Rows != nil {
		t.Fatalf("dataset without a row count: %+v", got)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateDataset(ctx, ds) }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateDataset(duplicate) = %v, want ErrExists", err)
	}
	if _, err := s.GetDataset(ctx, "imdb", "v9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDataset(absent) = %v", err)
	}

	mustCreateModel(t, s, "m")
	run := &store.Run{
		ID: "run-1", Params: map[string]string{"lr": "0.01"}, Metrics: map[string]float64{"acc": 0.93},
		CodeRepo: "https://git.example/m", CodeCommit: "abc123", ImageDigest: digestOf("img").String(),
		EnvLock:     json.RawMessage(`{"python":"3.11"}`),
		Inputs:      []store.DatasetRef{{Name: "imdb", Version: "v1"}, {Name: "imdb", Version: "v2"}},
		OutputModel: "m", OutputVersion: "1", CreatedBy: "bob", CreatedAt: t0,
	}
	v := version("m", "1", "w")
	v.RunID = run.ID
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateRun(ctx, run); err != nil {
			return err
		}
		return tx.CreateVersion(ctx, v)
	})
	gotRun, err := s.GetRun(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotRun, run) {
		t.Fatalf("GetRun = %+v\nwant %+v", gotRun, run)
	}
	runs, err := s.RunsWithInput(ctx, store.DatasetRef{Name: "imdb", Version: "v2"})
	if err != nil || len(runs) != 1 || runs[0].ID != "run-1" || len(runs[0].Inputs) != 2 {
		t.Fatalf("RunsWithInput = %+v, %v", runs, err)
	}
	runs, err = s.RunsWithInput(ctx, store.DatasetRef{Name: "other", Version: "v1"})
	if err != nil || len(runs) != 0 {
		t.Fatalf("RunsWithInput(unused) = %+v, %v", runs, err)
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateRun(ctx, &store.Run{ID: "run-2", Inputs: []store.DatasetRef{{Name: "nope", Version: "1"}}, CreatedAt: t0})
	})
	if err == nil {
		t.Fatal("a run reading a dataset that does not exist was stored")
	}
	if _, err := s.GetRun(ctx, "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRun(run-2) = %v, want ErrNotFound", err)
	}
}

func testEvidence(t *testing.T, s store.Store) {
	ctx := t.Context()
	ds := &store.Dataset{Name: "imdb", Version: "v1", Digest: digestOf("imdb"), DVCMD5: "x", Files: []store.DatasetFile{}, CreatedBy: "bob", CreatedAt: t0}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CreateDataset(ctx, ds) })
	ref := store.DatasetRef{Name: "imdb", Version: "v1"}
	if got, err := s.ListEvidence(ctx, ref); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("ListEvidence(none) = %#v, %v; want an empty list", got, err)
	}
	e1 := &store.Evidence{
		Dataset: "imdb", DatasetVersion: "v1", Digest: digestOf("ev1"), Name: "result.json",
		Document:  []byte(`{"schema":"custody.data.check/v1","outcome":"pass"}`),
		Signature: store.Signature{Bundle: json.RawMessage(`{"b":1}`), Signer: "key abc", KeyIDs: []string{"abc"}},
		Contract:  "trips", ContractDigest: digestOf("contract"), Outcome: "pass", Expectations: 15, Failed: 0,
		ToolVersion: "custody v1", CheckedAt: t0.Add(-time.Hour), CreatedBy: "bob", CreatedAt: t0,
	}
	e2 := &store.Evidence{
		Dataset: "imdb", DatasetVersion: "v1", Digest: digestOf("ev2"), Name: "r2.json",
		Document:  []byte(`{}`),
		Signature: store.Signature{Bundle: json.RawMessage(`{"b":2}`), Signer: "key def"},
		Outcome:   "fail", Expectations: 3, Failed: 2, CheckedAt: t0, CreatedBy: "carol", CreatedAt: t0.Add(time.Second),
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateEvidence(ctx, e2); err != nil {
			return err
		}
		return tx.CreateEvidence(ctx, e1)
	})
	got, err := s.ListEvidence(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []store.Evidence{*e1, *e2}) {
		t.Fatalf("ListEvidence = %+v\nwant %+v", got, []store.Evidence{*e1, *e2})
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateEvidence(ctx, e1) }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateEvidence(duplicate) = %v, want ErrExists", err)
	}
	orphan := *e1
	orphan.DatasetVersion = "v9"
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateEvidence(ctx, &orphan) }); err == nil {
		t.Fatal("evidence for a dataset that does not exist was stored")
	}
	if got, err := s.ListEvidence(ctx, store.DatasetRef{Name: "imdb", Version: "v9"}); err != nil || len(got) != 0 {
		t.Fatalf("ListEvidence(v9) = %+v, %v", got, err)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := &store.Token{ID: "abc", Role: "publisher", Name: "ci", CreatedBy: "admin", CreatedAt: t0}
	copy(tok.Hash[:], "0123456789abcdef0123456789abcdef")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CreateToken(ctx, tok) })
	got, err := s.GetToken(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tok) {
		t.Fatalf("GetToken = %+v, want %+v", got, tok)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateToken(ctx, tok) }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateToken(duplicate) = %v", err)
	}
	if _, err := s.GetToken(ctx, "zzz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToken(absent) = %v", err)
	}
}

func testApprovalsAndStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateModel(t, s, "m")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateVersion(ctx, version("m", "1", "w1")); err != nil {
			return err
		}
		return tx.CreateVersion(ctx, version("m", "2", "w2"))
	})
	if as, err := s.ListApprovals(ctx, "m", "1"); err != nil || as == nil || len(as) != 0 {
		t.Fatalf("ListApprovals(none) = %#v, %v; want an empty list", as, err)
	}
	a1 := &store.Approval{Model: "m", Version: "1", Approver: "token:bob", Comment: "looks good", At: t0.Add(2 * time.Second)}
	a2 := &store.Approval{Model: "m", Version: "1", Approver: "token:carol", At: t0.Add(time.Second)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateApproval(ctx, a1); err != nil {
			return err
		}
		return tx.CreateApproval(ctx, a2)
	})
	as, err := s.ListApprovals(ctx, "m", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(as, []store.Approval{*a2, *a1}) {
		t.Fatalf("ListApprovals = %+v, want carol then bob (by time)", as)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateApproval(ctx, &store.Approval{Model: "m", Version: "1", Approver: "token:bob", At: t0})
	}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateApproval(same approver again) = %v, want ErrExists", err)
	}
	if as, _ := s.ListApprovals(ctx, "m", "2"); len(as) != 0 {
		t.Fatalf("approvals of another version leaked: %+v", as)
	}

	if _, err := s.GetVersionStatus(ctx, "m", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetVersionStatus(none) = %v, want ErrNotFound", err)
	}
	st := &store.VersionStatus{Model: "m", Version: "2", Status: "bad", Reason: "rolled back", Actor: "token:bob", At: t0}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CreateVersionStatus(ctx, st) })
	got, err := s.GetVersionStatus(ctx, "m", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("GetVersionStatus = %+v, want %+v", got, st)
	}
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateVersionStatus(ctx, st) }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateVersionStatus(again) = %v, want ErrExists", err)
	}
	if _, err := s.GetVersionStatus(ctx, "m", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status leaked to another version: %v", err)
	}
}

func testRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreateModel(ctx, &store.Model{Name: "m", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		if err := tx.CreateVersion(ctx, version("m", "1", "w")); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, &store.Event{Type: "version.register", Subject: "m@1", At: t0}); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if _, err := tx.GetVersion(ctx, "m", "1"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	if _, err := s.GetModel(ctx, "m"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("model survived a rolled-back transaction: %v", err)
	}
	if evs, err := s.Events(ctx, 0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("events after rollback: %+v, %v", evs, err)
	}
}

// testDefer checks Tx.Defer: deferred functions run at the end, in order
// (with those they defer), on the transaction; one failing fails it.
func testDefer(t *testing.T, s store.Store) {
	ctx := t.Context()
	var trace []string
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		trace = nil // a store may run the function again
		tx.Defer(func(ctx context.Context, tx store.Tx) error {
			trace = append(trace, "first")
			tx.Defer(func(ctx context.Context, tx store.Tx) error {
				trace = append(trace, "third")
				_, err := appendLog(ctx, tx, "third")
				return err
			})
			_, err := tx.CreateModel(ctx, &store.Model{Name: "deferred", CreatedAt: t0, UpdatedAt: t0})
			return err
		})
		tx.Defer(func(ctx context.Context, tx store.Tx) error {
			// The deferred functions see the transaction's changes.
			m, err := tx.GetModel(ctx, "body")
			if err != nil {
				return err
			}
			trace = append(trace, "second saw "+m.Name)
			return nil
		})
		trace = append(trace, "body")
		_, err := tx.CreateModel(ctx, &store.Model{Name: "body", CreatedAt: t0, UpdatedAt: t0})
		return err
	})
	if want := []string{"body", "first", "second saw body", "third"}; !slices.Equal(trace, want) {
		t.Fatalf("ran %q, want %q", trace, want)
	}
	if _, err := s.GetModel(ctx, "deferred"); err != nil {
		t.Fatalf("model created by a deferred function: %v", err)
	}
	if es, err := s.LogEntries(ctx, 0, 10); err != nil || len(es) != 1 || string(es[0]) != "third" {
		t.Fatalf("log after a deferred append: %q, %v", es, err)
	}
	// A deferred function that fails fails the transaction.
	boom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		tx.Defer(func(ctx context.Context, tx store.Tx) error { return boom })
		_, err := tx.CreateModel(ctx, &store.Model{Name: "undone", CreatedAt: t0, UpdatedAt: t0})
		return err
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update with a failing deferred function: %v, want it", err)
	}
	if _, err := s.GetModel(ctx, "undone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("model of a transaction failed by its deferred function: %v", err)
	}
	// The journal's events are numbered by the time deferred functions
	// run, and a transaction reading the journal sees its own.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		ev := &store.Event{Type: "t", Subject: "deferred", At: t0}
		if err := tx.AppendEvent(ctx, ev); err != nil {
			return err
		}
		tx.Defer(func(ctx context.Context, tx store.Tx) error {
			if ev.Seq == 0 {
				return errors.New("event not numbered when deferred functions run")
			}
			return nil
		})
		evs, err := tx.Events(ctx, 0, 0)
		if err != nil {
			return err
		}
		if len(evs) != 1 || evs[0].Subject != "deferred" || evs[0].Seq != ev.Seq || ev.Seq == 0 {
			return fmt.Errorf("events read in the transaction: %+v (appended %+v)", evs, ev)
		}
		return nil
	})
	// A function that fails takes its deferred functions with it.
	ran := false
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		tx.Defer(func(ctx context.Context, tx store.Tx) error { ran = true; return nil })
		return boom
	})
	if !errors.Is(err, boom) || ran {
		t.Fatalf("failing Update: %v, deferred function ran: %v", err, ran)
	}
}

// testConcurrentFailures runs many writers at once (which a store may commit
// together, as SQLite's group commit does), a third of them failing after
// their writes, some of those through a failing statement: each writer's
// changes must commit or vanish with its own outcome alone, log included.
func testConcurrentFailures(t *testing.T, s store.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	const n = 60
	mustCreateModel(t, s, "taken")
	errs := make([]error, n)
	var deferredRan [n]atomic.Bool
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				name := fmt.Sprintf("m%02d", i)
				if _, err := tx.CreateModel(ctx, &store.Model{Name: name, CreatedAt: t0, UpdatedAt: t0}); err != nil {
					return err
				}
				if err := tx.AppendEvent(ctx, &store.Event{Type: "model.create", Subject: name, At: t0}); err != nil {
					return err
				}
				idx := int64(-1)
				if i%2 == 1 { // appended at the end, as the log's hook does
					tx.Defer(func(ctx context.Context, tx store.Tx) error {
						var err error
						idx, err = appendLog(ctx, tx, name)
						deferredRan[i].Store(true)
						return err
					})
				} else {
					var err error
					if idx, err = appendLog(ctx, tx, name); err != nil {
						return err
					}
				}
				if i%4 == 0 || i%4 == 3 { // the transaction reads the log it appended to (a deferred append runs first)
					size, err := tx.LogSize(ctx)
					if err != nil {
						return err
					}
					// Functions deferred by writers before it in a group
					// may have appended after it meanwhile.
					if idx < 0 || size <= idx {
						return fmt.Errorf("log size %d after appending entry %d", size, idx)
					}
					if es, err := tx.LogEntries(ctx, idx, 1); err != nil || len(es) != 1 || string(es[0]) != name {
						return fmt.Errorf("entry %d read back as %q, %v", idx, es, err)
					}
				}
				switch i % 3 {
				case 1:
					return boom
				case 2:
					if i%2 == 0 { // a statement that fails: the model exists
						_, err := tx.CreateModel(ctx, &store.Model{Name: "taken", CreatedAt: t0, UpdatedAt: t0})
						if err == nil {
							err = tx.CreateVersion(ctx, version("taken", "1", "w"))
							if err == nil {
								err = tx.CreateVersion(ctx, version("taken", "1", "w"))
							}
						}
						return err
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var want []string
	for i, err := range errs {
		failing := i%3 == 1 || (i%3 == 2 && i%2 == 0)
		switch {
		case failing && err == nil:
			t.Errorf("writer %d: no error, want its failure", i)
		case !failing && err != nil:
			t.Errorf("writer %d: %v", i, err)
		case !failing:
			want = append(want, fmt.Sprintf("m%02d", i))
		}
		if i%3 == 1 && !errors.Is(err, boom) {
			t.Errorf("writer %d: %v, want its own error", i, err)
		}
		// A failing writer's deferred function is dropped with it (unless
		// reading the log ran it before the failure).
		if i%2 == 1 && deferredRan[i].Load() != (!failing || i%4 == 3) {
			t.Errorf("writer %d (failing: %v): deferred function ran: %v", i, failing, deferredRan[i].Load())
		}
	}
	ms, err := s.ListModels(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := modelNames(ms); !slices.Equal(got, append(slices.Clone(want), "taken")) {
		t.Fatalf("models after concurrent writers:\n got %v\nwant %v", got, want)
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, e := range evs {
		subjects = append(subjects, e.Subject)
	}
	slices.Sort(subjects)
	if !slices.Equal(subjects, want) {
		t.Fatalf("events after concurrent writers:\n got %v\nwant %v", subjects, want)
	}
	// The log holds exactly the committed writers' entries, densely.
	size, err := s.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.LogEntries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(entries)) != size {
		t.Fatalf("log of size %d holds %d entries", size, len(entries))
	}
	var logged []string
	for _, e := range entries {
		logged = append(logged, string(e))
	}
	slices.Sort(logged)
	if !slices.Equal(logged, want) {
		t.Fatalf("log after concurrent writers:\n got %v\nwant %v", logged, want)
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 5 {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.AppendEvent(ctx, &store.Event{Type: "test", Subject: fmt.Sprint(i), Actor: "a", At: t0, Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		})
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("got %d events, want 5", len(evs))
	}
	for i, e := range evs {
		if e.Subject != fmt.Sprint(i) || string(e.Payload) != fmt.Sprintf(`{"i":%d}`, i) || (i > 0 && e.Seq <= evs[i-1].Seq) {
			t.Fatalf("events[%d] = %+v", i, e)
		}
	}
	rest, err := s.Events(ctx, evs[2].Seq, 10)
	if err != nil || len(rest) != 2 || rest[0].Seq != evs[3].Seq {
		t.Fatalf("Events(after %d) = %+v, %v", evs[2].Seq, rest, err)
	}
}

// testConcurrentAliases moves one alias from many goroutines on two store
// handles. Each writer locks the model, reads the current target and
// appends an event naming it as Previous; if writers were not serialized,
// two events would name the same Previous and the chain would fork.
func testConcurrentAliases(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateModel(t, a, "m")
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					if _, err := tx.LockModel(ctx, "m"); err != nil {
						return err
					}
					prev := ""
					if cur, err := tx.ResolveAlias(ctx, "m", "production", time.Time{}); err == nil {
						prev = cur.Version
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if err := tx.AppendAlias(ctx, &store.AliasEvent{Model: "m", Alias: "production", Version: fmt.Sprintf("w%d-%d", w, i), Previous: prev, At: time.Now()}); err != nil {
						return err
					}
					return tx.AppendEvent(ctx, &store.Event{Type: "alias.set", Subject: "m", At: time.Now()})
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	hist, err := b.AliasHistory(ctx, "m", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != writers*each {
		t.Fatalf("history has %d events, want %d", len(hist), writers*each)
	}
	for i, e := range hist {
		want := ""
		if i > 0 {
			want = hist[i-1].Version
		}
		if e.Previous != want {
			t.Fatalf("event %d (%s) names previous %q, but the alias pointed at %q: lost update", i, e.Version, e.Previous, want)
		}
	}
	evs, err := a.Events(ctx, 0, 0)
	if err != nil || len(evs) != writers*each {
		t.Fatalf("%d events, want %d (%v)", len(evs), writers*each, err)
	}
}

// testConcurrentVersionCreators races writers on two handles to create the
// same version with different content: exactly one wins, the rest see
// ErrExists, and the stored version is the winner's.
func testConcurrentVersions(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	mustCreateModel(t, a, "m")
	const writers = 10
	var wg sync.WaitGroup
	results := make([]error, writers)
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w] = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				return tx.CreateVersion(ctx, version("m", "1", fmt.Sprint("writer", w)))
			})
		}()
	}
	wg.Wait()
	winner := -1
	for w, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both created m@1", winner, w)
			}
			winner = w
		case !errors.Is(err, store.ErrExists):
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created m@1")
	}
	got, err := b.GetVersion(ctx, "m", "1")
	if err != nil {
		t.Fatal(err)
	}
	if want := Manifest(fmt.Sprint("writer", winner)).Digest; got.Manifest.Digest != want {
		t.Fatal("stored version is not the winner's")
	}
}

func hashOf(i int64) [32]byte { return [32]byte{byte(i), byte(i >> 8), 0xAA} }

// appendLog appends one entry the way the log does: lock, read the size,
// append at that index (with one stored hash per entry, at the entry's
// index, standing in for the real layout).
// The right edge stands in too: one hash, hashOf(size), which the next
// LockLog must return.
func appendLog(ctx context.Context, tx store.Tx, entry string) (int64, error) {
	n, edge, err := tx.LockLog(ctx)
	if err != nil {
		return 0, err
	}
	if n > 0 && (len(edge) != 1 || edge[0] != hashOf(n)) {
		return 0, fmt.Errorf("log of %d entries: right edge %x, want the one appended with it", n, edge)
	}
	return n, tx.AppendLog(ctx, n, []byte(entry), n, [][32]byte{hashOf(n)}, [][32]byte{hashOf(n + 1)})
}

func testLog(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n, err := s.LogSize(ctx); err != nil || n != 0 {
		t.Fatalf("empty log size %d, %v", n, err)
	}
	for i := range 5 {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := appendLog(ctx, tx, fmt.Sprint("e", i))
			return err
		})
	}
	// Two appends in one transaction, then a rolled-back one.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := appendLog(ctx, tx, "e5"); err != nil {
			return err
		}
		_, err := appendLog(ctx, tx, "e6")
		return err
	})
	boom := errors.New("boom")
	if err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := appendLog(ctx, tx, "rolled back"); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n, err := s.LogSize(ctx); err != nil || n != 7 {
		t.Fatalf("log size %d, %v; want 7", n, err)
	}
	es, err := s.LogEntries(ctx, 2, 3)
	if err != nil || len(es) != 3 || string(es[0]) != "e2" || string(es[2]) != "e4" {
		t.Fatalf("entries 2..4: %q %v", es, err)
	}
	if es, err := s.LogEntries(ctx, 5, 100); err != nil || len(es) != 2 {
		t.Fatalf("entries from 5: %q %v", es, err)
	}
	hs, err := s.LogHashes(ctx, []int64{6, 0, 6})
	if err != nil || hs[0] != hashOf(6) || hs[1] != hashOf(0) || hs[2] != hashOf(6) {
		t.Fatalf("hashes: %x %v", hs, err)
	}
	if _, err := s.LogHashes(ctx, []int64{1, 7}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing hash: %v", err)
	}
	// Appending anywhere but at the end is refused.
	for _, idx := range []int64{3, 8} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			if _, _, err := tx.LockLog(ctx); err != nil {
				return err
			}
			return tx.AppendLog(ctx, idx, []byte("x"), 100+idx, nil, nil)
		})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("append at %d: %v", idx, err)
		}
	}
	if n, err := s.LogSize(ctx); err != nil || n != 7 {
		t.Fatalf("log size %d, %v; want 7", n, err)
	}
	// Two appends in one transaction: the second is answered from what the
	// first left.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := appendLog(ctx, tx, "e7"); err != nil {
			return err
		}
		_, err := appendLog(ctx, tx, "e8")
		return err
	})
	if es, err := s.LogEntries(ctx, 7, 100); err != nil || len(es) != 2 || string(es[0]) != "e7" {
		t.Fatalf("entries from 7: %q %v", es, err)
	}
	if hs, err := s.LogHashes(ctx, []int64{7, 8}); err != nil || hs[0] != hashOf(7) || hs[1] != hashOf(8) {
		t.Fatalf("hashes 7, 8: %x %v", hs, err)
	}
}

// testConcurrentLog appends from many goroutines through two handles: the
// log ends gap-free with every entry exactly once.
func testConcurrentLog(t *testing.T, a, b store.Store) {
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
					_, err := appendLog(ctx, tx, fmt.Sprintf("w%d-%d", w, i))
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	es, err := a.LogEntries(t.Context(), 0, 1000)
	if err != nil || len(es) != workers*each {
		t.Fatalf("%d entries (%v), want %d", len(es), err, workers*each)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[string(e)] {
			t.Fatalf("entry %s twice", e)
		}
		seen[string(e)] = true
	}
	if n, err := b.LogSize(t.Context()); err != nil || n != workers*each {
		t.Fatalf("size %d (%v)", n, err)
	}
}

func testAliasLogIndex(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateModel(t, s, "m")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.CreateVersion(ctx, version("m", "1", "one")) })
	seven := int64(7)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AppendAlias(ctx, &store.AliasEvent{Model: "m", Alias: "a", Version: "1", Actor: "x", At: t0}); err != nil {
			return err
		}
		return tx.AppendAlias(ctx, &store.AliasEvent{Model: "m", Alias: "b", Version: "1", Actor: "x", At: t0, LogIndex: &seven})
	})
	a, err := s.ResolveAlias(ctx, "m", "a", time.Time{})
	if err != nil || a.LogIndex != nil {
		t.Fatalf("alias without a log index: %+v, %v", a, err)
	}
	b, err := s.ResolveAlias(ctx, "m", "b", time.Time{})
	if err != nil || b.LogIndex == nil || *b.LogIndex != 7 {
		t.Fatalf("alias with log index 7: %+v, %v", b, err)
	}
	h, err := s.AliasHistory(ctx, "m", "b")
	if err != nil || len(h) != 1 || h[0].LogIndex == nil || *h[0].LogIndex != 7 {
		t.Fatalf("history: %+v, %v", h, err)
	}
}

func testDeployments(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateModel(t, s, "m")
	mustCreateModel(t, s, "n")
	if _, err := s.GetDeployment(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDeployment(absent) = %v", err)
	}
	var ids []int64
	for i, model := range []string{"m", "n", "m"} {
		d := &store.Deployment{Model: model, Alias: "prod", Version: "1", Digest: digestOf("one"), AliasLogIndex: int64(i),
			Host: "h", PID: 42, StartedAt: t0, Actor: "token:x", At: t0.Add(time.Second)}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.CreateDeployment(ctx, d); err != nil {
				return err
			}
			return tx.SetDeploymentLogIndex(ctx, d.ID, 100+int64(i))
		})
		ids = append(ids, d.ID)
	}
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids not increasing: %v", ids)
	}
	got, err := s.GetDeployment(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	want := store.Deployment{ID: ids[1], Model: "n", Alias: "prod", Version: "1", Digest: digestOf("one"), AliasLogIndex: 1,
		Host: "h", PID: 42, StartedAt: t0, Actor: "token:x", At: t0.Add(time.Second)}
	li := int64(101)
	want.LogIndex = &li
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetDeployment = %+v, want %+v", *got, want)
	}
	all, err := s.ListDeployments(ctx, "", 0, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListDeployments = %d, %v", len(all), err)
	}
	ms, err := s.ListDeployments(ctx, "m", ids[0], 10)
	if err != nil || len(ms) != 1 || ms[0].ID != ids[2] {
		t.Fatalf("ListDeployments(m, after first) = %+v, %v", ms, err)
	}
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.SetDeploymentLogIndex(ctx, 999999, 1) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetDeploymentLogIndex(absent) = %v", err)
	}
}
