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
	Getenv     func(string) string // reads webhook secrets; required when alerts are configured
	Client     *http.Client        // for webhooks
	Options                        // Logger and Now (Store, Rollbacker, Alerter are set per engine)
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
		touched := false
		for _, p := range preds {
			ok, err := e.ObservePrediction(ctx, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("monitor %s: %w", e.m.Name, err))
				break
			}
			touched = touched || ok
		}
		for _, l := range labels {
			ok, err := e.ObserveLabel(ctx, l)
			if err != nil {
				errs = append(errs, fmt.Errorf("monitor %s: %w", e.m.Name, err))
				break
			}
			touched = touched || ok
		}
		if touched {
			if err := e.Flush(ctx); err != nil {
				errs = append(errs, err)
			}
		}
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
