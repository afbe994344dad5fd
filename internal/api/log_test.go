package api

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/tlog"
	"golang.org/x/mod/sumdb/note"
)

func (e *env) raw(token, path string) (int, string, []byte) {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(e.t.Context(), "GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// Every change is logged; the checkpoint, entries, proofs and tiles the
// API serves verify against the log key.
func TestLogEndpoints(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6})
	e.seed()
	viewer := e.tokens[registry.RoleViewer]
	code, env := e.do(viewer, "GET", "/api/v1/log/key", nil)
	var key LogKey
	if code != 200 || json.Unmarshal(env.Data, &key) != nil {
		t.Fatalf("key: %d %+v", code, env)
	}
	v, err := note.NewVerifier(key.VerifierKey)
	if err != nil || key.Origin != "custody.test/log" {
		t.Fatal(key, err)
	}
	code, ct, signed := e.raw(viewer, "/api/v1/log/checkpoint")
	if code != 200 || ct != "text/plain; charset=utf-8" {
		t.Fatalf("checkpoint: %d %s %s", code, ct, signed)
	}
	c, err := tlog.OpenCheckpoint(signed, v)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(e.events()); c.Size != n {
		t.Fatalf("log size %d, %d events", c.Size, n)
	}
	types := map[string]bool{}
	for i := int64(0); i < c.Size; i++ {
		code, env := e.do(viewer, "GET", "/api/v1/log/entries/"+itoa(i)+"?size="+itoa(c.Size), nil)
		var p InclusionProof
		if code != 200 || json.Unmarshal(env.Data, &p) != nil {
			t.Fatalf("entry %d: %d %+v", i, code, env)
		}
		if err := tlog.VerifyInclusion(c, i, []byte(p.Entry), p.Proof); err != nil {
			t.Fatal(err)
		}
		en, err := tlog.ParseEntry([]byte(p.Entry))
		if err != nil {
			t.Fatal(err)
		}
		types[en.Type] = true
		if en.Type == "alias.set" && en.Data["digest"] == nil {
			t.Fatalf("alias entry without the target digest: %s", p.Entry)
		}
	}
	for _, typ := range []string{"token.create", "dataset.register", "model.create", "run.create", "version.register", "alias.set"} {
		if !types[typ] {
			t.Errorf("no %s entry", typ)
		}
	}
	// Grow the log, then prove the new tree extends the old one.
	if code, env := e.do(e.tokens[registry.RoleAdmin], "PUT", "/api/v1/models/m", ModelBody{Description: "x"}); code != 200 {
		t.Fatal(code, env)
	}
	_, _, signed2 := e.raw(viewer, "/api/v1/log/checkpoint")
	c2, err := tlog.OpenCheckpoint(signed2, v)
	if err != nil || c2.Size != c.Size+1 {
		t.Fatal(c2, err)
	}
	code, env = e.do(viewer, "GET", "/api/v1/log/consistency/"+itoa(c.Size)+"?size="+itoa(c2.Size), nil)
	var cp ConsistencyProof
	if code != 200 || json.Unmarshal(env.Data, &cp) != nil {
		t.Fatalf("consistency: %d %+v", code, env)
	}
	if err := tlog.VerifyConsistency(c, c2, cp.Proof); err != nil {
		t.Fatal(err)
	}
	code, ct, tile := e.raw(viewer, "/api/v1/log/tile/entries/000.p/"+itoa(c2.Size))
	if code != 200 || ct != "application/octet-stream" {
		t.Fatalf("entry bundle: %d %s", code, ct)
	}
	if es, err := tlog.ParseEntryBundle(tile); err != nil || int64(len(es)) != c2.Size {
		t.Fatalf("bundle: %d entries, %v", len(es), err)
	}
	if code, _, _ := e.raw(viewer, "/api/v1/log/tile/0/000.p/"+itoa(c2.Size)); code != 200 {
		t.Fatalf("hash tile: %d", code)
	}
	for path, want := range map[string]int{
		"/api/v1/log/tile/0/000":                        404,
		"/api/v1/log/tile/0/0":                          400,
		"/api/v1/log/entries/" + itoa(c2.Size):          404,
		"/api/v1/log/entries/01":                        400,
		"/api/v1/log/entries/0?size=" + itoa(c2.Size+1): 404,
		"/api/v1/log/consistency/0":                     404,
	} {
		if code, _, b := e.raw(viewer, path); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, b, want)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
