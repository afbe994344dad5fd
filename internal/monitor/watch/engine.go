// Package watch runs production monitors: it folds logged predictions and
// their late labels into per-window, per-segment mergeable summaries
// (internal/monitor/summary) at ingest, evaluates a window's calibration,
// performance, fairness and drift from those summaries in O(bins), tracks
// consecutive breaches, and rolls the model alias back and alerts when a
// metric breaches for N consecutive windows.
//
// # Wiring
//
// An [Engine] is built per configured [Monitor] with [New]. The prediction
// ingest calls [Engine.ObservePrediction] and [Engine.ObserveLabel] for each
// committed record, then [Engine.Flush]; a scheduler calls
// [Engine.EvaluateDue] (or [Engine.Run]). The registry is reached only
// through the [Rollbacker] interface, alerts through [Alerter], storage
// through [SummaryStore]. See docs/monitoring.md.
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
)

// Rollbacker moves a model's alias back to its previous known-good
// version through the registry's policy and log path. It must be safe to
// call from any goroutine; an error means the alias did not move.
type Rollbacker interface {
	Rollback(ctx context.Context, model, alias, reason string) error
}

// RollbackFunc adapts a function to a Rollbacker.
type RollbackFunc func(ctx context.Context, model, alias, reason string) error

// Rollback calls f.
func (f RollbackFunc) Rollback(ctx context.Context, model, alias, reason string) error {
	return f(ctx, model, alias, reason)
}

// ResultRecorder records the result of an evaluated window elsewhere
// (e.g. in the registry's transparency log).
type ResultRecorder interface {
	RecordResult(ctx context.Context, r *Result) error
}

// Alerter delivers an alert. It should retry on its own; an error is
// logged and recorded in the result, never retried by the engine.
type Alerter interface {
	Alert(ctx context.Context, a Alert) error
}

// Alert events.
const (
	EventBreach         = "breach"
	EventRollback       = "rollback"
	EventRollbackFailed = "rollback_failed"
)

// Alert is the body of an alert (the webhook JSON).
type Alert struct {
	Event       string         `json:"event"`
	Monitor     string         `json:"monitor"`
	Model       string         `json:"model"`
	Alias       string         `json:"alias"`
	WindowStart time.Time      `json:"window_start"`
	WindowEnd   time.Time      `json:"window_end"`
	Consecutive int            `json:"consecutive"`
	Breaches    []MetricResult `json:"breaches"`
	Reason      string         `json:"reason,omitempty"`
	Error       string         `json:"error,omitempty"`
	// IdempotencyKey is the same for every delivery of one alert:
	// sha256-free text "monitor/window-start/event".
	IdempotencyKey string `json:"idempotency_key"`
}

// Options are an Engine's collaborators.
type Options struct {
	Store      SummaryStore    // required
	Rollbacker Rollbacker      // nil: rollbacks are recorded as not possible
	Alerter    Alerter         // nil: no alerts
	Logger     *slog.Logger    // nil: discard
	Metrics    *MonitorMetrics // nil: no metrics
	// Recorder, when set, is given every evaluated window's result after
	// it is stored (the server appends it to the transparency log). An
	// error is logged; the result stays stored.
	Recorder ResultRecorder
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// FlushEvery bounds how often ObserveBatch persists summaries: at most
	// once per FlushEvery (0: after every batch). A crash loses at most
	// that much of the summaries, never the stored predictions.
	FlushEvery time.Duration
}

// Engine is one running monitor. Its methods are safe for concurrent use.
type Engine struct {
	m    Monitor
	ref  *monitor.Profile
	opts Options
	log  *slog.Logger

	// mu guards the in-memory windows (ingest, flush, loading); evalMu
	// serialises evaluations and the streak state, so that a slow
	// rollback or webhook never blocks ingest.
	mu      sync.Mutex
	evalMu  sync.Mutex
	windows map[int64]*window
	latest  time.Time // start of the newest window observed
	flushed time.Time // last flush
}

