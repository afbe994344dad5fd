package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/ship"
	"github.com/custody-ml/custody/internal/ship/shiptest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-model")
	if err != nil {
		panic(err)
	}
	demoBin = filepath.Join(dir, "demo-model")
	if out, err := exec.Command("go", "build", "-o", demoBin, "../../examples/demo-model").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the demo model server: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		// Server packages check goroutine leaks: the extraction goroutine,
		// the shipper's goroutines and every connection must be gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// startDemo runs the demo model server (a real process) on a free port.
func startDemo(t *testing.T) *url.URL {
	t.Helper()
	cmd := exec.Command(demoBin, "--listen", "127.0.0.1:0", "--model", "../../examples/demo-model/model/model.json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(` on (127\.0\.0\.1:\d+)$`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			u, _ := url.Parse("http://" + m[1])
			return u
		}
	}
	t.Fatal("the demo model server did not start")
	return nil
}

type stack struct {
	recv    *shiptest.Receiver
	shipper *ship.Shipper
	proxy   *Proxy
	srv     *httptest.Server
	reg     *prometheus.Registry
}

func newStack(t *testing.T, upstream *url.URL, spill string, mapping *Mapping, captureMax int64) *stack {
	t.Helper()
	recv, err := shiptest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(recv.Stop)
	reg := prometheus.NewRegistry()
	sh, err := ship.New(ship.Options{
		Server: recv.URL(), Token: recv.Token, SpillDir: spill, Registerer: reg,
		BatchSize: 50, FlushInterval: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	sh.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sh.Close(ctx)
	})
	p, err := New(Options{Upstream: upstream, Model: "win-probability", ModelDigest: testDigest, Mapping: mapping,
		CaptureMax: captureMax, Sink: sh, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &stack{recv: recv, shipper: sh, proxy: p, srv: srv, reg: reg}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func inferBody(rows ...[]float64) []byte {
	var flat []float64
	for _, r := range rows {
		flat = append(flat, r...)
	}
	b, _ := json.Marshal(map[string]any{"inputs": []map[string]any{
		{"name": "x", "shape": []int{len(rows), 4}, "datatype": "FP64", "data": flat},
	}})
	return b
}

func post(t *testing.T, base, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

const inferPath = "/v2/models/win-probability/infer"

func TestKServeRecords(t *testing.T) {
	demo := startDemo(t)
	m, err := ParseMapping([]byte(`{"classes": ["loss", "win"], "feature_names": ["elo_diff", "rest_days", "injuries", "home"]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, demo, "", m, 0)

	// One row, with a reusable incoming id: the response is the upstream's,
	// byte for byte, plus the two headers.
	body := inferBody([]float64{12.5, 2, 1, 1})
	_, direct := post(t, demo.String(), inferPath, body, nil)
	resp, got := post(t, s.srv.URL, inferPath, body, map[string]string{"X-Request-Id": "abc-1"})
	if resp.StatusCode != 200 || !bytes.Equal(got, direct) {
		t.Fatalf("status %d, body %s; direct %s", resp.StatusCode, got, direct)
	}
	if resp.Header.Get("X-Request-Id") != "abc-1" || resp.Header.Get("X-Model-Sha256") != testDigest {
		t.Fatalf("headers %v", resp.Header)
	}
	// Three rows, no id: a generated id with row suffixes.
	resp, _ = post(t, s.srv.URL, inferPath, inferBody([]float64{-50, 0, 3, 0}, []float64{0, 1, 0, 1}, []float64{80, 4, 0, 1}), nil)
	gen := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(gen) {
		t.Fatalf("generated id %q", gen)
	}
	// An invalid incoming id is replaced.
	resp, _ = post(t, s.srv.URL, "/v2/models/win-probability/versions/3/infer", body, map[string]string{"X-Request-Id": "no spaces/allowed"})
	repl := resp.Header.Get("X-Request-Id")
	if repl == "no spaces/allowed" || !ValidRequestID(repl) {
		t.Fatalf("invalid id kept: %q", repl)
	}

	want := []string{"abc-1", gen + "/0", gen + "/1", gen + "/2", repl}
	waitFor(t, "5 records", func() bool { return len(s.recv.Stored()) == 5 })
	if got := s.recv.Stored(); !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	raw, _ := s.recv.Record("abc-1")
	var rec struct {
		TS          time.Time          `json:"ts"`
		RequestID   string             `json:"request_id"`
		Model       string             `json:"model"`
		ModelSHA256 string             `json:"model_sha256"`
		Features    map[string]float64 `json:"features"`
		Prediction  map[string]float64 `json:"prediction"`
		LatencyMS   *float64           `json:"latency_ms"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var up struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	json.Unmarshal(direct, &up)
	wantFeat := map[string]float64{"elo_diff": 12.5, "rest_days": 2, "injuries": 1, "home": 1}
	if rec.Model != "win-probability" || rec.ModelSHA256 != testDigest || rec.TS.IsZero() || rec.LatencyMS == nil || *rec.LatencyMS < 0 ||
		!mapsEqual(rec.Features, wantFeat) || rec.Prediction["loss"] != up.Outputs[0].Data[0] || rec.Prediction["win"] != up.Outputs[0].Data[1] {
		t.Fatalf("record %s", raw)
	}
	if n := testutil.ToFloat64(s.proxy.m.extractions.WithLabelValues("ok")); n != 3 {
		t.Fatalf("extractions ok = %v", n)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Requests and responses pass unchanged except for the hop-by-hop headers
// (RFC 9110 section 7.6.1), and bodies stream in both directions.
func TestForwardUnchanged(t *testing.T) {
	type seen struct {
		method, uri, host string
		header            http.Header
		body              []byte
	}
	got := make(chan seen, 1)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), b}
		w.Header().Set("X-Up", "1")
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "x")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	s := newStack(t, u, "", nil, 0)

	// A streamed (chunked) request body.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("part1,"))
		time.Sleep(10 * time.Millisecond)
		pw.Write([]byte("part2"))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/a/b%2Fc?q=1&r=%2F&q=2", pr)
	req.Host = "models.example"
	req.Header.Set("X-Custom", "kept")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "dropped")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Accept-Encoding", "br")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first part arrives while the upstream still holds the second.
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("streamed part %q, %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" || resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Up") != "1" || resp.Header.Get("X-Resp-Hop") != "" {
		t.Fatalf("response %d %v %q", resp.StatusCode, resp.Header, rest)
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Model-Sha256") != testDigest {
		t.Fatalf("missing custody headers: %v", resp.Header)
	}
	sn := <-got
	if sn.method != http.MethodPut || sn.uri != "/a/b%2Fc?q=1&r=%2F&q=2" || sn.host != "models.example" || string(sn.body) != "part1,part2" {
		t.Fatalf("upstream saw %s %s host %s body %q", sn.method, sn.uri, sn.host, sn.body)
	}
	if sn.header.Get("X-Custom") != "kept" || !slices.Equal(sn.header.Values("X-Multi"), []string{"1", "2"}) ||
		sn.header.Get("X-Hop") != "" || sn.header.Get("Keep-Alive") != "" || sn.header.Get("Accept-Encoding") != "br" ||
		sn.header.Get("X-Forwarded-For") != "" {
		t.Fatalf("upstream headers %v", sn.header)
	}
	// The proxy adds X-Request-Id upstream when the client sent none.
	if !ValidRequestID(sn.header.Get("X-Request-Id")) || sn.header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
		t.Fatalf("upstream X-Request-Id %q", sn.header.Get("X-Request-Id"))
	}
}

// Bodies over the capture cap are forwarded unchanged and not extracted.
func TestOverCapForwardedNotExtracted(t *testing.T) {
	demo := startDemo(t)
	s := newStack(t, demo, "", nil, 512)
	var rows [][]float64
	for range 40 {
		rows = append(rows, []float64{1, 2, 3, 4})
	}
	big := inferBody(rows...)
	resp, body := post(t, s.srv.URL, inferPath, big, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"probabilities"`)) {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	// Unknown length (chunked) over the cap.
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+inferPath, io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Fatalf("chunked: status %d", resp2.StatusCode)
	}
	// A small request is still recorded.
	post(t, s.srv.URL, inferPath, inferBody([]float64{1, 2, 3, 4}), map[string]string{"X-Request-Id": "small"})
	waitFor(t, "small record", func() bool { return len(s.recv.Stored()) == 1 })
	if got := s.recv.Stored(); got[0] != "small" {
		t.Fatalf("stored %v", got)
	}
	// Counted by the handler after the response went out.
	waitFor(t, "too_large = 2", func() bool { return testutil.ToFloat64(s.proxy.m.extractions.WithLabelValues("too_large")) == 2 })
}

func TestMappingPointers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Instances []map[string]any `json:"instances"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		var preds []float64
		for i := range in.Instances {
			preds = append(preds, 0.25*float64(i+1))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"predictions": preds})
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	m, err := ParseMapping([]byte(`{"paths": ["/v1/models/wp:predict"], "features": "/instances/*", "prediction": "/predictions/*",
		"segment": {"sport": "/meta/sport", "tier": "/meta/tier"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, u, "", m, 0)
	body := []byte(`{"instances": [{"a": 1, "b": "x", "nested": {"c": 1}}, {"a": 2, "b": "y", "n": null}], "meta": {"sport": "NBA", "tier": 2}}`)
	post(t, s.srv.URL, "/v1/models/wp:predict", body, map[string]string{"X-Request-Id": "m1"})
	post(t, s.srv.URL, "/other", body, map[string]string{"X-Request-Id": "m2"}) // not a mapped path
	waitFor(t, "2 records", func() bool { return len(s.recv.Stored()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if got := s.recv.Stored(); !slices.Equal(got, []string{"m1/0", "m1/1"}) {
		t.Fatalf("stored %v", got)
	}
	raw, _ := s.recv.Record("m1/1")
	var rec map[string]any
	json.Unmarshal(raw, &rec)
	wantFeat := map[string]any{"a": 2.0, "b": "y", "n": nil}
	wantSeg := map[string]any{"sport": "NBA", "tier": "2"}
	if fmt.Sprint(rec["features"]) != fmt.Sprint(wantFeat) || rec["prediction"] != 0.5 || fmt.Sprint(rec["segment"]) != fmt.Sprint(wantSeg) {
		t.Fatalf("record %s", raw)
	}
}

// The custody server goes away (first unreachable, then accepting but
// never answering): inference keeps working, and once the server is back
// every record arrives exactly once, in order.
func TestServerOutage(t *testing.T) {
	for _, spill := range []bool{true, false} {
		t.Run(fmt.Sprintf("spill=%v", spill), func(t *testing.T) {
			demo := startDemo(t)
			dir := ""
			if spill {
				dir = t.TempDir()
			}
			s := newStack(t, demo, dir, nil, 0)
			var ids []string
			var lat [3][]time.Duration
			send := func(phase, n int) {
				for range n {
					id := fmt.Sprintf("req-%05d", len(ids))
					start := time.Now()
					resp, body := post(t, s.srv.URL, inferPath, inferBody([]float64{float64(len(ids)), 1, 0, 1}), map[string]string{"X-Request-Id": id})
					lat[phase] = append(lat[phase], time.Since(start))
					if resp.StatusCode != 200 || !bytes.Contains(body, []byte("probabilities")) {
						t.Fatalf("request %s: status %d %s", id, resp.StatusCode, body)
					}
					ids = append(ids, id)
				}
			}
			send(0, 200)
			waitFor(t, "first records", func() bool { return len(s.recv.Stored()) == 200 })

			s.recv.Stop() // unreachable
			send(1, 300)
			if err := s.recv.Restart(); err != nil {
				t.Fatal(err)
			}
			s.recv.Hang() // accepts, never answers: the shipper is stuck in a request
			send(2, 300)
			s.recv.Release()

			waitFor(t, "every record", func() bool { return len(s.recv.Stored()) >= len(ids) })
			if got := s.recv.Stored(); !slices.Equal(got, ids) {
				t.Fatalf("stored %d records (want %d) or out of order", len(got), len(ids))
			}
			for i, name := range []string{"server up", "server unreachable", "server hung"} {
				t.Logf("%s: p50 %v p99 %v over %d requests", name, pct(lat[i], 50), pct(lat[i], 99), len(lat[i]))
			}
			if n := testutil.ToFloat64(s.proxy.m.records); n != 800 {
				t.Fatalf("records %v", n)
			}
			if n := metricValue(t, s.reg, "custody_ship_records_spilled_total"); spill != (n > 0) {
				t.Fatalf("spilled %v records with spill=%v", n, spill)
			}
			if n := metricValue(t, s.reg, "custody_ship_records_dropped_total"); n != 0 {
				t.Fatalf("dropped %v records", n)
			}
		})
	}
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// Concurrent requests: every record arrives once.
func TestConcurrentRequests(t *testing.T) {
	demo := startDemo(t)
	s := newStack(t, demo, t.TempDir(), nil, 0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				post(t, s.srv.URL, inferPath, inferBody([]float64{1, 2, 3, 4}), map[string]string{"X-Request-Id": fmt.Sprintf("w%d-%d", w, i)})
			}
		}()
	}
	wg.Wait()
	waitFor(t, "400 records", func() bool { return len(s.recv.Stored()) == 400 })
	got := s.recv.Stored()
	// Per worker, records keep their order.
	for w := range 8 {
		var mine []string
		for _, id := range got {
			if strings.HasPrefix(id, fmt.Sprintf("w%d-", w)) {
				mine = append(mine, id)
			}
		}
		for i, id := range mine {
			if id != fmt.Sprintf("w%d-%d", w, i) {
				t.Fatalf("worker %d out of order at %d: %s", w, i, id)
			}
		}
	}
}

// metricValue sums a counter family's samples.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Every metric the Grafana dashboard queries exists, with the bounded
// constant labels the CLI adds.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana/custody-proxy.json")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	labeled := prometheus.WrapRegistererWith(prometheus.Labels{"model": "m", "model_sha256": "0123456789abcdef"}, reg)
	sh, err := ship.New(ship.Options{Server: "http://127.0.0.1:1", Registerer: labeled})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close(context.Background())
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(Options{Upstream: u, Model: "m", ModelDigest: testDigest, Sink: sh, Registerer: labeled})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.m.upstream.Observe(0.001)
	p.m.overhead.Observe(0.0001)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Contains(names, "model") || !slices.Contains(names, "model_sha256") || len(names) > 3 {
				t.Errorf("%s has labels %v", mf.GetName(), names)
			}
		}
	}
	used := regexp.MustCompile(`custody_[a-z_]+`).FindAllString(string(raw), -1)
	if len(used) == 0 {
		t.Fatal("no metrics in the dashboard")
	}
	for _, name := range used {
		name = strings.TrimSuffix(name, "_bucket")
		if !have[name] {
			t.Errorf("the dashboard queries %s, which the proxy does not export", name)
		}
	}
}
