package api

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/dvc"
	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/custody-ml/custody/internal/trust"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	t      testing.TB
	srv    *httptest.Server
	svc    *registry.Service
	st     store.Store
	pst    *predsql.DB
	key    crypto.Signer
	tokens map[registry.Role]string
}

// allowAll is a Rego policy allowing every decision: the role matrix
// checks permissions, not policies.
const allowAll = `package custody.%s

deny := set()

allow := true
`

func allowAllGate(t testing.TB) registry.Gate {
	t.Helper()
	var srcs []policy.Source
	for _, d := range policy.Decisions {
		srcs = append(srcs, policy.Source{Name: d + ".rego", Text: fmt.Sprintf(allowAll, d)})
	}
	e, err := policy.New(t.Context(), srcs, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	return newEnvGate(t, opts, allowAllGate(t), nil)
}

// newEnvGate is newEnv with a policy gate and protected aliases.
func newEnvGate(t testing.TB, opts Options, gate registry.Gate, protected []string) *env {
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
	svc := registry.New(st, registry.Options{Verifier: ver, Hooks: []registry.TxHook{tlog.Hook{}}, Gate: gate, ProtectedAliases: protected,
		PolicyConfig: map[string]any{"min_metrics": map[string]any{"accuracy": 0.9}}})
	opts.Ready = st.Ping
	skey, vkey, err := note.GenerateKey(rand.Reader, "custody.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	opts.Log, opts.LogVerifierKey = tlog.New(st, signer), vkey
	opts.Metrics = NewMetrics()
	pst, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{OnCommit: opts.Metrics.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	opts.Predictions = predict.New(svc, pst, predict.Options{Observers: []predict.Observer{opts.Metrics}})
	if opts.Monitors == nil {
		opts.Monitors = testMonitors(t)
	}
	h, err := New(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: httptest.NewServer(h), svc: svc, st: st, pst: pst, key: key, tokens: map[registry.Role]string{}}
	t.Cleanup(func() { e.srv.Close(); pst.Close(); st.Close() })
	root := registry.Actor{Name: "local:test", Role: registry.RoleAdmin}
	for _, r := range registry.Roles {
		tok, _, err := svc.CreateToken(t.Context(), root, r, string(r))
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
	}
	return e
}

func (e *env) do(token, method, path string, body any) (int, Envelope) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env Envelope
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &env); err != nil {
			e.t.Fatalf("%s %s: body is not an envelope: %s", method, path, raw)
		}
	}
	return resp.StatusCode, env
}

func (e *env) registerBody(content string) RegisterBody {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), "model.bin")
	os.WriteFile(p, []byte(content), 0o644)
	m, err := digest.Hash(e.t.Context(), p, digest.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := trust.SignManifest(e.t.Context(), e.key, m)
	if err != nil {
		e.t.Fatal(err)
	}
	return RegisterBody{Manifest: *m, Signatures: []json.RawMessage{b}, URI: "s3://m/x", Format: "safetensors"}
}

func datasetBody(content string) DatasetBody {
	sum := digestOfBytes([]byte(content))
	md5, _, _ := dvc.MD5(strings.NewReader(content), dvc.AlgMD5)
	m := digest.Manifest{Kind: digest.KindFile, Name: "data.csv", Serialization: digest.Serialization{Method: "files", HashType: "sha256"},
		Resources: []digest.Resource{{Name: "data.csv", Algorithm: "sha256", Digest: sum.Hex()}}}
	return DatasetBody{Kind: m.Kind, Digest: sum, DVCMD5: md5, Files: []store.DatasetFile{{Path: "data.csv", Size: int64(len(content)), SHA256: sum.Hex(), MD5: md5}}}
}

// evidenceBody is a signed results document about the dataset
// datasetBody(content) describes.
func (e *env) evidenceBody(content, outcome string) EvidenceBody {
	e.t.Helper()
	d := datasetBody(content)
	doc := fmt.Appendf(nil, `{"schema":"custody.data.check/v1","outcome":%q,"checked_at":"2026-01-01T00:00:00Z",
"contract":{"path":"c.yaml","sha256":"%s","name":"c"},"summary":{"expectations":2,"fail":0},
"dataset":{"path":"data.csv","kind":"file","digest":"%s","dvc_md5":"%s"},"inputs":[{"path":"data.csv","sha256":"%s"}]}`,
		outcome, d.Digest, d.Digest, d.DVCMD5, d.Digest)
	m := registry.EvidenceManifest("result.json", doc)
	b, err := trust.SignManifest(e.t.Context(), e.key, &m)
	if err != nil {
		e.t.Fatal(err)
	}
	return EvidenceBody{Name: "result.json", Document: doc, Signature: b}
}