// state is what an Engine persists besides summaries.
type state struct {
	LastEvaluated time.Time `json:"last_evaluated"`
	Consecutive   int       `json:"consecutive"`
	Rollbacks     int       `json:"rollbacks"`
}

// New returns the engine of monitor m (validated here) with reference
// profile ref.
func New(m Monitor, ref *monitor.Profile, opts Options) (*Engine, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("monitor %s: %w", m.Name, err)
	}
	if ref == nil {
		return nil, fmt.Errorf("monitor %s: no reference profile: %w", m.Name, ErrConfig)
	}
	if err := ref.Validate(); err != nil {
		return nil, fmt.Errorf("monitor %s: reference: %w", m.Name, err)
	}
	if opts.Store == nil {
		return nil, errors.New("watch: Options.Store is required")
	}
	needOutputs := m.Metrics.AccuracyDrop != nil || m.Metrics.ConcentrationAlpha != nil
	if needOutputs && ref.Outputs == nil {
		return nil, fmt.Errorf("monitor %s: accuracy_drop and concentration_alpha need a reference profiled with its labelled predictions (custody monitor profile --label-column ...): %w", m.Name, ErrConfig)
	}
	for _, d := range m.Metrics.Drift {
		if d.Feature == "" {
			continue
		}
		found := false
		for _, c := range ref.Columns {
			if c.Column == d.Feature {
				found = true
				if d.Wasserstein != nil && c.Kind != monitor.Numerical {
					return nil, fmt.Errorf("monitor %s: metrics.drift: wasserstein on categorical feature %q: %w", m.Name, d.Feature, ErrConfig)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("monitor %s: metrics.drift: feature %q is not in the reference profile: %w", m.Name, d.Feature, ErrConfig)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{m: m, ref: ref, opts: opts, log: log.With("monitor", m.Name), windows: map[int64]*window{}}, nil
}

// Monitor returns the engine's (validated) configuration.
func (e *Engine) Monitor() Monitor { return e.m }

func (e *Engine) windowLen() time.Duration { return time.Duration(e.m.Window) }

// WindowStart returns the start of the window holding t.
func (e *Engine) WindowStart(t time.Time) time.Time {
	w := int64(e.windowLen() / time.Second)
	s := t.Unix()
	s -= ((s % w) + w) % w
	return time.Unix(s, 0).UTC()
}

// window returns the in-memory window starting at start, loading its
// stored summaries on first use. It returns nil for windows older than
// the kept ones.
func (e *Engine) window(ctx context.Context, start time.Time) (*window, error) {
	if w, ok := e.windows[start.Unix()]; ok {
		return w, nil
	}
	if !e.latest.IsZero() && start.Before(e.latest.Add(-time.Duration(e.m.Keep-1)*e.windowLen())) {
		return nil, nil
	}
	w := &window{start: start, segments: map[string]*windowSummary{}, perKey: map[string]int{}, dirty: map[string]bool{}}
	stored, err := e.opts.Store.LoadSummaries(ctx, e.m.Name, start)
	if err != nil {
		return nil, err
	}
	for seg, data := range stored {
		s, err := e.decodeSummary(data, seg == "")
		if err != nil {
			return nil, fmt.Errorf("window %s segment %q: %w", start.Format(time.RFC3339), seg, err)
		}
		w.segments[seg] = s
		if seg != "" {
			k, _, _ := cutSegment(seg)
			w.perKey[k]++
		}
	}
	e.windows[start.Unix()] = w
	return w, nil
}

func (e *Engine) accepts(model string) bool { return model == e.m.Model }

// ObservePrediction folds a prediction into its window. It reports false
// when the record is for another model or older than the kept windows.
// Call Flush to persist.
func (e *Engine) ObservePrediction(ctx context.Context, p Prediction) (bool, error) {
	if !e.accepts(p.Model) {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	start := e.WindowStart(p.TS)
	if start.After(e.latest) {
		e.latest = start
	}
	w, err := e.window(ctx, start)
	if err != nil || w == nil {
		if err == nil {
			e.opts.Metrics.count(e.m.Name, "prediction", false)
		}
		return false, err
	}
	e.opts.Metrics.count(e.m.Name, "prediction", true)
	e.addPrediction(e.segmentSummary(w, ""), &p)
	for _, seg := range e.segmentNames(w, &p) {
		e.segmentSummary(w, seg).Predictions++
	}
	return true, nil
}

// ObserveLabel folds a label into the window of its prediction.
func (e *Engine) ObserveLabel(ctx context.Context, l Label) (bool, error) {
	if !e.accepts(l.Prediction.Model) {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	start := e.WindowStart(l.Prediction.TS)
	w, err := e.window(ctx, start)
	if err != nil || w == nil {
		if err == nil {
			e.opts.Metrics.count(e.m.Name, "label", false)
		}
		return false, err
	}
	e.opts.Metrics.count(e.m.Name, "label", true)
	e.addLabel(e.segmentSummary(w, ""), &l)
	for _, seg := range e.segmentNames(w, &l.Prediction) {
		e.addLabel(e.segmentSummary(w, seg), &l)
	}
	return true, nil
}

// Flush persists the summaries changed since the last Flush, deletes the
// stored windows older than the kept ones, and forgets in-memory windows
// older than the previous one (they are read back from the store when
// needed).
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.flushLocked(ctx)
}

func (e *Engine) flushLocked(ctx context.Context) error {
	e.flushed = e.opts.Now()
	keys := make([]int64, 0, len(e.windows))
	for k := range e.windows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		w := e.windows[k]
		for seg := range w.dirty {
			data, err := json.Marshal(w.segments[seg])
			if err != nil {
				return err
			}
			if err := e.opts.Store.SaveSummary(ctx, e.m.Name, w.start, seg, data); err != nil {
				return fmt.Errorf("failed to save the summaries of monitor %s: %w", e.m.Name, err)
			}
			delete(w.dirty, seg)
		}
		if w.start.Before(e.latest.Add(-e.windowLen())) {
			delete(e.windows, k)
		}
	}
	if e.latest.IsZero() {
		return nil
	}
	oldest := e.latest.Add(-time.Duration(e.m.Keep-1) * e.windowLen())
	stored, err := e.opts.Store.Windows(ctx, e.m.Name)
	if err != nil {
		return err
	}
	for _, w := range stored {
		if w.Before(oldest) {
			if err := e.opts.Store.DeleteWindow(ctx, e.m.Name, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// snapshot flushes and returns merged copies of the summaries of the
// windows starting in [from, to).
func (e *Engine) snapshot(ctx context.Context, from, to time.Time) (map[string]*windowSummary, int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.flushLocked(ctx); err != nil {
		return nil, 0, err
	}
	return e.load(ctx, from, to)
}

// load returns the summaries of the windows starting in [from, to),
// merged into fresh summaries (one per segment) that share nothing with
// the in-memory windows.
func (e *Engine) load(ctx context.Context, from, to time.Time) (map[string]*windowSummary, int, error) {
	out := map[string]*windowSummary{}
	n := 0
	add := func(segs map[string]*windowSummary) error {
		n++
		for seg, s := range segs {
			if out[seg] == nil {
				out[seg] = e.newSummary(seg == "")
			}
			if err := out[seg].merge(s); err != nil {
				return err
			}
		}
		return nil
	}
	stored, err := e.opts.Store.Windows(ctx, e.m.Name)
	if err != nil {
		return nil, 0, err
	}
	for _, ws := range stored {
		if ws.Before(from) || !ws.Before(to) {
			continue
		}
		if w, ok := e.windows[ws.Unix()]; ok {
			if err := add(w.segments); err != nil {
				return nil, 0, err
			}
			continue
		}
		raw, err := e.opts.Store.LoadSummaries(ctx, e.m.Name, ws)
		if err != nil {
			return nil, 0, err
		}
		segs := map[string]*windowSummary{}
		for seg, data := range raw {
			s, err := e.decodeSummary(data, seg == "")
			if err != nil {
				return nil, 0, fmt.Errorf("window %s segment %q: %w", ws.Format(time.RFC3339), seg, err)
			}
			segs[seg] = s
		}
		if err := add(segs); err != nil {
			return nil, 0, err
		}
	}
	if out[""] == nil {
		out[""] = e.newSummary(true)
	}
	return out, n, nil
}

// Report computes the result of the windows starting in [from, to)
// merged together, without recording anything: O(bins × segments ×
// windows), whatever the number of observations.
func (e *Engine) Report(ctx context.Context, from, to time.Time) (*Result, error) {
	sums, n, err := e.snapshot(ctx, from, to)
	if err != nil {
		return nil, err
	}
	r := e.compute(sums, from, to)
	r.Windows = n
	r.EvaluatedAt = e.opts.Now().UTC()
	return r, nil
}

// Evaluate evaluates the window holding t: computes its result, updates
// the breach streak (when the window is newer than the last evaluated
// one; re-evaluating an old window only replaces its result), alerts on a
// breach, rolls the alias back when a rollback metric has breached in
// Consecutive windows in a row, and stores the result.
func (e *Engine) Evaluate(ctx context.Context, t time.Time) (*Result, error) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	return e.evaluate(ctx, e.WindowStart(t))
}

// evaluate runs with evalMu held.
func (e *Engine) evaluate(ctx context.Context, start time.Time) (*Result, error) {
	end := start.Add(e.windowLen())
	sums, n, err := e.snapshot(ctx, start, end)
	if err != nil {
		return nil, err
	}
	r := e.compute(sums, start, end)
	r.Windows = n
	r.EvaluatedAt = e.opts.Now().UTC()
	st, err := e.loadState(ctx)
	if err != nil {
		return nil, err
	}
	if start.After(st.LastEvaluated) || st.LastEvaluated.IsZero() {
		st.LastEvaluated = start
		switch {
		case r.Status == StatusInsufficient:
			// Neither extends nor breaks the streak.
		case r.RollbackBreached:
			st.Consecutive++
		default:
			st.Consecutive = 0
		}
		r.Consecutive = st.Consecutive
		if r.Status == StatusBreached {
			e.alert(ctx, r, EventBreach, "", "")
		}
		if st.Consecutive >= e.m.Consecutive && e.m.Rollback {
			e.rollback(ctx, r)
			st.Consecutive = 0
			st.Rollbacks++
		}
		if err := e.saveState(ctx, st); err != nil {
			return nil, err
		}
	} else {
		r.Reevaluated = true
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := e.opts.Store.SaveResult(ctx, e.m.Name, start, data); err != nil {
		return nil, fmt.Errorf("failed to save the result of monitor %s: %w", e.m.Name, err)
	}
	if e.opts.Recorder != nil {
		if err := e.opts.Recorder.RecordResult(ctx, r); err != nil {
			e.log.Error("failed to record the result", "window", start.Format(time.RFC3339), "err", err)
		}
	}
	e.opts.Metrics.observe(r)
	e.log.Info("window evaluated", "window", start.Format(time.RFC3339), "status", r.Status,
		"consecutive", r.Consecutive, "rows", r.Labelled)
	return r, nil
}

func (e *Engine) rollback(ctx context.Context, r *Result) {
	var parts []string
	for _, b := range r.Metrics {
		if b.Breached && b.Rollback && b.Segment == "" {
			parts = append(parts, fmt.Sprintf("%s %s >= %g", b.name(), fmtValue(float64(b.Value)), b.Threshold))
		}
	}
	reason := fmt.Sprintf("monitor %s: %s for %d consecutive windows (last %s)", e.m.Name,
		strings.Join(parts, ", "), e.m.Consecutive, r.WindowStart.Format(time.RFC3339))
	a := &Action{Kind: EventRollback, Reason: reason, At: e.opts.Now().UTC()}
	r.Action = a
	var err error
	if e.opts.Rollbacker == nil {
		err = errors.New("no rollbacker configured")
	} else {
		err = e.opts.Rollbacker.Rollback(ctx, e.m.Model, e.m.Alias, reason)
	}
	if err != nil {
		a.Kind, a.Error = EventRollbackFailed, err.Error()
		e.log.Error("rollback failed", "model", e.m.Model, "alias", e.m.Alias, "err", err)
		e.alert(ctx, r, EventRollbackFailed, reason, err.Error())
		return
	}
	e.log.Warn("alias rolled back", "model", e.m.Model, "alias", e.m.Alias, "reason", reason)
	e.alert(ctx, r, EventRollback, reason, "")
}

func (e *Engine) alert(ctx context.Context, r *Result, event, reason, errText string) {
	if e.opts.Alerter == nil {
		return
	}
	a := Alert{Event: event, Monitor: e.m.Name, Model: e.m.Model, Alias: e.m.Alias,
		WindowStart: r.WindowStart, WindowEnd: r.WindowEnd, Consecutive: r.Consecutive, Reason: reason, Error: errText,
		IdempotencyKey: fmt.Sprintf("%s/%d/%s", e.m.Name, r.WindowStart.Unix(), event)}
	for _, m := range r.Metrics {
		if m.Breached {
			a.Breaches = append(a.Breaches, m)
		}
	}
	err := e.opts.Alerter.Alert(ctx, a)
	status := "sent"
	if err != nil {
		status = "failed: " + err.Error()
		e.log.Error("alert failed", "event", event, "err", err)
	}
	r.Alerts = append(r.Alerts, AlertStatus{Event: event, Status: status})
}

func (e *Engine) loadState(ctx context.Context) (state, error) {
	var st state
	data, err := e.opts.Store.LoadState(ctx, e.m.Name)
	if err != nil || data == nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("monitor %s: stored state: %w", e.m.Name, err)
	}
	return st, nil
}

func (e *Engine) saveState(ctx context.Context, st state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return e.opts.Store.SaveState(ctx, e.m.Name, data)
}

// EvaluateDue evaluates, oldest first, every stored window that ended at
// least LabelDelay ago and is newer than the last evaluated one. This is
// what a schedule calls.
func (e *Engine) EvaluateDue(ctx context.Context) ([]*Result, error) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	st, err := e.loadState(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := e.Windows(ctx)
	if err != nil {
		return nil, err
	}
	now := e.opts.Now()
	var out []*Result
	for _, ws := range stored {
		if !st.LastEvaluated.IsZero() && !ws.After(st.LastEvaluated) {
			continue
		}
		if ws.Add(e.windowLen() + time.Duration(e.m.LabelDelay)).After(now) {
			break
		}
		r, err := e.evaluate(ctx, ws)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Run calls EvaluateDue every interval until ctx ends, logging errors.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.EvaluateDue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("scheduled evaluation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Results returns the stored results, oldest window first (the newest
// limit when limit > 0).
func (e *Engine) Results(ctx context.Context, limit int) ([]*Result, error) {
	raw, err := e.opts.Store.Results(ctx, e.m.Name, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Result, 0, len(raw))
	for _, data := range raw {
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("monitor %s: stored result: %w", e.m.Name, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// Windows lists the windows with stored summaries, oldest first.
func (e *Engine) Windows(ctx context.Context) ([]time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.flushLocked(ctx); err != nil {
		return nil, err
	}
	return e.opts.Store.Windows(ctx, e.m.Name)
}

func fmtValue(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.4g", v)
}
