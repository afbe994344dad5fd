package watch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
)

// Set is the monitors of a configuration, as a server runs them: it
// routes each observation to the engines of its model.
type Set struct {
	engines []*Engine
}

// SetOptions are the shared collaborators of a Set's engines.
type SetOptions struct {
	Store      SummaryStore
	Rollbacker Rollbacker
	// RollbackerFor, when set, gives each monitor its own Rollbacker
	// (the server's acts as "monitor:NAME"); it overrides Rollbacker.
	RollbackerFor func(monitor string) Rollbacker
	Getenv        func(string) string // reads webhook secrets; required when alerts are configured
	Client        *http.Client        // for webhooks
	Options                           // Logger and Now (Store, Rollbacker, Alerter are set per engine)
}

// OpenSet builds an engine per monitor of cfg, reading reference profiles
// relative to baseDir and webhook secrets from the environment.
func OpenSet(cfg *Config, baseDir string, o SetOptions) (*Set, error) {
	s := &Set{}
	for _, m := range cfg.Monitors {
		path := m.Reference
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		ref, err := monitor.ReadProfile(path)
		if err != nil {
			return nil, fmt.Errorf("monitor %s: reference: %w", m.Name, err)
		}
		opts := o.Options
		opts.Store, opts.Rollbacker = o.Store, o.Rollbacker
		if o.RollbackerFor != nil {
			opts.Rollbacker = o.RollbackerFor(m.Name)
		}
		if len(m.Alerts) > 0 {
			if o.Getenv == nil {
				return nil, errors.New("watch: SetOptions.Getenv is required for alerts")
			}
			a, err := NewWebhookAlerter(m.Alerts, o.Getenv, o.Client)
			if err != nil {
				return nil, fmt.Errorf("monitor %s: %w", m.Name, err)
			}
			opts.Alerter = a
		}
		e, err := New(m, ref, opts)
		if err != nil {
			return nil, err
		}
		s.engines = append(s.engines, e)
	}
	return s, nil
}

// Engines returns the set's engines in configuration order.
func (s *Set) Engines() []*Engine { return s.engines }

// Engine returns the engine of the monitor named name, or nil.
func (s *Set) Engine(name string) *Engine {
	for _, e := range s.engines {
		if e.m.Name == name {
			return e
		}
	}
	return nil
}

// ObserveBatch folds a committed batch of predictions and labels into
// every engine watching their models, then flushes. This is the hook the
// prediction ingest calls after each committed batch; errors are joined
// (one failing monitor does not stop the others).
func (s *Set) ObserveBatch(ctx context.Context, preds []Prediction, labels []Label) error {
	var errs []error
	for _, e := range s.engines {
		errs = append(errs, e.ObserveBatch(ctx, preds, labels))
	}
	return errors.Join(errs...)
}

// ObserveBatch folds the predictions and labels of e's model and, when
// any was, flushes (at most once per Options.FlushEvery).
func (e *Engine) ObserveBatch(ctx context.Context, preds []Prediction, labels []Label) error {
	touched := false
	for _, p := range preds {
		ok, err := e.ObservePrediction(ctx, p)
		if err != nil {
			return fmt.Errorf("monitor %s: %w", e.m.Name, err)
		}
		touched = touched || ok
	}
	for _, l := range labels {
		ok, err := e.ObserveLabel(ctx, l)
		if err != nil {
			return fmt.Errorf("monitor %s: %w", e.m.Name, err)
		}
		touched = touched || ok
	}
	if !touched {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.opts.FlushEvery > 0 && e.opts.Now().Sub(e.flushed) < e.opts.FlushEvery {
		return nil
	}
	return e.flushLocked(ctx)
}

// Flush persists every engine's pending summaries (at shutdown).
func (s *Set) Flush(ctx context.Context) error {
	var errs []error
	for _, e := range s.engines {
		errs = append(errs, e.Flush(ctx))
	}
	return errors.Join(errs...)
}

// Run runs every engine's schedule (EvaluateDue every interval) until ctx
// ends.
func (s *Set) Run(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	for _, e := range s.engines {
		wg.Go(func() { e.Run(ctx, interval) })
	}
	wg.Wait()
}

// ObserveRecords is ObserveBatch for stored records, decoded per monitor
// (each monitor has its own positive class). Records a monitor cannot
// decode are skipped and reported in the joined error; the others count.
// This is what the prediction ingest's observer calls after each
// committed batch, and its label path with each label joined to its
// stored prediction.
func (s *Set) ObserveRecords(ctx context.Context, recs []RawRecord, labels []RawLabel) error {
	var errs []error
	for _, e := range s.engines {
		var preds []Prediction
		var ls []Label
		bad := 0
		for i := range recs {
			if !e.accepts(recs[i].Model) {
				continue
			}
			p, err := e.m.DecodeRaw(&recs[i])
			if err != nil {
				bad++
				continue
			}
			preds = append(preds, p)
		}
		for i := range labels {
			if !e.accepts(labels[i].Prediction.Model) {
				continue
			}
			// A label folds into calibration and confusion counts only:
			// its prediction's features are not decoded.
			raw := labels[i].Prediction
			raw.Features = nil
			p, err := e.m.DecodeRaw(&raw)
			if err != nil {
				bad++
				continue
			}
			l, err := LabelText(labels[i].Label)
			if err != nil {
				bad++
				continue
			}
			ls = append(ls, Label{Prediction: p, Label: l})
		}
		if bad > 0 {
			errs = append(errs, fmt.Errorf("monitor %s: %d records could not be decoded", e.m.Name, bad))
		}
		if len(preds) > 0 || len(ls) > 0 {
			if err := e.ObserveBatch(ctx, preds, ls); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
