package main

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/tlog"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// logEnv is a registry with a log, served in-process.
type logEnv struct {
	dir   string
	st    *sqlstore.DB
	svc   *registry.Service
	url   string
	token string
	vkey  string
}

func newLogEnv(t *testing.T) *logEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, vkey, err := tlog.LoadOrCreateSigner(filepath.Join(dir, "log.key"), "custody.test/log")
	if err != nil {
		t.Fatal(err)
	}
	svc := registry.New(st, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}}})
	h, err := api.New(svc, api.Options{Log: tlog.New(st, signer), LogVerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	admin := registry.Actor{Name: "local:test", Role: registry.RoleAdmin}
	tok, _, err := svc.CreateToken(t.Context(), admin, registry.RoleAdmin, "admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := svc.PutModel(t.Context(), admin, registry.ModelSpec{Name: name, Description: "model " + name}); err != nil {
			t.Fatal(err)
		}
	}
	return &logEnv{dir: dir, st: st, svc: svc, url: srv.URL, token: tok, vkey: vkey}
}

func (e *logEnv) client() clientOptions { return clientOptions{Server: e.url, Token: e.token} }

// A row edited with SQL behind the log's back fails the offline audit
// with exit 1, naming the row.
func TestLogAuditFindsSQLEdit(t *testing.T) {
	e := newLogEnv(t)
	var out bytes.Buffer
	if err := runLogAudit(t.Context(), &out, logAuditOptions{storeOptions: storeOptions{Data: e.dir}}); err != nil {
		t.Fatalf("clean audit: %v\n%s", err, out.String())
	}
	if _, err := e.st.SQL().Exec("UPDATE models SET description = 'backdoored' WHERE name = 'b'"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := runLogAudit(t.Context(), &out, logAuditOptions{storeOptions: storeOptions{Data: e.dir}})
	if exitCode(err) != exitNotHold || !strings.Contains(out.String(), `model b: description is "backdoored", the log says "model b"`) {
		t.Fatalf("exit %d (%v), output:\n%s", exitCode(err), err, out.String())
	}
	// The same finding through the API.
	out.Reset()
	err = runLogAudit(t.Context(), &out, logAuditOptions{clientOptions: e.client(), logKeyOptions: logKeyOptions{e.vkey}, Remote: true})
	if exitCode(err) != exitNotHold || !strings.Contains(out.String(), "backdoored") {
		t.Fatalf("remote audit: exit %d (%v), output:\n%s", exitCode(err), err, out.String())
	}
}

// rewrite replaces entry index with a forged one and recomputes every
// stored hash, as an attacker with write access to the database would: the
// log is self-consistent again, and signs the forged history.
func rewrite(t *testing.T, st *sqlstore.DB, index int64, forged []byte) {
	t.Helper()
	ctx := t.Context()
	n, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.LogEntries(ctx, 0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	entries[index] = forged
	if _, err := st.SQL().Exec("DELETE FROM log_hashes"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SQL().Exec("UPDATE log_entries SET entry = ? WHERE idx = ?", forged, index); err != nil {
		t.Fatal(err)
	}
	var hashes []xtlog.Hash
	mem := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, err := xtlog.StoredHashes(int64(i), e, mem)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	for i, h := range hashes {
		if _, err := st.SQL().Exec("INSERT INTO log_hashes (idx, hash) VALUES (?, ?)", i, h[:]); err != nil {
			t.Fatal(err)
		}
	}
}

// A client that saved a checkpoint detects a rewritten history (exit 1),
// even though the rewritten log is internally consistent and signed.
func TestLogVerifyDetectsRewrite(t *testing.T) {
	e := newLogEnv(t)
	cp := filepath.Join(t.TempDir(), "cp")
	var out bytes.Buffer
	keyOpts := logKeyOptions{e.vkey}
	if err := runLogCheckpoint(t.Context(), &out, logCheckpointOptions{clientOptions: e.client(), logKeyOptions: keyOpts, Out: cp}); err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		out.Reset()
		return runLogVerify(t.Context(), &out, logVerifyOptions{clientOptions: e.client(), logKeyOptions: keyOpts, Since: cp})
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	// Rewrite model b's creation (entry 2), then grow the log.
	old, err := e.st.LogEntries(t.Context(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, e.st, 2, bytes.Replace(old[0], []byte(`"model b"`), []byte(`"model B"`), 1))
	if err := verify(); exitCode(err) != exitNotHold || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("rewrite at the same size: exit %d: %v", exitCode(err), err)
	}
	if _, err := e.svc.PutModel(t.Context(), registry.Actor{Name: "x", Role: registry.RoleAdmin}, registry.ModelSpec{Name: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := verify(); exitCode(err) != exitNotHold || !errors.Is(err, tlog.ErrProof) {
		t.Fatalf("rewrite then growth: exit %d: %v", exitCode(err), err)
	}
	// Shrinking is a rewrite too.
	if _, err := e.st.SQL().Exec("UPDATE log_head SET size = 2"); err != nil {
		t.Fatal(err)
	}
	if err := verify(); exitCode(err) != exitNotHold || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("shrunk log: exit %d: %v", exitCode(err), err)
	}
}
