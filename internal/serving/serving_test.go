package serving

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/custody-ml/custody/internal/trust"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// registryEnv is a real registry (SQLite, the transparency log hook, the
// HTTP API) behind a proxy that a test can make lie: an attacker who
// controls the server's answers, but not the log key.
type registryEnv struct {
	t      testing.TB
	st     store.Store
	svc    *registry.Service
	key    crypto.Signer // the publisher's signing key (trusted)
	skey   string        // the log's signer key
	vkey   string        // the log's verifier key
	admin  string
	api    *httptest.Server
	proxy  *httptest.Server
	mu     sync.Mutex
	mutate func(r *http.Request, body []byte) []byte // rewrites responses
	remap  func(path string) string                  // rewrites request paths
}

func newRegistryEnv(t testing.TB, skey string) *registryEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := oms.GenerateKey(oms.AlgoECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ver, _ := trust.NewKeys([]crypto.PublicKey{key.Public()})
	svc := registry.New(st, registry.Options{Verifier: ver, Hooks: []registry.TxHook{tlog.Hook{}}})
	if skey == "" {
		if skey, _, err = note.GenerateKey(rand.Reader, "custody.test/log"); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := tlog.VerifierKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(svc, api.Options{RatePerSecond: 1e6, RateBurst: 1e6, Log: tlog.New(st, signer), LogVerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	e := &registryEnv{t: t, st: st, svc: svc, key: key, skey: skey, vkey: vkey, api: httptest.NewServer(h)}
	e.proxy = httptest.NewServer(http.HandlerFunc(e.forward))
	t.Cleanup(func() { e.proxy.Close(); e.api.Close(); st.Close() })
	tok, _, err := svc.CreateToken(t.Context(), registry.Actor{Name: "local:test", Role: registry.RoleAdmin}, registry.RoleAdmin, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = tok
	return e
}

func (e *registryEnv) forward(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	mutate, remap := e.mutate, e.remap
	e.mu.Unlock()
	path := r.URL.Path
	if remap != nil {
		path = remap(path)
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, e.api.URL+path+"?"+r.URL.RawQuery, r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if mutate != nil {
		body = mutate(r, body)
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func (e *registryEnv) lie(mutate func(r *http.Request, body []byte) []byte, remap func(string) string) {
	e.mu.Lock()
	e.mutate, e.remap = mutate, remap
	e.mu.Unlock()
}

func (e *registryEnv) client() *client.Client {
	c, err := client.New(e.proxy.URL, e.admin)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *registryEnv) verifier() note.Verifier {
	v, err := note.NewVerifier(e.vkey)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *registryEnv) trust() SignatureVerifier {
	v, err := trust.NewKeys([]crypto.PublicKey{e.key.Public()})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// register writes a model directory holding content, signs it and
// registers it as model@version with a file:// URI.
func (e *registryEnv) register(model, version, content string) string {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), model+"-"+version)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "weights.bin"), []byte(content), 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"v":"`+version+`"}`), 0o644)
	m, err := digest.Hash(e.t.Context(), dir, digest.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := trust.SignManifest(e.t.Context(), e.key, m)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.client().RegisterVersion(e.t.Context(), model, version, &api.RegisterBody{Manifest: *m, Signatures: []json.RawMessage{b}, URI: "file://" + filepath.ToSlash(dir)}); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func (e *registryEnv) setAlias(model, alias, version string) *store.AliasEvent {
	e.t.Helper()
	ev, err := e.client().SetAlias(e.t.Context(), model, alias, version)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func (e *registryEnv) resolver(state string) *Resolver {
	e.t.Helper()
	r, err := NewResolver(e.client(), e.verifier(), state)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func wantRefused(t *testing.T, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %v", kind)
	}
	t.Logf("refused: %v", err)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, kind) {
		t.Fatalf("error %v; want %v", err, kind)
	}
}

// The whole chain on honest answers: resolve, prove, stage, verify the
// signature, report; the audit agrees with the state, deployment
// included; an alias move is followed.
func TestChainHolds(t *testing.T) {
	e := newRegistryEnv(t, "")
	ctx := t.Context()
	e.register("m", "1", "weights one")
	e.register("m", "2", "weights two")
	ev := e.setAlias("m", "staging", "1")
	if ev.LogIndex == nil {
		t.Fatal("alias answer without log_index")
	}
	state := filepath.Join(t.TempDir(), "state.cp")
	r := e.resolver(state)
	tg, err := r.Resolve(ctx, "m", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Version != "1" || tg.LogIndex != *ev.LogIndex {
		t.Fatalf("resolved %s", tg)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("state file not written: %v", err)
	}
	p, err := Prepare(ctx, tg, FileOptions{Stage: filepath.Join(t.TempDir(), "stage"), Trust: e.trust()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Digest != tg.Digest || len(p.Signers) != 1 || !strings.HasPrefix(p.Path, p.StageDir) {
		t.Fatalf("prepared %+v", p)
	}
	got, err := os.ReadFile(filepath.Join(p.Path, "weights.bin"))
	if err != nil || string(got) != "weights one" {
		t.Fatalf("staged copy: %q %v", got, err)
	}
	d, err := Report(ctx, e.client(), tg, 4242, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d.LogIndex == nil || d.Version != "1" || d.AliasLogIndex != tg.LogIndex {
		t.Fatalf("deployment %+v", d)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.StageDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staged dir still there: %v", err)
	}

	// Unrelated changes, then a promotion: the resolver follows, reading
	// only the new entries.
	e.register("other", "1", "x")
	e.setAlias("other", "staging", "1")
	if tg, err = r.Resolve(ctx, "m", "staging"); err != nil || tg.Version != "1" {
		t.Fatalf("after unrelated changes: %v %v", tg, err)
	}
	e.setAlias("m", "staging", "2")
	if tg, err = r.Resolve(ctx, "m", "staging"); err != nil || tg.Version != "2" {
		t.Fatalf("after the move: %v %v", tg, err)
	}
	// A fresh resolver from the state file agrees.
	if tg, err = e.resolver(state).Resolve(ctx, "m", "staging"); err != nil || tg.Version != "2" {
		t.Fatalf("from the state file: %v %v", tg, err)
	}

	rep, err := tlog.Audit(ctx, e.st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) > 0 {
		t.Fatalf("audit: %v", rep.Findings)
	}
}

// A checkpoint signed by another key, or under another origin, proves
// nothing.
func TestRefusesOtherLogKey(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w")
	e.setAlias("m", "staging", "1")
	_, other, _ := note.GenerateKey(rand.Reader, "custody.test/log")
	v, _ := note.NewVerifier(other)
	r, _ := NewResolver(e.client(), v, "")
	_, err := r.Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrNotProven)

	// The right public key under another name (origin).
	raw := strings.SplitN(e.vkey, "+", 3)
	pub, _ := base64.StdEncoding.DecodeString(raw[len(raw)-1])
	renamed, err := note.NewEd25519VerifierKey("other.test/log", ed25519.PublicKey(pub[1:]))
	if err != nil {
		t.Fatal(err)
	}
	v, _ = note.NewVerifier(renamed)
	r, _ = NewResolver(e.client(), v, "")
	_, err = r.Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrNotProven)
}

var indexRE = regexp.MustCompile(`^/api/v1/log/entries/(\d+)$`)

// An inclusion proof of another entry, relabelled, does not verify.
func TestRefusesProofOfAnotherEntry(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w")
	ev := e.setAlias("m", "staging", "1")
	e.lie(func(r *http.Request, body []byte) []byte {
		if indexRE.MatchString(r.URL.Path) {
			// Claim the answer is for the entry asked.
			return bytes.Replace(body, fmt.Appendf(nil, `"index":%d`, *ev.LogIndex-1), fmt.Appendf(nil, `"index":%d`, *ev.LogIndex), 1)
		}
		return body
	}, func(p string) string {
		if m := indexRE.FindStringSubmatch(p); m != nil {
			i, _ := strconv.Atoi(m[1])
			return fmt.Sprintf("/api/v1/log/entries/%d", i-1)
		}
		return p
	})
	_, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrNotProven)
}

// The API names a version the log entry does not.
func TestRefusesAnswerThatDisagreesWithTheLog(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.register("m", "2", "w2")
	e.setAlias("m", "staging", "2")
	e.lie(func(r *http.Request, body []byte) []byte {
		if r.URL.Path == "/api/v1/models/m/aliases/staging" {
			return bytes.Replace(body, []byte(`"version":"2"`), []byte(`"version":"1"`), 1)
		}
		return body
	}, nil)
	_, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrDisagrees)
}

// A stale but genuine alias change, replayed with its own log index: the
// inclusion proof holds, the entry matches, but a later change of the
// alias is in the log.
func TestRefusesReplayedStaleAlias(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.register("m", "2", "w2")
	old := e.setAlias("m", "staging", "1")
	cur := e.setAlias("m", "staging", "2")
	// Pad the log past one entry bundle so the scan crosses tiles.
	for i := range 300 {
		if _, err := e.svc.PutModel(t.Context(), registry.Actor{Name: "t", Role: registry.RoleAdmin}, registry.ModelSpec{Name: fmt.Sprintf("pad%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.lie(func(r *http.Request, body []byte) []byte {
		if r.URL.Path == "/api/v1/models/m/aliases/staging" {
			body = bytes.Replace(body, []byte(`"version":"2"`), []byte(`"version":"1"`), 1)
			body = bytes.Replace(body, fmt.Appendf(nil, `"log_index":%d`, *cur.LogIndex), fmt.Appendf(nil, `"log_index":%d`, *old.LogIndex), 1)
		}
		return body
	}, nil)
	_, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrStale)
	// Honest again: the scan over 300+ entries and two tiles passes.
	e.lie(nil, nil)
	tg, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	if err != nil || tg.Version != "2" {
		t.Fatalf("%v %v", tg, err)
	}
}

// Entry bundles that do not hash to the checkpoint are caught by the scan.
func TestRefusesForgedEntryBundle(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.setAlias("m", "staging", "1")
	e.register("m", "2", "w2")
	e.lie(func(r *http.Request, body []byte) []byte {
		if strings.HasPrefix(r.URL.Path, "/api/v1/log/tile/entries/") {
			return bytes.Replace(body, []byte(`"version":"2"`), []byte(`"version":"3"`), 1)
		}
		return body
	}, nil)
	_, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrNotProven)
}

// A log rewritten behind the state file: a server with the same log key
// but another history.
func TestRefusesRewrittenLog(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.setAlias("m", "staging", "1")
	state := filepath.Join(t.TempDir(), "state.cp")
	if _, err := e.resolver(state).Resolve(t.Context(), "m", "staging"); err != nil {
		t.Fatal(err)
	}
	// Same key, another history (different entries), longer than before.
	f := newRegistryEnv(t, e.skey)
	f.register("m", "1", "w1")
	f.register("m", "2", "w2")
	f.setAlias("m", "staging", "2")
	r, err := NewResolver(f.client(), f.verifier(), state)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrRewritten)
	// Shorter history: the log shrank.
	g := newRegistryEnv(t, e.skey)
	g.register("m", "1", "w1")
	r, _ = NewResolver(g.client(), g.verifier(), state)
	_, err = r.Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrRewritten)
	// The state file is untouched by refusals.
	if _, err := e.resolver(state).Resolve(t.Context(), "m", "staging"); err != nil {
		t.Fatal(err)
	}
}

// Model files changed after registration are refused, staged or not, and
// nothing is left staged.
func TestRefusesModifiedFiles(t *testing.T) {
	e := newRegistryEnv(t, "")
	dir := e.register("m", "1", "w1")
	e.setAlias("m", "staging", "1")
	os.WriteFile(filepath.Join(dir, "weights.bin"), []byte("tampered"), 0o644)
	tg, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(t.Context(), tg, FileOptions{Trust: e.trust()})
	wantRefused(t, err, ErrFiles)
	stage := filepath.Join(t.TempDir(), "stage")
	_, err = Prepare(t.Context(), tg, FileOptions{Trust: e.trust(), Stage: stage})
	wantRefused(t, err, ErrFiles)
	if left, _ := os.ReadDir(stage); len(left) != 0 {
		t.Fatalf("left in the staging directory: %v", left)
	}
	// --from another copy with the right bytes holds.
	good := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(good, 0o755)
	os.WriteFile(filepath.Join(good, "weights.bin"), []byte("w1"), 0o644)
	os.WriteFile(filepath.Join(good, "config.json"), []byte(`{"v":"1"}`), 0o644)
	if _, err := Prepare(t.Context(), tg, FileOptions{Trust: e.trust(), From: good}); err != nil {
		t.Fatal(err)
	}
}

// A version no trusted key signed is refused: signed by a key the serving
// process does not trust, or served without its signatures.
func TestRefusesUnsignedVersion(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.setAlias("m", "staging", "1")
	tg, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := oms.GenerateKey(oms.AlgoECDSAP256)
	untrusted, _ := trust.NewKeys([]crypto.PublicKey{other.Public()})
	_, err = Prepare(t.Context(), tg, FileOptions{Trust: untrusted})
	wantRefused(t, err, ErrUnsigned)

	e.lie(func(r *http.Request, body []byte) []byte {
		if r.URL.Path == "/api/v1/models/m/versions/1" {
			var env struct {
				Status string         `json:"status"`
				Data   map[string]any `json:"data"`
			}
			json.Unmarshal(body, &env)
			env.Data["signatures"] = []any{}
			out, _ := json.Marshal(env)
			return out
		}
		return body
	}, nil)
	tg, err = e.resolver("").Resolve(t.Context(), "m", "staging")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(t.Context(), tg, FileOptions{Trust: e.trust()})
	wantRefused(t, err, ErrUnsigned)
}

// A version whose URI is not local needs --from.
func TestSourceNeedsLocalCopy(t *testing.T) {
	tg := &Target{Model: "m", Version: "1", Record: &store.Version{URI: "s3://bucket/m/1"}}
	if _, err := Source(tg, ""); err == nil || !strings.Contains(err.Error(), "--from") {
		t.Fatalf("got %v", err)
	}
	tg.Record.URI = "file:///srv/models/m%201"
	if p, err := Source(tg, ""); err != nil || p != "/srv/models/m 1" {
		t.Fatalf("got %q %v", p, err)
	}
	tg.Record.URI = "file://elsewhere/x"
	if _, err := Source(tg, ""); err == nil {
		t.Fatal("remote file:// host accepted")
	}
}

// Changes made without an index (before schema v3) cannot be proved.
func TestRefusesAliasWithoutIndex(t *testing.T) {
	e := newRegistryEnv(t, "")
	e.register("m", "1", "w1")
	e.setAlias("m", "staging", "1")
	e.lie(func(r *http.Request, body []byte) []byte {
		if r.URL.Path == "/api/v1/models/m/aliases/staging" {
			return regexp.MustCompile(`,"log_index":\d+`).ReplaceAll(body, nil)
		}
		return body
	}, nil)
	_, err := e.resolver("").Resolve(t.Context(), "m", "staging")
	wantRefused(t, err, ErrNotProven)
}
