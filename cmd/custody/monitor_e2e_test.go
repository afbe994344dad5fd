package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/monitor/alert"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/store/sqlite"
)

// TestMonitorRollbackEndToEnd is issue #8's end-to-end check with the
// real binaries: a server with a monitor (1 h windows, ECE, rollback after
// 2 breaching windows, a signed webhook), v1 and v2 signed, approved and
// promoted to production, a watched serving process on v2, predictions of
// a drifting simulation (calibrated windows, then mis-calibrated ones)
// with late labels, an evaluation: ECE breaches twice, the monitor rolls
// production back to v1 through the rollback policy, the webhook arrives
// signed, the serving process restarts on v1, and the log (alias change,
// version status, monitor results) audits clean.
func TestMonitorRollbackEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("custody", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("custody %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	tokenRE := regexp.MustCompile(`cst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`)
	token := func(role, name string) string {
		return tokenRE.FindString(run(nil, "token", "create", "--data", dir, "--role", role, "--name", name))
	}
	pub, appr, deployer, viewer := token("admin", "publisher"), token("approver", "reviewer"), token("deployer", "web"), token("viewer", "dash")

	// The webhook receiver verifies every signature.
	const secret = "s3cret-for-the-test"
	var (
		mu     sync.Mutex
		alerts []watch.Alert
		bad    []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := alert.Verify([]byte(secret), r.Header.Get(alert.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			bad = append(bad, err.Error())
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var a watch.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			bad = append(bad, err.Error())
		}
		alerts = append(alerts, a)
	}))
	defer hook.Close()
	t.Setenv("CUSTODY_ALERT_SECRET", secret)

	// Reference: calibrated scores. The monitor: ECE >= 0.1 for 2 windows
	// in a row rolls production back.
	rng := rand.New(rand.NewPCG(1, 2))
	var ref strings.Builder
	ref.WriteString("x,score,label\n")
	for i := range 2000 {
		p := float64(i%10)/10 + 0.05
		y := 0
		if rng.Float64() < p {
			y = 1
		}
		fmt.Fprintf(&ref, "%g,%g,%d\n", rng.NormFloat64(), p, y)
	}
	write := func(name, text string) string {
		t.Helper()
		path := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("ref.csv", ref.String())
	run(nil, "monitor", "profile", "--input", "ref.csv", "--column", "x", "--label-column", "label", "--prob-column", "score", "--out", "ref.json")
	cfg := write("monitors.yaml", fmt.Sprintf(`monitors:
  - name: m-prod
    model: m
    alias: production
    reference: ref.json
    window: 1h
    min_rows: 100
    metrics: {ece: 0.1}
    consecutive: 2
    rollback: true
    rollback_on: [ece]
    alerts:
      - url: %s/hook
        secret_env: CUSTODY_ALERT_SECRET
`, hook.URL))

	run(nil, "keygen", "--out", "key")
	// A long schedule: the test evaluates on demand.
	srv, url, stderr := startServer(t, dir, "--trusted-key", filepath.Join(work, "key.pub"), "--monitors", cfg, "--monitor-interval", "1h")
	as := func(tok string) []string { return []string{"CUSTODY_SERVER=" + url, "CUSTODY_TOKEN=" + tok} }

	// v1 and v2, signed and scanned safe; approved by another token;
	// promoted one after the other.
	digests := map[string]string{}
	digestRE := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	for _, v := range []string{"1", "2"} {
		write("model"+v+"/weights.bin", "weights-v"+v)
		write("model"+v+"/config.json", `{"layers": 2}`)
		run(nil, "sign", "model"+v, "--key", "key.key", "--sig", "m"+v+".sig")
		digests[v] = digestRE.FindString(run(as(pub), "model", "register", "m", "--version", v, "--model", "model"+v, "--sig", "m"+v+".sig",
			"--scan-verdict", "safe", "--uri", "file://"+filepath.Join(work, "model"+v)))
		run(as(appr), "approve", "m@"+v, "--comment", "offline eval ok")
		run(as(appr), "promote", "m@"+v, "--alias", "production")
	}

	// The serving process follows production.
	served := filepath.Join(work, "served")
	serve := write("serve.sh", `echo "$CUSTODY_MODEL_VERSION" > `+served+`.tmp; mv `+served+`.tmp `+served+`
trap 'exit 0' INT TERM
while true; do sleep 0.05; done
`)
	ex := exec.Command("custody", "exec", "--model", "m@production", "--log-key", filepath.Join(dir, "log.key.pub"),
		"--trusted-key", filepath.Join(work, "key.pub"), "--stage", filepath.Join(work, "stage"), "--watch", "--poll", "100ms", "--grace", "5s", "--", "sh", serve)
	ex.Dir = work
	ex.Env = append(os.Environ(), as(deployer)...)
	var exErr bytes.Buffer
	ex.Stderr = &exErr
	if err := ex.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Process.Kill(); ex.Wait() })
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nexec: %s\nserver: %s", what, exErr.String(), stderr.String())
			}
		}
	}
	servedIs := func(v string) func() bool {
		return func() bool { b, _ := os.ReadFile(served); return strings.TrimSpace(string(b)) == v }
	}
	waitFor("the serving process on v2", servedIs("2"))

	// The drifting simulation, v2 in production: four past 1 h windows,
	// the first two calibrated, the last two mis-calibrated (outcomes
	// flipped against the scores). Labels come later, in a second pass.
	base := time.Now().UTC().Truncate(time.Hour).Add(-6 * time.Hour)
	var preds, labels strings.Builder
	for w := range 4 {
		for j := range 300 {
			id := fmt.Sprintf("w%d-%d", w, j)
			p := float64(j%10)/10 + 0.05
			ts := base.Add(time.Duration(w)*time.Hour + time.Duration(j)*10*time.Second)
			fmt.Fprintf(&preds, `{"ts": %q, "request_id": %q, "model": "m", "model_sha256": %q, "features": {"x": %g}, "prediction": %g}`+"\n",
				ts.Format(time.RFC3339Nano), id, digests["2"], rng.NormFloat64(), p)
			q := p
			if w >= 2 {
				q = 1 - p
			}
			y := 0
			if rng.Float64() < q {
				y = 1
			}
			fmt.Fprintf(&labels, `{"request_id": %q, "label": %d}`+"\n", id, y)
		}
	}
	write("preds.ndjson", preds.String())
	write("labels.ndjson", labels.String())
	run(as(pub), "predictions", "ingest", "preds.ndjson")
	run(as(pub), "predictions", "label", "labels.ndjson")
	// A relabel is stored but not counted twice by the monitor.
	write("relabel.ndjson", `{"request_id": "w0-0", "label": 1}`+"\n")
	run(as(pub), "predictions", "label", "relabel.ndjson")

	// Evaluate the due windows now (the schedule would, every hour).
	req, _ := http.NewRequest("POST", url+"/api/v1/monitors/m-prod/evaluate", nil)
	req.Header.Set("Authorization", "Bearer "+appr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Status string          `json:"status"`
		Data   []*watch.Result `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("evaluate: %d %v %+v", resp.StatusCode, err, env)
	}
	resp.Body.Close()
	if len(env.Data) != 4 {
		t.Fatalf("evaluated %d windows, want 4", len(env.Data))
	}
	for i, r := range env.Data {
		ece := ""
		for _, m := range r.Metrics {
			if m.Metric == "ece" && m.Segment == "" {
				ece = fmt.Sprintf("%.4f breached=%v", float64(m.Value), m.Breached)
			}
		}
		t.Logf("window %s: status %s, labelled %d, ece %s, consecutive %d", r.WindowStart.Format(time.RFC3339), r.Status, r.Labelled, ece, r.Consecutive)
		wantStatus := watch.StatusOK
		if i >= 2 {
			wantStatus = watch.StatusBreached
		}
		if r.Status != wantStatus || r.Labelled != 300 || r.Predictions != 300 {
			t.Fatalf("window %d: status %s, %d predictions, %d labelled; want %s, 300, 300", i, r.Status, r.Predictions, r.Labelled, wantStatus)
		}
	}
	last := env.Data[3]
	if last.Action == nil || last.Action.Kind != watch.EventRollback {
		t.Fatalf("last window's action %+v, want a rollback\n%s", last.Action, stderr.String())
	}

	// Production is back on v1, through the rollback policy, by the
	// monitor's actor; v2 is marked bad.
	if out := run(as(viewer), "alias", "get", "m", "production"); !strings.Contains(out, "1") {
		t.Fatalf("alias get: %s", out)
	}
	hist := run(as(viewer), "alias", "history", "m", "production")
	t.Logf("history:\n%s", hist)
	if !strings.Contains(hist, "monitor:m-prod") {
		t.Fatalf("the rollback is not by monitor:m-prod:\n%s", hist)
	}

	// The serving process restarted on v1.
	waitFor("the serving process on v1", servedIs("1"))

	// The webhook: breach, breach, rollback, each with a valid signature.
	waitFor("the rollback alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range alerts {
			if a.Event == watch.EventRollback {
				return true
			}
		}
		return false
	})
	mu.Lock()
	if len(bad) > 0 {
		t.Fatalf("bad webhook deliveries: %v", bad)
	}
	var events []string
	for _, a := range alerts {
		events = append(events, a.Event)
	}
	mu.Unlock()
	if got := strings.Join(events, " "); got != "breach breach rollback" {
		t.Fatalf("alerts %q, want breach breach rollback", got)
	}

	// The report over HTTP (JSON through the CLI, HTML with a header).
	rep := run(as(viewer), "monitor", "report", "m-prod", "--server", url, "--json")
	if !strings.Contains(rep, `"status": "breached"`) {
		t.Fatalf("report: %s", rep)
	}
	req, _ = http.NewRequest("GET", url+"/monitors/m-prod/report.html", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("<svg")) {
		t.Fatalf("report.html: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}

	// Stop the server; the offline audit finds nothing and the journal
	// holds the four monitor results, the version status and the
	// rollback.
	ex.Process.Signal(os.Interrupt)
	ex.Wait()
	srv.Process.Signal(os.Interrupt)
	srv.Wait()
	audit := run(nil, "log", "audit", "--data", dir)
	t.Logf("audit: %s", strings.TrimSpace(audit))
	st, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(t.Context(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var journal []string
	results := 0
	for _, e := range evs {
		switch e.Type {
		case "monitor.result":
			results++
			if e.Actor != "monitor:m-prod" || e.Subject != "monitor:m-prod" {
				t.Fatalf("monitor.result by %s on %s", e.Actor, e.Subject)
			}
			fallthrough
		case "version.status", "alias.set", "policy.decision":
			journal = append(journal, e.Type+" "+e.Subject+" "+e.Actor+" "+string(e.Payload))
		}
	}
	t.Logf("journal:\n%s", strings.Join(journal, "\n"))
	if results != 4 {
		t.Fatalf("%d monitor.result events, want 4\n%s", results, stderr.String())
	}
}
