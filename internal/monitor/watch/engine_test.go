package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/alert"
	"github.com/prometheus/client_golang/prometheus"
)

var sports = []string{"MLB", "NBA", "NFL"}

// row is one simulated prediction with its label.
type row struct {
	ts    time.Time
	x     float64
	color string
	sport string
	score float64
	label int
}

// scenario says how a window's rows are generated.
type scenario struct {
	shift   float64 // added to the score shown (miscalibration)
	flipAll float64 // share of labels flipped everywhere (uniform drift)
	flipNBA float64 // share of labels flipped in NBA only (targeted)
	xShift  float64 // feature drift
	rows    int
	seed    uint64
}

// generate simulates a calibrated binary model: the true probability q is
// uniform, the label is Bernoulli(q), the score shown is q + shift
// (clipped). Labels are then flipped as the scenario says.
func generate(start time.Time, win time.Duration, sc scenario) []row {
	r := rand.New(rand.NewPCG(sc.seed, 42))
	out := make([]row, sc.rows)
	for i := range out {
		q := r.Float64()
		y := 0
		if r.Float64() < q {
			y = 1
		}
		sport := sports[r.IntN(len(sports))]
		if r.Float64() < sc.flipAll || sport == "NBA" && r.Float64() < sc.flipNBA {
			y = 1 - y
		}
		colors := []string{"red", "green", "blue"}
		out[i] = row{
			ts:    start.Add(time.Duration(r.Int64N(int64(win)))),
			x:     r.NormFloat64() + sc.xShift,
			color: colors[r.IntN(3)],
			sport: sport,
			score: math.Min(1, math.Max(0, q+sc.shift)),
			label: y,
		}
	}
	return out
}

