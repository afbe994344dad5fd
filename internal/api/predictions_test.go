package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/registry"
)

func (e *env) post(token, path, contentType string, gz bool, body []byte) (int, Envelope) {
	e.t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), "POST", e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env Envelope
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil {
		e.t.Fatalf("not an envelope: %s", raw)
	}
	return resp.StatusCode, env
}

func TestIngestAndLookup(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6})
	e.seed()
	ing := e.tokens[registry.RoleIngester]
	d1 := e.registerBody("seed weights").Manifest.Digest
	pfx := d1.Hex()[:16]
	lines := []string{
		`{"ts": "2030-03-02T10:00:00.123456789Z", "request_id": "a1", "model": "m", "model_sha256": "` + d1.String() + `", "features": {"age": 31, "city": "Oslo", "vip": true, "x": null}, "prediction": {"yes": 0.8, "no": 0.2}, "segment": {"sport": "NBA"}, "latency_ms": 3.5}`,
		`{"ts": 1772445600.5, "model": "m", "model_sha256": "` + pfx + `", "prediction": "yes"}`,
		`{"ts": "yesterday", "model": "m", "model_sha256": "` + pfx + `", "prediction": 1}`,
		`{"ts": 1, "model": "nope", "model_sha256": "` + pfx + `", "prediction": 1}`,
		`{"ts": 1, "model": "m", "model_sha256": "0000000000000000", "prediction": 1}`,
		`{"ts": 1, "model": "m", "model_sha256": "` + pfx + `", "features": {"n": {"deep": 1}}, "prediction": 1}`,
		`{"ts": 1, "model": "m", "model_sha256": "` + pfx + `", "prediction": 1, "colour": "red"}`,
		`not json`,
		`{"ts": "2030-03-02T10:00:00.123456789Z", "request_id": "a1", "model": "m", "model_sha256": "` + d1.String() + `", "features": {"age": 31, "city": "Oslo", "vip": true, "x": null}, "prediction": {"yes": 0.8, "no": 0.2}, "segment": {"sport": "NBA"}, "latency_ms": 3.5}`,
		`{"ts": 5, "request_id": "a1", "model": "m", "model_sha256": "` + pfx + `", "prediction": 2}`,
	}
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			body := strings.Join(lines, "\n")
			if gz {
				body = strings.ReplaceAll(body, `"a1"`, `"a2"`)
			}
			code, env := e.post(ing, "/api/v1/predictions", "application/x-ndjson", gz, []byte(body))
			if code != 200 {
				t.Fatalf("%d %+v", code, env)
			}
			var res predict.IngestResult
			json.Unmarshal(env.Data, &res)
			if res.Stored != 2 || res.Duplicates != 1 || len(res.Rejected) != 7 || len(res.RequestIDs) != len(lines) {
				t.Fatalf("result %s", env.Data)
			}
			reasons := map[int]string{}
			for _, r := range res.Rejected {
				reasons[r.Index] = r.Reason
			}
			for i, want := range map[int]string{2: "ts: want RFC 3339", 3: `model "nope" is not registered`, 4: "no registered version of m",
				5: "features.n is nested", 6: `unknown field "colour"`, 7: "must be a JSON object", 9: predict.ConflictReason} {
				if !strings.Contains(reasons[i], want) {
					t.Errorf("record %d: reason %q, want %q", i, reasons[i], want)
				}
			}
			if res.RequestIDs[1] == "" || res.RequestIDs[2] != "" || res.RequestIDs[8] != res.RequestIDs[0] {
				t.Fatalf("request ids %q", res.RequestIDs)
			}
		})
	}

	// Lookup: the record, the version with digest and signatures, the alias at ts.
	view := e.tokens[registry.RoleViewer]
	code, env := e.do(view, "GET", "/api/v1/predictions/a1", nil)
	if code != 200 {
		t.Fatalf("%d %+v", code, env)
	}
	var l predict.Lookup
	if err := json.Unmarshal(env.Data, &l); err != nil {
		t.Fatal(err)
	}
	if l.Record.Version != "1" || l.Version.Manifest.Digest != d1 || len(l.Version.Signatures) != 1 || l.Record.Digest != d1.String() ||
		!l.Record.TS.Equal(time.Date(2030, 3, 2, 10, 0, 0, 123456789, time.UTC)) || string(l.Record.Features) != `{"age":31,"city":"Oslo","vip":true,"x":null}` {
		t.Fatalf("lookup %s", env.Data)
	}
	if len(l.Aliases) != 1 || l.Aliases[0].Alias != "production" || l.Aliases[0].Version != "1" {
		t.Fatalf("aliases %+v", l.Aliases)
	}
	// An ingester may not read.
	if code, _ := e.do(ing, "GET", "/api/v1/predictions/a1", nil); code != 403 {
		t.Fatalf("ingester lookup: %d", code)
	}
	if code, _ := e.do(ing, "GET", "/api/v1/models", nil); code != 403 {
		t.Fatalf("ingester list models: %d", code)
	}
	if code, _ := e.do(view, "GET", "/api/v1/predictions/zzz", nil); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}
	// Any printable id round-trips through the path (escaped as the client does).
	odd := `a/b?c%d#e"f`
	code, env = e.post(ing, "/api/v1/predictions", "", false, []byte(`{"ts": 1, "request_id": "a/b?c%d#e\"f", "model": "m", "model_sha256": "`+pfx+`", "prediction": 1}`))
	if code != 200 || !strings.Contains(string(env.Data), `"stored":1`) {
		t.Fatalf("odd id: %d %s", code, env.Data)
	}
	if code, env := e.do(view, "GET", "/api/v1/predictions/"+url.PathEscape(odd), nil); code != 200 || !strings.Contains(string(env.Data), `"request_id":"a/b?c%d#e\"f"`) {
		t.Fatalf("lookup of an odd id: %d %s", code, env.Data)
	}

	// Labels: unknown ids rejected one by one; a later label replaces.
	code, env = e.post(ing, "/api/v1/labels", "", false, []byte(`[{"request_id": "a1", "label": "no"}, {"request_id": "zz", "label": 1}, {"request_id": "a1", "label": "yes", "ts": "2026-03-10T00:00:00Z"}, {"request_id": "a1"}]`))
	if code != 200 {
		t.Fatalf("%d %+v", code, env)
	}
	var lr predict.LabelResult
	json.Unmarshal(env.Data, &lr)
	if lr.Stored != 2 || len(lr.Rejected) != 2 || lr.Rejected[0].Index != 1 || lr.Rejected[0].Reason != predict.UnknownReason || lr.Rejected[1].Index != 3 {
		t.Fatalf("labels %s", env.Data)
	}
	_, env = e.do(view, "GET", "/api/v1/predictions/a1", nil)
	json.Unmarshal(env.Data, &l)
	if l.Label == nil || string(l.Label.Label) != `"yes"` {
		t.Fatalf("label %s", env.Data)
	}

	// Metrics: bounded labels, never request ids.
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`custody_predictions_total{model="m",model_sha256_prefix="` + pfx + `",outcome="stored"} 6`,
		`custody_predictions_total{model="m",model_sha256_prefix="` + pfx + `",outcome="duplicate"} 2`,
		`custody_predictions_total{model="unresolved",model_sha256_prefix="",outcome="rejected"} 10`,
		`custody_prediction_score_count{model="m",model_sha256_prefix="` + pfx + `"} 4`,
		`custody_prediction_latency_seconds_count{model="m",model_sha256_prefix="` + pfx + `"} 2`,
		`custody_prediction_labels_total{outcome="stored"} 2`,
		"custody_prediction_commit_seconds_bucket", "custody_prediction_ingest_batch_records_bucket",
		"custody_api_requests_total", "custody_api_client_errors_total",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(string(m), "custody_prediction"))
		}
	}
	if strings.Contains(string(m), "a1") {
		t.Errorf("metrics mention a request id")
	}
}