// TestEvidence: attach, idempotence, and the refusals' status codes.
func TestEvidence(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6})
	e.seed()
	pub := e.tokens[registry.RolePublisher]
	if code, env := e.do(pub, "PUT", "/api/v1/datasets/d/versions/2", datasetBody("a,b\n1,2\n")); code != 201 {
		t.Fatalf("dataset 2: %d %+v", code, env)
	}
	body := e.evidenceBody("a,b\n", "pass")
	if code, env := e.do(pub, "POST", "/api/v1/datasets/d/versions/1/evidence", body); code != 201 {
		t.Fatalf("attach: %d %+v", code, env)
	}
	if code, env := e.do(pub, "POST", "/api/v1/datasets/d/versions/1/evidence", body); code != 200 {
		t.Fatalf("attach again: %d %+v", code, env)
	}
	if code, env := e.do(pub, "POST", "/api/v1/datasets/d/versions/2/evidence", body); code != 409 || !strings.Contains(env.Error, "checked against digest") {
		t.Fatalf("wrong dataset: %d %+v", code, env)
	}
	tampered := e.evidenceBody("a,b\n", "fail")
	tampered.Signature = body.Signature
	if code, env := e.do(pub, "POST", "/api/v1/datasets/d/versions/1/evidence", tampered); code != 422 || env.ErrorType != ErrUnverified {
		t.Fatalf("tampered: %d %+v", code, env)
	}
	if code, env := e.do(pub, "POST", "/api/v1/datasets/d/versions/1/evidence", []byte(`{"name":"r.json","document":"not base64!","signature":{}}`)); code != 400 {
		t.Fatalf("bad body: %d %+v", code, env)
	}
	code, env := e.do(pub, "GET", "/api/v1/datasets/d/versions/1/evidence", nil)
	var evs []store.Evidence
	if code != 200 || json.Unmarshal(env.Data, &evs) != nil || len(evs) != 1 || !bytes.Equal(evs[0].Document, body.Document) || evs[0].Outcome != "pass" {
		t.Fatalf("list: %d %s", code, env.Data)
	}
	if code, _ := e.do(pub, "GET", "/api/v1/datasets/d/versions/9/evidence", nil); code != 404 {
		t.Fatalf("list of an unknown version: %d", code)
	}
}

