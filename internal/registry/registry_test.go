package registry_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/dvc"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunTests(m, func(c *pgtest.Cluster, err error) { cluster, clusterErr = c, err }))
}

// edVerifier is a test SignatureVerifier: a bundle is {"digest": PIN,
// "sig": base64(ed25519(PIN))}. It stands in for the OMS verifier at the
// interface boundary; the store underneath is real.
type edVerifier struct{ pub ed25519.PublicKey }

type edBundle struct {
	Digest string `json:"digest"`
	Sig    []byte `json:"sig"`
}

func (v edVerifier) Verify(_ context.Context, bundle []byte, m *digest.Manifest) (registry.Signer, error) {
	var b edBundle
	if err := json.Unmarshal(bundle, &b); err != nil {
		return registry.Signer{}, err
	}
	if !ed25519.Verify(v.pub, []byte(b.Digest), b.Sig) {
		return registry.Signer{}, errors.New("bad signature")
	}
	if b.Digest != m.Digest.String() {
		return registry.Signer{}, errors.New("signature is for another model")
	}
	return registry.Signer{Identity: "key test", KeyIDs: []string{"test"}}, nil
}

type fixture struct {
	svc   *registry.Service
	st    store.Store
	priv  ed25519.PrivateKey
	clock time.Time
}

var (
	publisher = registry.Actor{Name: "token:pub", Role: registry.RolePublisher}
	approver  = registry.Actor{Name: "token:appr", Role: registry.RoleApprover}
	viewer    = registry.Actor{Name: "token:view", Role: registry.RoleViewer}
	admin     = registry.Actor{Name: "token:admin", Role: registry.RoleAdmin}
)

func newFixture(t *testing.T, hooks ...registry.TxHook) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, priv, _ := ed25519.GenerateKey(nil)
	f := &fixture{st: st, priv: priv, clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.svc = registry.New(st, registry.Options{Verifier: edVerifier{pub}, Hooks: hooks, Now: func() time.Time { return f.clock }})
	return f
}