func TestIngestLimits(t *testing.T) {
	e := newEnv(t, Options{RatePerSecond: 1e6, RateBurst: 1e6, MaxIngestBytes: 4096,
		PredictLimits: predict.Limits{MaxDecompressed: 8192, MaxRecords: 5, MaxRecordBytes: 512, MaxFeatures: 3, MaxKeyLen: 8, MaxStringLen: 16}})
	e.seed()
	ing := e.tokens[registry.RoleIngester]
	pfx := e.registerBody("seed weights").Manifest.Digest.Hex()[:16]
	rec := func(extra string) string {
		return `{"ts": 1, "model": "m", "model_sha256": "` + pfx + `", "prediction": 1` + extra + `}`
	}
	cases := []struct {
		name, ct string
		gz       bool
		body     string
		code     int
		reason   string
	}{
		{"body too large", "", false, "[" + strings.Repeat(" ", 5000) + "]", 413, ""},
		{"decompressed too large", "", true, "[" + strings.Repeat(" ", 9000) + "]", 413, ""},
		{"too many records", "application/x-ndjson", false, strings.Repeat(rec("")+"\n", 6), 413, ""},
		{"malformed array", "", false, "[" + rec("") + ",", 400, ""},
		{"not an array", "", false, `"x"`, 400, ""},
		{"trailing data", "", false, "[" + rec("") + "] x", 400, ""},
		{"bad gzip", "", true, "", 200, ""},
		{"bad content type", "text/csv", false, "[]", 400, ""},
		{"record too large", "", false, "[" + rec(`, "features": {"a": "`+strings.Repeat("x", 600)+`"}`) + "]", 200, "larger than 512 bytes"},
		{"ndjson line too large", "application/x-ndjson", false, rec(`, "features": {"a": "`+strings.Repeat("x", 600)+`"}`) + "\n" + rec(""), 200, "larger than 512 bytes"},
		{"too many features", "", false, "[" + rec(`, "features": {"a":1,"b":2,"c":3,"d":4}`) + "]", 200, "more than 3 keys"},
		{"long key", "", false, "[" + rec(`, "features": {"abcdefghi":1}`) + "]", 200, "longer than 8"},
		{"long string", "", false, "[" + rec(`, "features": {"a":"`+strings.Repeat("x", 17)+`"}`) + "]", 200, "longer than 16"},
		{"long request id", "", false, "[" + rec(`, "request_id": "`+strings.Repeat("x", 129)+`"`) + "]", 200, "request_id must be"},
		{"probability out of range", "", false, `[{"ts": 1, "model": "m", "model_sha256": "` + pfx + `", "prediction": {"a": 1.5}}]`, 200, "not in [0, 1]"},
		{"negative latency", "", false, "[" + rec(`, "latency_ms": -1`) + "]", 200, "latency_ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			gz := c.gz
			if c.name == "bad gzip" {
				// Claimed gzip, plain bytes.
				gz = false
				req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/api/v1/predictions", strings.NewReader("[]"))
				req.Header.Set("Authorization", "Bearer "+ing)
				req.Header.Set("Content-Encoding", "gzip")
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 400 {
					t.Fatalf("bad gzip: %d", resp.StatusCode)
				}
				return
			}
			code, env := e.post(ing, "/api/v1/predictions", c.ct, gz, body)
			if code != c.code {
				t.Fatalf("got %d %+v, want %d", code, env, c.code)
			}
			if c.reason != "" {
				var res predict.IngestResult
				json.Unmarshal(env.Data, &res)
				if len(res.Rejected) == 0 || !strings.Contains(res.Rejected[0].Reason, c.reason) {
					t.Fatalf("result %s, want reason %q", env.Data, c.reason)
				}
			}
		})
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The shipped Grafana dashboard queries only metrics the server exports
// (the proxy's custody_proxy_* metrics are the proxy's).
func TestDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana/custody.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Fatal("dashboard is not JSON")
	}
	m := NewMetrics()
	// Touch the vectors so that they are gathered.
	m.ObserveIngest(&predict.IngestResult{Outcomes: []predict.Outcome{{Kind: "stored", Model: "m", Prefix: "0123456789abcdef"}}}, time.Millisecond)
	m.ObserveLabels(&predict.LabelResult{})
	lat := 1.0
	m.Observe(t.Context(), []predstore.Record{{Model: "m", Digest: "sha256:" + strings.Repeat("0", 64), Prediction: json.RawMessage("0.5"), LatencyMS: &lat}})
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	used := regexp.MustCompile(`\b(custody_[a-z0-9_]+|process_[a-z_]+|go_[a-z_]+)`).FindAllString(string(raw), -1)
	if len(used) == 0 {
		t.Fatal("no metrics in the dashboard")
	}
	for _, name := range used {
		if strings.HasPrefix(name, "custody_proxy_") {
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !have[name] && !have[base] {
			t.Errorf("dashboard uses %s, which the server does not export", name)
		}
	}
}