func (e *env) events() int {
	evs, err := e.st.Events(e.t.Context(), 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

// seed registers a model version, an alias and a dataset so that every
// read endpoint has something to return.
func (e *env) seed() {
	e.t.Helper()
	admin := e.tokens[registry.RoleAdmin]
	if code, env := e.do(admin, "PUT", "/api/v1/datasets/d/versions/1", datasetBody("a,b\n")); code != 201 {
		e.t.Fatalf("seed dataset: %d %+v", code, env)
	}
	body := e.registerBody("seed weights")
	body.Run = &registry.RunSpec{ID: "run-1", Inputs: []store.DatasetRef{{Name: "d", Version: "1"}}}
	if code, env := e.do(admin, "PUT", "/api/v1/models/m/versions/1", body); code != 201 {
		e.t.Fatalf("seed version: %d %+v", code, env)
	}
	if code, env := e.do(admin, "PUT", "/api/v1/models/m/aliases/production", AliasBody{Version: "1"}); code != 200 {
		e.t.Fatalf("seed alias: %d %+v", code, env)
	}
	if code, env := e.do(admin, "POST", "/api/v1/predictions", e.predictionBody("r1", body.Manifest.Digest.String())); code != 200 {
		e.t.Fatalf("seed prediction: %d %+v", code, env)
	}
}

func (e *env) predictionBody(id, digest string) []byte {
	return []byte(`[{"ts": "2026-03-01T12:00:00Z", "request_id": "` + id + `", "model": "m", "model_sha256": "` + digest +
		`", "features": {"x": 1}, "prediction": 0.5}]`)
}

// seedCanary registers m@2 and moves alias canary 2 -> 1, so that a
// promotion (of 2) and a rollback (to 2) have somewhere to go.
func (e *env) seedCanary() {
	e.t.Helper()
	admin := e.tokens[registry.RoleAdmin]
	if code, env := e.do(admin, "PUT", "/api/v1/models/m/versions/2", e.registerBody("seed weights 2")); code != 201 {
		e.t.Fatalf("seed version 2: %d %+v", code, env)
	}
	for _, v := range []string{"2", "1"} {
		if code, env := e.do(admin, "PUT", "/api/v1/models/m/aliases/canary", AliasBody{Version: v}); code != 200 {
			e.t.Fatalf("seed canary: %d %+v", code, env)
		}
	}
}

// TestRoleMatrix calls every endpoint with no token, a wrong token and each
// role: unauthenticated calls get 401, roles without the route's permission
// 403, and neither changes any state (the journal, which every change
// appends to in the same transaction, does not grow); permitted roles get
// through.
func TestRoleMatrix(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6})
	e.seed()
	e.seedCanary()
	bodies := map[string]func() any{
		"POST /api/v1/models/{name}/versions/{version}/approvals":  func() any { return ApproveBody{Comment: "ok"} },
		"POST /api/v1/models/{name}/aliases/{alias}/promote":       func() any { return PromoteBody{Version: "2"} },
		"POST /api/v1/models/{name}/aliases/{alias}/rollback":      func() any { return RollbackBody{Reason: "matrix"} },
		"PUT /api/v1/models/{name}":                                func() any { return ModelBody{Description: "d"} },
		"PUT /api/v1/models/{name}/versions/{version}":             func() any { return e.registerBody("seed weights") },
		"PUT /api/v1/models/{name}/aliases/{alias}":                func() any { return AliasBody{Version: "1"} },
		"PUT /api/v1/datasets/{name}/versions/{version}":           func() any { return datasetBody("a,b\n") },
		"POST /api/v1/tokens":                                      func() any { return TokenBody{Role: "viewer"} },
		"POST /api/v1/datasets/{name}/versions/{version}/evidence": func() any { return e.evidenceBody("a,b\n", "pass") },
		"POST /api/v1/predictions": func() any {
			return e.predictionBody("r2", e.registerBody("seed weights").Manifest.Digest.String())
		},
		"POST /api/v1/labels": func() any { return []byte(`{"request_id": "r1", "label": 1}`) },
		"POST /api/v1/deployments": func() any {
			return DeploymentBody{Model: "m", Alias: "production", Version: "1", Digest: e.registerBody("seed weights").Manifest.Digest,
				AliasLogIndex: -1, Host: "h", PID: 1, StartedAt: time.Now()}
		},
	}
	fill := strings.NewReplacer("{name}", "m", "{version}", "1", "{alias}", "production", "{id}", "run-1",
		"{path...}", "0/000.p/1", "{index}", "0", "{from}", "1", "{request_id}", "r1")
	fillDataset := strings.NewReplacer("{name}", "d", "{version}", "1")
	callers := []struct {
		name  string
		token string
		role  registry.Role
	}{{"none", "", ""}, {"wrong", "cst_000000000000_" + strings.Repeat("A", 43), ""}, {"malformed", "nope", ""}}
	for _, r := range registry.Roles {
		callers = append(callers, struct {
			name  string
			token string
			role  registry.Role
		}{string(r), e.tokens[r], r})
	}
	h, _ := New(e.svc, Options{})
	for _, rt := range h.routes() {
		key := rt.Method + " " + rt.Pattern
		path := fill.Replace(rt.Pattern)
		if strings.HasPrefix(rt.Pattern, "/api/v1/datasets/") {
			path = fillDataset.Replace(rt.Pattern)
		}
		if strings.HasSuffix(rt.Pattern, "/promote") || strings.HasSuffix(rt.Pattern, "/rollback") {
			path = strings.Replace(path, "/production/", "/canary/", 1)
		}
		// The first permitted rollback (canary 2 -> 1 back to 2) marks 1
		// bad; the second finds nothing left to roll back to.
		rollbacks := 0
		if strings.Contains(rt.Pattern, "monitors/{name}") {
			path = strings.Replace(rt.Pattern, "{name}", "mon", 1)
			if strings.Contains(path, "report") {
				path += "?at=2026-03-01T12:00:00Z"
			}
		}
		if rt.Pattern == "/api/v1/deployments/{id}" {
			path = "/api/v1/deployments/1" // reported by the POST above
		}
		for _, c := range callers {
			t.Run(key+"/"+c.name, func(t *testing.T) {
				var body any
				if f := bodies[key]; f != nil {
					body = f()
				} else if rt.Body != 0 {
					t.Fatalf("no test body for %s", key)
				}
				before := e.events()
				code, env := e.do(c.token, rt.Method, path, body)
				switch {
				case c.role == "":
					if code != 401 || env.ErrorType != ErrUnauthorized {
						t.Fatalf("got %d %+v, want 401", code, env)
					}
				case !c.role.Can(rt.Perm):
					if code != 403 || env.ErrorType != ErrForbidden {
						t.Fatalf("got %d %+v, want 403", code, env)
					}
				case strings.HasSuffix(rt.Pattern, "/rollback") && rollbacks > 0:
					if code != 409 || env.ErrorType != ErrConflict {
						t.Fatalf("second rollback got %d %+v, want 409 (nothing left)", code, env)
					}
					return
				default:
					if strings.HasSuffix(rt.Pattern, "/rollback") {
						rollbacks++
					}
					if code >= 300 {
						t.Fatalf("permitted call got %d %+v", code, env)
					}
					return
				}
				if after := e.events(); after != before {
					t.Fatalf("a refused call changed state: %d events before, %d after", before, after)
				}
			})
		}
	}
	// The alias DELETE ran last for permitted roles: production is gone.
	if code, _ := e.do(e.tokens[registry.RoleViewer], "GET", "/api/v1/models/m/aliases/production", nil); code != 404 {
		t.Fatalf("alias after DELETE: %d", code)
	}
}