func (f *fixture) manifest(t testing.TB, content string) digest.Manifest {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := digest.Hash(t.Context(), p, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

func (f *fixture) sign(m digest.Manifest) json.RawMessage {
	b, _ := json.Marshal(edBundle{Digest: m.Digest.String(), Sig: ed25519.Sign(f.priv, []byte(m.Digest.String()))})
	return b
}

func (f *fixture) request(t testing.TB, model, version, content string) registry.RegisterRequest {
	m := f.manifest(t, content)
	return registry.RegisterRequest{Model: model, Version: version, Manifest: m, Signatures: []json.RawMessage{f.sign(m)}, URI: "s3://models/" + model, Format: "safetensors"}
}

func (f *fixture) events(t *testing.T) []store.Event {
	t.Helper()
	evs, err := f.st.Events(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestRegisterVersionImmutable(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	req := f.request(t, "sentiment", "1", "weights v1")
	v, created, err := f.svc.RegisterVersion(ctx, publisher, req)
	if err != nil || !created {
		t.Fatalf("RegisterVersion = %v, created %v", err, created)
	}
	if v.Manifest.Digest != req.Manifest.Digest || v.Signatures[0].Signer != "key test" || v.CreatedBy != publisher.Name {
		t.Fatalf("stored version %+v", v)
	}
	if m, err := f.svc.GetModel(ctx, "sentiment"); err != nil || m.Owners[0] != publisher.Name {
		t.Fatalf("model auto-created as %+v, %v", m, err)
	}
	n := len(f.events(t))
	if n != 2 { // model.create, version.register
		t.Fatalf("%d events after the first registration, want 2", n)
	}

	// Same bytes again: idempotent, nothing written.
	again, created, err := f.svc.RegisterVersion(ctx, publisher, f.request(t, "sentiment", "1", "weights v1"))
	if err != nil || created || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("re-registering the same bytes: %v, created %v", err, created)
	}
	// Different bytes: refused, typed.
	_, _, err = f.svc.RegisterVersion(ctx, publisher, f.request(t, "sentiment", "1", "weights v1 TAMPERED"))
	var ce *registry.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, registry.ErrConflict) || ce.Existing != req.Manifest.Digest {
		t.Fatalf("re-registering different bytes = %v, want a ConflictError", err)
	}
	if got, _ := f.svc.GetVersion(ctx, "sentiment", "1"); got.Manifest.Digest != req.Manifest.Digest {
		t.Fatal("the refused registration changed the version")
	}
	if len(f.events(t)) != n {
		t.Fatal("idempotent or refused registrations journaled events")
	}
}

func TestRegisterVersionRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	other := f.manifest(t, "other bytes")
	cases := []struct {
		name  string
		actor registry.Actor
		edit  func(r *registry.RegisterRequest)
		want  error
	}{
		{"viewer", viewer, nil, registry.ErrForbidden},
		{"approver", approver, nil, registry.ErrForbidden},
		{"unsigned", publisher, func(r *registry.RegisterRequest) { r.Signatures = nil }, registry.ErrUnverified},
		{"signature of other bytes", publisher, func(r *registry.RegisterRequest) { r.Signatures = []json.RawMessage{f.sign(other)} }, registry.ErrUnverified},
		{"one bad of two", publisher, func(r *registry.RegisterRequest) {
			r.Signatures = append(r.Signatures, json.RawMessage(`{"digest":"x","sig":"AAAA"}`))
		}, registry.ErrUnverified},
		{"forged pin", publisher, func(r *registry.RegisterRequest) {
			r.Manifest.Digest = other.Digest
			r.Signatures = []json.RawMessage{f.sign(r.Manifest)}
		}, registry.ErrInvalid},
		{"bad name", publisher, func(r *registry.RegisterRequest) { r.Model = "../etc" }, registry.ErrInvalid},
		{"name with @", publisher, func(r *registry.RegisterRequest) { r.Model = "a@b" }, registry.ErrInvalid},
		{"long version", publisher, func(r *registry.RegisterRequest) { r.Version = strings.Repeat("1", 65) }, registry.ErrInvalid},
		{"bad verdict", publisher, func(r *registry.RegisterRequest) { r.ScanVerdict = "fine" }, registry.ErrInvalid},
		{"relative uri", publisher, func(r *registry.RegisterRequest) { r.URI = "models/x" }, registry.ErrInvalid},
		{"unknown input dataset", publisher, func(r *registry.RegisterRequest) {
			r.Run = &registry.RunSpec{Inputs: []store.DatasetRef{{Name: "nope", Version: "1"}}}
		}, registry.ErrInvalid},
		{"env lock not JSON", publisher, func(r *registry.RegisterRequest) { r.Run = &registry.RunSpec{EnvLock: json.RawMessage("{")} }, registry.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := f.request(t, "m", "1", "weights")
			if c.edit != nil {
				c.edit(&req)
			}
			_, _, err := f.svc.RegisterVersion(ctx, c.actor, req)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if _, err := f.st.GetModel(ctx, "m"); !errors.Is(err, store.ErrNotFound) {
				t.Fatal("a refused registration left a model behind")
			}
		})
	}
	if evs := f.events(t); len(evs) != 0 {
		t.Fatalf("refusals journaled %d events", len(evs))
	}
	noTrust := registry.New(f.st, registry.Options{})
	if _, _, err := noTrust.RegisterVersion(ctx, publisher, f.request(t, "m", "1", "w")); !errors.Is(err, registry.ErrUnverified) {
		t.Fatalf("without a verifier: %v, want ErrUnverified", err)
	}
}