func writeCSV(t testing.TB, path string, rows []row) {
	t.Helper()
	var b strings.Builder
	b.WriteString("x,color,sport,score,label\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%v,%s,%s,%v,%d\n", r.x, r.color, r.sport, r.score, r.label)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// referenceProfile profiles a calibrated reference the way
// `custody monitor profile --label-column label --prob-column score
// --segment-column sport` does.
func referenceProfile(t testing.TB, bins int) *monitor.Profile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.csv")
	writeCSV(t, path, generate(time.Unix(0, 0), time.Hour, scenario{rows: 20000, seed: 1}))
	tab, err := monitor.ReadTableAs(t.Context(), path, nil, []string{"sport", "color"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := monitor.BuildProfile(tab, []string{"x", "color"}, []string{"color"})
	if err != nil {
		t.Fatal(err)
	}
	p.Outputs, err = monitor.BuildOutputProfile(tab, monitor.PerformanceOptions{LabelColumn: "label", ProbColumn: "score", GroupColumns: []string{"sport"}}, bins)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r row) prediction(model string) Prediction {
	s := r.score
	return Prediction{TS: r.ts, Model: model, ModelSHA256: "sha256:" + strings.Repeat("ab", 32),
		Features: map[string]any{"x": r.x, "color": r.color}, Score: &s, Segment: map[string]string{"sport": r.sport}}
}

func feed(t *testing.T, e *Engine, rows []row) {
	t.Helper()
	ctx := t.Context()
	for _, r := range rows {
		p := r.prediction("churn")
		if ok, err := e.ObservePrediction(ctx, p); !ok || err != nil {
			t.Fatalf("observe: %v %v", ok, err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Labels arrive later, in another batch.
	for _, r := range rows {
		if ok, err := e.ObserveLabel(ctx, Label{Prediction: r.prediction("churn"), Label: fmt.Sprint(r.label)}); !ok || err != nil {
			t.Fatalf("label: %v %v", ok, err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// offlineECE is what `custody calibration --bins N` prints for the rows.
func offlineECE(t *testing.T, rows []row, bins int) monitor.Calibration {
	t.Helper()
	probs := make([]float64, len(rows))
	outs := make([]bool, len(rows))
	for i, r := range rows {
		probs[i], outs[i] = r.score, r.label == 1
	}
	c, err := monitor.Calibrate(probs, outs, bins, monitor.StrategyUniform)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type hookReceiver struct {
	mu     sync.Mutex
	fail   int
	seen   int
	events []Alert
	errs   []error
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen++
	if err := alert.Verify([]byte("hook-secret"), r.Header.Get(alert.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		h.errs = append(h.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.seen <= h.fail {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	var a Alert
	if err := json.Unmarshal(body, &a); err != nil {
		h.errs = append(h.errs, err)
	}
	if r.Header.Get(alert.IdempotencyHeader) != a.IdempotencyKey {
		h.errs = append(h.errs, fmt.Errorf("idempotency header %q", r.Header.Get(alert.IdempotencyHeader)))
	}
	h.events = append(h.events, a)
}

func TestEngineDriftingStream(t *testing.T) {
	const bins = 10
	ctx := t.Context()
	recv := &hookReceiver{fail: 1}
	srv := httptest.NewServer(recv)
	defer srv.Close()

	cfg, err := ParseConfig(strings.NewReader(fmt.Sprintf(`
monitors:
  - name: churn-prod
    model: churn
    reference: ref.json
    window: 1h
    keep: 48
    segments: [sport]
    min_rows: 500
    metrics:
      ece: 0.1
      accuracy_drop: 0.1
      concentration_alpha: 0.01
      fairness: [{attribute: sport}]
      drift:
        - {psi: 0.2, wasserstein: 0.5}
    consecutive: 3
    rollback: true
    alerts:
      - url: %s/hook
        secret_env: HOOK_SECRET
`, srv.URL)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Monitors[0]
	var rollbacks []string
	var mu sync.Mutex
	rb := RollbackFunc(func(_ context.Context, model, alias, reason string) error {
		mu.Lock()
		defer mu.Unlock()
		rollbacks = append(rollbacks, model+"@"+alias+": "+reason)
		return nil
	})
	al, err := NewWebhookAlerter(m.Alerts, mapEnv{"HOOK_SECRET": "hook-secret"}.get, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	al.hooks[0].BaseDelay = time.Millisecond
	store, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs strings.Builder
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := New(m, referenceProfile(t, bins), Options{Store: store, Rollbacker: rb, Alerter: al, Metrics: NewMonitorMetrics(reg), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	plan := []scenario{
		{}, {}, {}, // calibrated
		{shift: 0.25}, {shift: 0.25}, {shift: 0.25}, // ECE breaches: rollback after the third
		{shift: 0.25}, {shift: 0.25}, // breaching again: streak restarted, no second rollback
	}
	for i, sc := range plan {
		sc.rows, sc.seed = 3000, uint64(100+i)
		start := t0.Add(time.Duration(i) * time.Hour)
		rows := generate(start, time.Hour, sc)
		feed(t, e, rows)
		res, err := e.Evaluate(ctx, start)
		if err != nil {
			t.Fatal(err)
		}
		off := offlineECE(t, rows, bins)
		// Bucket counts are exact; the sums differ only by the 2^-52
		// quantisation and summation order (observed: <= 2.5e-16).
		if d := math.Abs(float64(res.Calibration.ECE - off.ECE)); d > 1e-15 {
			t.Errorf("window %d: ECE from summaries %v, offline %v", i, res.Calibration.ECE, off.ECE)
		}
		if d := math.Abs(float64(res.Calibration.Brier - off.Brier)); d > 1e-15 {
			t.Errorf("window %d: Brier from summaries %v, offline %v", i, res.Calibration.Brier, off.Brier)
		}
		for k, b := range off.Table {
			if res.Calibration.Buckets[k].Count != b.Count {
				t.Errorf("window %d bucket %d: count %d, offline %d", i, k, res.Calibration.Buckets[k].Count, b.Count)
			}
		}
		wantBreach := sc.shift > 0
		if res.RollbackBreached != wantBreach {
			t.Errorf("window %d: ECE %v breached=%v, want %v", i, res.Calibration.ECE, res.RollbackBreached, wantBreach)
		}
		if res.Predictions != 3000 || res.Labelled != 3000 {
			t.Errorf("window %d: %d predictions, %d labelled", i, res.Predictions, res.Labelled)
		}
		if i == 5 {
			if res.Action == nil || res.Action.Kind != EventRollback {
				t.Errorf("window 5: action %+v, want a rollback", res.Action)
			}
		} else if res.Action != nil {
			t.Errorf("window %d: unexpected action %+v", i, res.Action)
		}
		t.Logf("window %d: ECE %.4f (offline %.4f) status %s consecutive %d", i, res.Calibration.ECE, off.ECE, res.Status, res.Consecutive)
	}
	if len(rollbacks) != 1 || !strings.HasPrefix(rollbacks[0], "churn@production: monitor churn-prod: ece ") {
		t.Fatalf("rollbacks: %q", rollbacks)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.errs) > 0 {
		t.Fatalf("receiver: %v", recv.errs)
	}
	var kinds []string
	for _, a := range recv.events {
		kinds = append(kinds, a.Event)
	}
	// One breach alert per breaching window, plus the rollback's.
	want := "breach breach breach rollback breach breach"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("alerts %q, want %q", got, want)
	}
	// The first attempt failed and was retried.
	if recv.seen != len(recv.events)+1 {
		t.Fatalf("%d requests for %d alerts", recv.seen, len(recv.events))
	}

	logMu.Lock()
	if strings.Contains(logs.String(), "hook-secret") || !strings.Contains(logs.String(), "alias rolled back") {
		t.Errorf("logs: %s", logs.String())
	}
	logMu.Unlock()

	// Metrics.
	for name, want := range map[string]float64{
		`custody_monitor_rollbacks_total{monitor="churn-prod",result="ok"}`:                 1,
		`custody_monitor_alerts_total{event="breach",monitor="churn-prod",result="sent"}`:   5,
		`custody_monitor_alerts_total{event="rollback",monitor="churn-prod",result="sent"}`: 1,
		`custody_monitor_evaluations_total{monitor="churn-prod",status="breached"}`:         5,
		`custody_monitor_consecutive_breaches{monitor="churn-prod"}`:                        2,
		`custody_monitor_observations_total{kind="label",monitor="churn-prod"}`:             24000,
	} {
		if got := gathered(t, reg)[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// Results are stored; the report over several windows merges them.
	hist, err := e.Results(ctx, 0)
	if err != nil || len(hist) != len(plan) {
		t.Fatalf("results: %d, %v", len(hist), err)
	}
	rep, err := e.Report(ctx, t0, t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Windows != 3 || rep.Predictions != 9000 {
		t.Fatalf("merged report: %d windows, %d predictions", rep.Windows, rep.Predictions)
	}
}

// gathered returns every sample of reg by its name{labels} text.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (m mapEnv) get(k string) string { return m[k] }

type mapEnv map[string]string

func TestConcentrationVerdicts(t *testing.T) {
	const bins = 10
	ref := referenceProfile(t, bins)
	alpha := 0.01
	for _, c := range []struct {
		name string
		sc   scenario
		want string
	}{
		{"targeted", scenario{flipNBA: 0.4}, monitor.VerdictConcentrated},
		{"uniform", scenario{flipAll: 0.3}, monitor.VerdictUniform},
		{"healthy", scenario{}, monitor.VerdictNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := Monitor{Name: "c", Model: "churn", Reference: "ref.json", Window: Duration(time.Hour), Segments: []string{"sport"},
				Metrics: Metrics{ConcentrationAlpha: &alpha}}
			store, _ := NewFileStore(t.TempDir())
			e, err := New(m, ref, Options{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			c.sc.rows, c.sc.seed = 6000, 7
			feed(t, e, generate(start, time.Hour, c.sc))
			res, err := e.Evaluate(t.Context(), start)
			if err != nil {
				t.Fatal(err)
			}
			var bySport *monitor.Concentration
			for i := range res.Concentration {
				if res.Concentration[i].By == "sport" {
					bySport = &res.Concentration[i]
				}
			}
			if bySport == nil {
				t.Fatalf("no concentration test by sport: %+v", res.Concentration)
			}
			if bySport.Verdict != c.want {
				t.Fatalf("verdict %s (Q p %v, strata %+v), want %s", bySport.Verdict, bySport.QPValue, bySport.Strata, c.want)
			}
			if c.want == monitor.VerdictConcentrated && (len(bySport.ConcentratedIn) != 1 || bySport.ConcentratedIn[0] != "NBA") {
				t.Fatalf("concentrated in %v, want NBA", bySport.ConcentratedIn)
			}
		})
	}
}