func TestErrorsAndEnvelope(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6, MaxBodyBytes: 256})
	pub := e.tokens[registry.RolePublisher]
	body := e.registerBody("weights")
	code, env := e.do(pub, "PUT", "/api/v1/models/m/versions/1", body)
	if code != 201 || env.Status != "success" {
		t.Fatalf("register: %d %+v", code, env)
	}
	var v store.Version
	if err := json.Unmarshal(env.Data, &v); err != nil || v.Manifest.Digest != body.Manifest.Digest {
		t.Fatalf("register data %s (%v)", env.Data, err)
	}
	if code, _ := e.do(pub, "PUT", "/api/v1/models/m/versions/1", body); code != 200 {
		t.Fatalf("idempotent re-register: %d", code)
	}
	cases := []struct {
		name, method, path string
		body               any
		code               int
		typ                ErrorType
	}{
		{"different bytes", "PUT", "/api/v1/models/m/versions/1", e.registerBody("tampered"), 409, ErrConflict},
		{"unsigned", "PUT", "/api/v1/models/m/versions/2", func() RegisterBody { b := e.registerBody("x"); b.Signatures = nil; return b }(), 422, ErrUnverified},
		{"signature of other bytes", "PUT", "/api/v1/models/m/versions/2", func() RegisterBody {
			b := e.registerBody("x")
			b.Signatures = e.registerBody("y").Signatures
			return b
		}(), 422, ErrUnverified},
		{"unknown field", "PUT", "/api/v1/models/m", []byte(`{"description":"x","colour":"red"}`), 400, ErrBadRequest},
		{"trailing data", "PUT", "/api/v1/models/m", []byte(`{"description":"x"} {}`), 400, ErrBadRequest},
		{"too large", "PUT", "/api/v1/models/m", []byte(`{"description":"` + strings.Repeat("x", 300) + `"}`), 413, ErrTooLarge},
		{"bad name", "GET", "/api/v1/models/.hidden", nil, 400, ErrBadRequest},
		{"missing model", "GET", "/api/v1/models/nope", nil, 404, ErrNotFound},
		{"missing version", "GET", "/api/v1/models/m/versions/9", nil, 404, ErrNotFound},
		{"bad time", "GET", "/api/v1/models/m/aliases/production?at=yesterday", nil, 400, ErrBadRequest},
		{"bad limit", "GET", "/api/v1/models?limit=-1", nil, 400, ErrBadRequest},
		{"no such endpoint", "GET", "/api/v1/nothing", nil, 404, ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.events()
			code, env := e.do(pub, c.method, c.path, c.body)
			if code != c.code || env.Status != "error" || env.ErrorType != c.typ || env.Error == "" {
				t.Fatalf("got %d %+v, want %d %s", code, env, c.code, c.typ)
			}
			if e.events() != before {
				t.Fatal("a failed request changed state")
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 0.001, RateBurst: 3})
	view := e.tokens[registry.RoleViewer]
	for i := range 3 {
		if code, env := e.do(view, "GET", "/api/v1/models", nil); code != 200 {
			t.Fatalf("request %d: %d %+v", i, code, env)
		}
	}
	if code, env := e.do(view, "GET", "/api/v1/models", nil); code != 429 || env.ErrorType != ErrRateLimited {
		t.Fatalf("4th request: %d %+v, want 429", code, env)
	}
	// Another token has its own budget.
	if code, _ := e.do(e.tokens[registry.RoleAdmin], "GET", "/api/v1/models", nil); code != 200 {
		t.Fatalf("other token limited: %d", code)
	}
}