func TestAliasHistory(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, v := range []string{"1", "2"} {
		if _, _, err := f.svc.RegisterVersion(ctx, publisher, f.request(t, "m", v, "w"+v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.SetAlias(ctx, publisher, "m", "production", "1"); !errors.Is(err, registry.ErrForbidden) {
		t.Fatalf("publisher moved an alias: %v", err)
	}
	if _, err := f.svc.SetAlias(ctx, approver, "m", "production", "9"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("alias to a missing version: %v", err)
	}
	t1 := f.clock
	if _, err := f.svc.SetAlias(ctx, approver, "m", "production", "1"); err != nil {
		t.Fatal(err)
	}
	f.clock = t1.Add(time.Hour)
	e, err := f.svc.SetAlias(ctx, approver, "m", "production", "2")
	if err != nil || e.Previous != "1" {
		t.Fatalf("second SetAlias = %+v, %v", e, err)
	}
	// No-op: same target, no new history.
	f.clock = t1.Add(2 * time.Hour)
	if _, err := f.svc.SetAlias(ctx, approver, "m", "production", "2"); err != nil {
		t.Fatal(err)
	}
	// A server whose clock is behind the last change does not write an
	// event in the past.
	f.clock = t1.Add(30 * time.Minute)
	e, err = f.svc.SetAlias(ctx, approver, "m", "production", "1")
	if err != nil || !e.At.Equal(t1.Add(time.Hour)) {
		t.Fatalf("skewed SetAlias = %+v, %v", e, err)
	}
	hist, err := f.svc.AliasHistory(ctx, "m", "production")
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, h := range hist {
		chain = append(chain, h.Previous+">"+h.Version)
	}
	if got := strings.Join(chain, " "); got != ">1 1>2 2>1" {
		t.Fatalf("history %s", got)
	}
	at, err := f.svc.ResolveAlias(ctx, "m", "production", t1.Add(59*time.Minute))
	if err != nil || at.Version != "1" {
		t.Fatalf("production at t1+59m = %+v, %v", at, err)
	}
	if _, err := f.svc.ResolveAlias(ctx, "m", "production", t1.Add(-time.Second)); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("before the first set: %v", err)
	}
	f.clock = t1.Add(5 * time.Hour)
	if _, err := f.svc.SetAlias(ctx, approver, "m", "production", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ResolveAlias(ctx, "m", "production", time.Time{}); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("removed alias resolves: %v", err)
	}
	if at, err := f.svc.ResolveAlias(ctx, "m", "production", t1.Add(4*time.Hour)); err != nil || at.Version != "1" {
		t.Fatalf("before removal: %+v, %v", at, err)
	}
	var types []string
	for _, e := range f.events(t) {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "model.create,version.register,version.register,alias.set,alias.set,alias.set,alias.remove" {
		t.Fatalf("journal %s", got)
	}
}

func datasetSpec(t *testing.T, name, version string, files map[string]string) registry.DatasetSpec {
	t.Helper()
	dir := t.TempDir()
	spec := registry.DatasetSpec{Name: name, Version: version, Kind: digest.KindDirectory}
	var entries []dvc.Entry
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		md5, _, _ := dvc.MD5(strings.NewReader(content), dvc.AlgMD5)
		entries = append(entries, dvc.Entry{RelPath: p, MD5: md5, Size: int64(len(content))})
	}
	m, err := digest.Hash(t.Context(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec.Digest = m.Digest
	for _, r := range m.Resources {
		md5, _, _ := dvc.MD5(strings.NewReader(files[r.Name]), dvc.AlgMD5)
		spec.Files = append(spec.Files, store.DatasetFile{Path: r.Name, Size: int64(len(files[r.Name])), SHA256: r.Digest, MD5: md5})
	}
	spec.DVCMD5 = dvc.DirHash(entries)
	return spec
}

func TestDatasetsAndLineage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	spec := datasetSpec(t, "reviews", "2026-01", map[string]string{"train.csv": "a,b\n1,2\n", "test/x.csv": "a,b\n"})
	d, created, err := f.svc.RegisterDataset(ctx, publisher, spec)
	if err != nil || !created || d.Size != 12 {
		t.Fatalf("RegisterDataset = %+v, %v, %v", d, created, err)
	}
	if _, created, err := f.svc.RegisterDataset(ctx, publisher, spec); err != nil || created {
		t.Fatalf("same dataset again: %v, %v", created, err)
	}
	changed := datasetSpec(t, "reviews", "2026-01", map[string]string{"train.csv": "a,b\n1,3\n"})
	if _, _, err := f.svc.RegisterDataset(ctx, publisher, changed); !errors.As(err, new(*registry.ConflictError)) {
		t.Fatalf("changed dataset under the same version: %v", err)
	}
	bad := spec
	bad.Version, bad.DVCMD5 = "bad-md5", strings.Repeat("0", 32)+".dir"
	if _, _, err := f.svc.RegisterDataset(ctx, publisher, bad); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("wrong DVC hash accepted: %v", err)
	}
	bad = spec
	bad.Version, bad.Digest = "bad-digest", changed.Digest
	if _, _, err := f.svc.RegisterDataset(ctx, publisher, bad); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("wrong digest accepted: %v", err)
	}
	if _, _, err := f.svc.RegisterDataset(ctx, viewer, spec); !errors.Is(err, registry.ErrForbidden) {
		t.Fatalf("viewer registered a dataset: %v", err)
	}

	req := f.request(t, "m", "1", "weights")
	req.Run = &registry.RunSpec{
		ID: "run-42", Params: map[string]string{"lr": "3e-4"}, Metrics: map[string]float64{"f1": 0.91},
		CodeRepo: "https://git.example/m", CodeCommit: "deadbeef", EnvLock: json.RawMessage(`{"python":"3.11.2"}`),
		Inputs: []store.DatasetRef{{Name: "reviews", Version: "2026-01"}},
	}
	if _, _, err := f.svc.RegisterVersion(ctx, publisher, req); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.RegisterVersion(ctx, publisher, f.request(t, "m", "2", "no run")); err != nil {
		t.Fatal(err)
	}
	up, err := f.svc.Upstream(ctx, "m", "1")
	if err != nil {
		t.Fatal(err)
	}
	if up.Run == nil || up.Run.ID != "run-42" || up.Run.Metrics["f1"] != 0.91 || len(up.Datasets) != 1 || up.Datasets[0].DVCMD5 != spec.DVCMD5 {
		t.Fatalf("Upstream = %+v", up)
	}
	if up, err := f.svc.Upstream(ctx, "m", "2"); err != nil || up.Run != nil || len(up.Datasets) != 0 {
		t.Fatalf("Upstream(no run) = %+v, %v", up, err)
	}
	down, err := f.svc.DatasetUsage(ctx, "reviews", "2026-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(down.Versions) != 1 || down.Versions[0] != (store.ModelVersion{Model: "m", Version: "1"}) || len(down.Runs) != 1 {
		t.Fatalf("DatasetUsage = %+v", down)
	}
	// A second version claiming the same run ID is refused atomically.
	req2 := f.request(t, "m", "3", "weights 3")
	req2.Run = &registry.RunSpec{ID: "run-42"}
	if _, _, err := f.svc.RegisterVersion(ctx, publisher, req2); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("reused run id: %v", err)
	}
	if _, err := f.svc.GetVersion(ctx, "m", "3"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal("version registered although its run was refused")
	}
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, _, err := f.svc.CreateToken(ctx, publisher, registry.RoleAdmin, "escalate"); !errors.Is(err, registry.ErrForbidden) {
		t.Fatalf("publisher created a token: %v", err)
	}
	plain, tok, err := f.svc.CreateToken(ctx, admin, registry.RoleApprover, "release bot")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%+v", tok), plain[17:]) {
		t.Fatal("the stored token record contains the secret")
	}
	a, err := f.svc.Authenticate(ctx, plain)
	if err != nil || a.Role != registry.RoleApprover || a.Name != "token:"+tok.ID {
		t.Fatalf("Authenticate = %+v, %v", a, err)
	}
	flip := []byte(plain)
	flip[len(flip)-1] ^= 1
	secret := plain[len("cst_")+13:]
	bads := []string{"", "cst_", string(flip), plain + "x", "cst_" + strings.Repeat("0", 12) + "_" + secret,
		base64.StdEncoding.EncodeToString([]byte(plain))}
	// An id of digits only has no upper case (about 1 run in 300).
	if up := strings.ToUpper(tok.ID); up != tok.ID {
		bads = append(bads, "cst_"+up+"_"+secret)
	}
	for _, bad := range bads {
		if _, err := f.svc.Authenticate(ctx, bad); !errors.Is(err, registry.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
}

// failingHook fails in AfterChange or, deferred, at the end of the
// transaction (as the log appends), once the journal has numbered the event.
type failingHook struct {
	deferred bool
	calls    int
}

func (h *failingHook) AfterChange(ctx context.Context, tx store.Tx, ev *store.Event) error {
	h.calls++
	if !h.deferred {
		return errors.New("log unavailable")
	}
	tx.Defer(func(ctx context.Context, tx store.Tx) error {
		if ev.Seq == 0 {
			return errors.New("event has no sequence number")
		}
		return errors.New("log unavailable")
	})
	return nil
}

// The log hook runs inside the transaction: when it fails, the state change
// does not happen.
func TestHookFailureAbortsChange(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		h := &failingHook{deferred: deferred}
		f := newFixture(t, h)
		_, _, err := f.svc.RegisterVersion(t.Context(), publisher, f.request(t, "m", "1", "w"))
		if err == nil || !strings.Contains(err.Error(), "log unavailable") {
			t.Fatalf("RegisterVersion with a failing hook (deferred: %v) = %v", deferred, err)
		}
		if h.calls == 0 {
			t.Fatal("hook not called")
		}
		if _, err := f.st.GetModel(t.Context(), "m"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("state changed although the log append failed")
		}
		if evs := f.events(t); len(evs) != 0 {
			t.Fatalf("%d events survived", len(evs))
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in     string
		ok     bool
		n, ver string
	}{{"m@1", true, "m", "1"}, {"my-model.v2@2026.01_rc1", true, "my-model.v2", "2026.01_rc1"}, {"m", false, "", ""}, {"@1", false, "", ""}, {"m@", false, "", ""}, {"m@1@2", false, "", ""}, {".m@1", false, "", ""}, {"m/x@1", false, "", ""}} {
		n, v, err := registry.ParseRef(c.in)
		if (err == nil) != c.ok || n != c.n || v != c.ver {
			t.Errorf("ParseRef(%q) = %q, %q, %v", c.in, n, v, err)
		}
	}
}

// Writers racing to register different bytes under one version: exactly one
// wins, every other gets a ConflictError naming the winner's digest, and the
// journal holds one registration.
func TestRegisterVersionRace(t *testing.T) {
	f := newFixture(t)
	const writers = 8
	reqs := make([]registry.RegisterRequest, writers)
	for i := range reqs {
		reqs[i] = f.request(t, "m", "1", fmt.Sprint("weights from writer ", i))
	}
	errs := make([]error, writers)
	created := make([]bool, writers)
	done := make(chan int)
	for i := range reqs {
		go func() {
			_, created[i], errs[i] = f.svc.RegisterVersion(t.Context(), publisher, reqs[i])
			done <- i
		}()
	}
	for range writers {
		<-done
	}
	winner := -1
	for i, err := range errs {
		if err == nil && created[i] {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both created m@1", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	for i, err := range errs {
		if i == winner {
			continue
		}
		var ce *registry.ConflictError
		if !errors.As(err, &ce) || ce.Existing != reqs[winner].Manifest.Digest {
			t.Fatalf("writer %d: %v, want a conflict with the winner", i, err)
		}
	}
	n := 0
	for _, e := range f.events(t) {
		if e.Type == "version.register" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d registrations journaled, want 1", n)
	}
}

// indexHook stands in for the transparency log: it numbers changes.
type indexHook struct{ n int64 }

func (h *indexHook) AfterChange(_ context.Context, _ store.Tx, ev *store.Event) error {
	i := h.n
	h.n++
	ev.LogIndex = &i
	return nil
}

// Alias changes record the log index their hook assigned; deployments
// need the deploy permission, an existing version and its digest.
func TestAliasLogIndexAndDeployments(t *testing.T) {
	h := &indexHook{}
	f := newFixture(t, h)
	// Deployments go through the deploy gate; this test is about the
	// records, so the gate allows everything (policy_test covers denials).
	f.svc = registry.New(f.st, registry.Options{Verifier: edVerifier{f.priv.Public().(ed25519.PublicKey)}, Hooks: []registry.TxHook{h}, Gate: allowAll{},
		Now: func() time.Time { return f.clock }})
	ctx := t.Context()
	req := f.request(t, "m", "1", "w1")
	if _, _, err := f.svc.RegisterVersion(ctx, publisher, req); err != nil {
		t.Fatal(err)
	}
	ev, err := f.svc.SetAlias(ctx, approver, "m", "staging", "1")
	if err != nil {
		t.Fatal(err)
	}
	if ev.LogIndex == nil || *ev.LogIndex != h.n-1 {
		t.Fatalf("alias event log index %v, want %d", ev.LogIndex, h.n-1)
	}
	got, err := f.svc.ResolveAlias(ctx, "m", "staging", time.Time{})
	if err != nil || got.LogIndex == nil || *got.LogIndex != *ev.LogIndex {
		t.Fatalf("resolved %+v, %v", got, err)
	}

	deployer := registry.Actor{Name: "token:dep", Role: registry.RoleDeployer}
	spec := registry.DeploymentSpec{Model: "m", Alias: "staging", Version: "1", Digest: req.Manifest.Digest,
		AliasLogIndex: *ev.LogIndex, Host: "web-1", PID: 7, StartedAt: f.clock}
	for _, a := range []registry.Actor{viewer, publisher, approver} {
		if _, err := f.svc.ReportDeployment(ctx, a, spec); !errors.Is(err, registry.ErrForbidden) {
			t.Fatalf("%s reported a deployment: %v", a.Role, err)
		}
	}
	if deployer.Role.Can(registry.PermAlias) || deployer.Role.Can(registry.PermPublish) {
		t.Fatal("deployer may change the registry beyond reporting")
	}
	d, err := f.svc.ReportDeployment(ctx, deployer, spec)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || d.LogIndex == nil || *d.LogIndex != h.n-1 || d.Actor != "token:dep" {
		t.Fatalf("deployment %+v", d)
	}
	stored, err := f.svc.GetDeployment(ctx, d.ID)
	if err != nil || stored.LogIndex == nil || *stored.LogIndex != *d.LogIndex {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if evs := f.events(t); evs[len(evs)-1].Type != "deployment" {
		t.Fatalf("last event %+v", evs[len(evs)-1])
	}
	if _, err := f.svc.ReportDeployment(ctx, admin, spec); err != nil {
		t.Fatalf("admin: %v", err)
	}

	bad := spec
	bad.Digest = f.manifest(t, "other").Digest
	if _, err := f.svc.ReportDeployment(ctx, deployer, bad); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("wrong digest: %v", err)
	}
	bad = spec
	bad.Version = "9"
	if _, err := f.svc.ReportDeployment(ctx, deployer, bad); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	for _, mut := range []func(*registry.DeploymentSpec){
		func(s *registry.DeploymentSpec) { s.Host = "" },
		func(s *registry.DeploymentSpec) { s.Host = strings.Repeat("h", 300) },
		func(s *registry.DeploymentSpec) { s.PID = -1 },
		func(s *registry.DeploymentSpec) { s.AliasLogIndex = -2 },
		func(s *registry.DeploymentSpec) { s.StartedAt = time.Time{} },
		func(s *registry.DeploymentSpec) { s.Alias = "bad alias" },
		func(s *registry.DeploymentSpec) { s.Digest = digest.Digest{} },
	} {
		bad = spec
		mut(&bad)
		if _, err := f.svc.ReportDeployment(ctx, deployer, bad); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("%+v accepted: %v", bad, err)
		}
	}
	ds, err := f.svc.ListDeployments(ctx, "m", 0, 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("list: %d %v", len(ds), err)
	}
}

// allowAll is a gate that allows every decision.
type allowAll struct{}

func (allowAll) Decide(context.Context, string, map[string]any) (bool, []string, error) {
	return true, nil, nil
}
