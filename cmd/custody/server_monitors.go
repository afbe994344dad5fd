package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/spf13/pflag"
)

// monitorOptions are custody server's monitor flags (docs/monitoring.md).
type monitorOptions struct {
	Monitors        string
	MonitorState    string
	MonitorInterval time.Duration
}

func (o *monitorOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Monitors, "monitors", "", "monitor configuration (YAML or JSON, docs/monitoring.md): run its monitors on ingested predictions and labels, on a schedule")
	f.StringVar(&o.MonitorState, "monitor-state", "", "directory of the monitors' summaries, results and streaks (default: DIR/monitors with --data, tables in the database with --db)")
	f.DurationVar(&o.MonitorInterval, "monitor-interval", time.Minute, "how often the monitors evaluate the windows that are due")
}

// monitorActor is the registry actor a monitor acts as: a system actor
// named "monitor:NAME" with the approver role, whose alias permission
// covers rollbacks (and which cannot register, approve its own versions
// or create tokens). Its rollbacks pass the same rollback policy as a
// person's.
func monitorActor(name string) registry.Actor {
	return registry.Actor{Name: "monitor:" + name, Role: registry.RoleApprover}
}

// checkMonitors checks the monitor flags before anything is opened.
func (o *serverOptions) checkMonitors() error {
	if o.Monitors == "" {
		return nil
	}
	if o.MonitorInterval <= 0 {
		return usagef("--monitor-interval must be positive")
	}
	return nil
}

// openMonitors opens the monitor set of --monitors, wired to the registry
// (rollbacks, monitor.result events). It returns nil without --monitors.
func (o *serverOptions) openMonitors(log *slog.Logger, svc *registry.Service, db watch.SummaryStore) (*watch.Set, error) {
	if o.Monitors == "" {
		return nil, nil
	}
	f, err := os.Open(o.Monitors)
	if err != nil {
		return nil, usagef("--monitors: %v", err)
	}
	defer f.Close()
	cfg, err := watch.ParseConfig(f, o.Monitors)
	if err != nil {
		return nil, usagef("--monitors: %v", err)
	}
	if err := o.checkMonitors(); err != nil {
		return nil, err
	}
	// --monitor-state DIR: files there; --data: files under DIR/monitors;
	// --db: tables in the PostgreSQL database (shared by the servers).
	var store watch.SummaryStore = db
	if dir := o.MonitorState; dir != "" || o.DB == "" {
		if dir == "" {
			dir = filepath.Join(o.Data, "monitors")
		}
		fs, err := watch.NewFileStore(dir)
		if err != nil {
			return nil, err
		}
		store = fs
	}
	set, err := watch.OpenSet(cfg, filepath.Dir(o.Monitors), watch.SetOptions{
		Store: store,
		RollbackerFor: func(name string) watch.Rollbacker {
			return watch.RollbackFunc(func(ctx context.Context, model, alias, reason string) error {
				_, err := svc.Rollback(ctx, monitorActor(name), model, alias, reason)
				return err
			})
		},
		Getenv:  os.Getenv,
		Client:  &http.Client{Timeout: 30 * time.Second},
		Options: watch.Options{Logger: log.With("component", "monitor"), Recorder: resultRecorder{svc}, FlushEvery: time.Second},
	})
	if err != nil {
		return nil, usagef("--monitors: %v", err)
	}
	return set, nil
}

// resultRecorder appends each evaluated window's verdict to the
// transparency log as a monitor.result event.
type resultRecorder struct{ svc *registry.Service }

// monitorResultEvent is the payload of a monitor.result event: the
// verdict, not the whole report (which stays in the monitor's state).
type monitorResultEvent struct {
	Monitor     string               `json:"monitor"`
	Model       string               `json:"model"`
	Alias       string               `json:"alias"`
	WindowStart time.Time            `json:"window_start"`
	WindowEnd   time.Time            `json:"window_end"`
	Status      string               `json:"status"`
	Predictions int64                `json:"predictions"`
	Labelled    int64                `json:"labelled"`
	Consecutive int                  `json:"consecutive"`
	Reevaluated bool                 `json:"reevaluated,omitempty"`
	Metrics     []monitorResultValue `json:"metrics"`
	Action      *watch.Action        `json:"action,omitempty"`
}

type monitorResultValue struct {
	Metric    string  `json:"metric"`
	Feature   string  `json:"feature,omitempty"`
	Value     *string `json:"value"`     // %.6g, null when not computable
	Threshold string  `json:"threshold"` // %g (the log's canonical JSON has integers only)
	Breached  bool    `json:"breached"`
}

func (rr resultRecorder) RecordResult(ctx context.Context, r *watch.Result) error {
	ev := monitorResultEvent{Monitor: r.Monitor, Model: r.Model, Alias: r.Alias, WindowStart: r.WindowStart, WindowEnd: r.WindowEnd,
		Status: r.Status, Predictions: r.Predictions, Labelled: r.Labelled, Consecutive: r.Consecutive, Reevaluated: r.Reevaluated,
		Metrics: []monitorResultValue{}, Action: r.Action}
	for _, m := range r.Metrics {
		if m.Segment != "" { // overall values only: one small event per window
			continue
		}
		v := monitorResultValue{Metric: m.Metric, Feature: m.Feature, Threshold: strconv.FormatFloat(m.Threshold, 'g', -1, 64), Breached: m.Breached}
		if f := float64(m.Value); f == f {
			s := strconv.FormatFloat(f, 'g', 6, 64)
			v.Value = &s
		}
		ev.Metrics = append(ev.Metrics, v)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return rr.svc.RecordMonitorResult(ctx, monitorActor(r.Monitor), r.Monitor, raw)
}

// predictionObserver feeds each committed prediction batch to the
// monitors, and each first label joined with its prediction.
type predictionObserver struct {
	set *watch.Set
	log *slog.Logger
}

func rawRecord(r *predstore.Record) watch.RawRecord {
	return watch.RawRecord{TS: r.TS, RequestID: r.RequestID, Model: r.Model, ModelSHA256: r.Digest,
		Features: r.Features, Prediction: r.Prediction, Segment: r.Segment}
}

// Observe implements predict.Observer.
func (p predictionObserver) Observe(ctx context.Context, recs []predstore.Record) {
	raw := make([]watch.RawRecord, len(recs))
	for i := range recs {
		raw[i] = rawRecord(&recs[i])
	}
	if err := p.set.ObserveRecords(context.WithoutCancel(ctx), raw, nil); err != nil {
		p.log.Warn("monitors could not take predictions", "err", err)
	}
}

// ObserveLabels implements predict.LabelObserver.
func (p predictionObserver) ObserveLabels(ctx context.Context, ls []predict.JoinedLabel) {
	raw := make([]watch.RawLabel, len(ls))
	for i := range ls {
		raw[i] = watch.RawLabel{Prediction: rawRecord(&ls[i].Record), Label: ls[i].Label.Label}
	}
	if err := p.set.ObserveRecords(context.WithoutCancel(ctx), nil, raw); err != nil {
		p.log.Warn("monitors could not take labels", "err", err)
	}
}

// runMonitors runs the schedule until ctx ends, then flushes.
func runMonitors(ctx context.Context, log *slog.Logger, set *watch.Set, interval time.Duration) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		set.Run(rctx, interval)
	}()
	return func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer fcancel()
		if err := set.Flush(fctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("failed to flush the monitors", "err", err)
		}
	}
}