func TestFailedAuthRateLimited(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 0.001, RateBurst: 3})
	for i := range 3 {
		if code, _ := e.do("cst_000000000000_"+strings.Repeat("A", 43), "GET", "/api/v1/models", nil); code != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	if code, env := e.do("cst_000000000000_"+strings.Repeat("B", 43), "GET", "/api/v1/models", nil); code != 429 || env.ErrorType != ErrRateLimited {
		t.Fatalf("4th wrong token: %d %+v, want 429", code, env)
	}
}

func TestHealthAndOpenAPI(t *testing.T) {
	e := newEnv(t, Options{})
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json"} {
		resp, err := e.srv.Client().Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	e.do("", "GET", "/api/v1/models", nil) // a 401
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"# TYPE custody_api_requests_total counter\n", "\ncustody_api_client_errors_total 1\n", "\ncustody_api_server_errors_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	e.st.Close()
	resp, err = e.srv.Client().Get(e.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz with a closed database: %d, want 503", resp.StatusCode)
	}
}

// TestOpenAPIMatchesRoutes keeps the served document in step with the
// route table, including each operation's permission.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                           `json:"openapi"`
		Paths   map[string]map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	h, _ := New(registry.New(nil, registry.Options{}), Options{})
	want := map[string]string{"get /api/v1/openapi.json": ""}
	for _, rt := range h.routes() {
		// OpenAPI spells the ServeMux's trailing wildcard {path...} as {path}.
		want[strings.ToLower(rt.Method)+" "+strings.ReplaceAll(rt.Pattern, "...}", "}")] = string(rt.Perm)
	}
	got := map[string]string{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			perm := ""
			if raw, ok := op["x-custody-permission"]; ok {
				json.Unmarshal(raw, &perm)
			}
			got[m+" "+p] = perm
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("OpenAPI operations:\n got %v\nwant %v", got, want)
	}
}

// testMonitors is a monitor set of one monitor "mon" of model m (no
// rollbacker: the role matrix only checks who may call what).
func testMonitors(t testing.TB) *watch.Set {
	t.Helper()
	dir := t.TempDir()
	csv := "x,score,label\n"
	for i := range 200 {
		csv += fmt.Sprintf("%d,%g,%d\n", i%10, float64(i%10)/10, i%2)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := monitor.ReadTableAs(t.Context(), filepath.Join(dir, "ref.csv"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := monitor.BuildProfile(tab, []string{"x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := watch.ParseConfig(strings.NewReader("monitors:\n  - {name: mon, model: m, reference: ref.json, window: 1h,\n"+
		"     alerts: [{url: 'https://hooks.example.com/T000/B000/XXXXsecret', secret_env: CUSTODY_TEST_ALERT_SECRET}]}\n"), "test")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := watch.NewFileStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := watch.OpenSet(cfg, dir, watch.SetOptions{Store: fs, Getenv: func(string) string { return "s" }})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// GET /monitors lists the configuration without webhook paths (they may
// carry credentials).
func TestListMonitorsRedactsWebhooks(t *testing.T) {
	e := newEnv(t, Options{})
	code, env := e.do(e.tokens[registry.RoleViewer], "GET", "/api/v1/monitors", nil)
	if code != 200 {
		t.Fatalf("%d %+v", code, env)
	}
	if bytes.Contains(env.Data, []byte("XXXXsecret")) || !bytes.Contains(env.Data, []byte(`"url":"https://hooks.example.com/..."`)) {
		t.Fatalf("listing %s", env.Data)
	}
}
