package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/report"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// monitorConfigOptions are the flags shared by 'monitor run' and
// 'monitor report'.
type monitorConfigOptions struct {
	Config   string
	Name     string
	StateDir string
}

func (o *monitorConfigOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Config, "config", "", "monitor configuration, YAML or JSON (required)")
	f.StringVar(&o.Name, "name", "", "the monitor to use (required unless the configuration has only one)")
	f.StringVar(&o.StateDir, "state-dir", "", "directory of the persisted summaries and results (default: the configuration's state_dir, else .custody-monitor next to it)")
}

// nameFromArgs takes the monitor's name from the optional argument
// ('custody monitor run NAME'), as --name does.
func (o *monitorConfigOptions) nameFromArgs(args []string) error {
	if len(args) == 0 {
		return nil
	}
	if o.Name != "" && o.Name != args[0] {
		return usagef("monitor named twice: %q and --name %q", args[0], o.Name)
	}
	o.Name = args[0]
	return nil
}

// loadMonitor reads the configuration, the monitor's reference profile
// (relative to the configuration file) and opens the file-backed store.
func loadMonitor(o monitorConfigOptions) (*watch.Monitor, *monitor.Profile, *watch.FileStore, error) {
	if o.Config == "" {
		return nil, nil, nil, usagef("--config is required")
	}
	f, err := os.Open(o.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	cfg, err := watch.ParseConfig(f, o.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	var m *watch.Monitor
	if o.Name == "" && len(cfg.Monitors) == 1 {
		m = &cfg.Monitors[0]
	} else if m, err = cfg.Find(o.Name); err != nil {
		return nil, nil, nil, usagef("%v", err)
	}
	base := filepath.Dir(o.Config)
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	ref, err := readProfile(rel(m.Reference))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("monitor %s: reference: %w", m.Name, err)
	}
	dir := o.StateDir
	if dir == "" {
		dir = cfg.StateDir
		if dir == "" {
			dir = ".custody-monitor"
		}
		dir = rel(dir)
	}
	store, err := watch.NewFileStore(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, ref, store, nil
}

type monitorRunOptions struct {
	monitorConfigOptions
	Input    string
	Labels   string
	JSON     bool
	HTML     string
	NoAlerts bool
}

func (o *monitorRunOptions) AddFlags(f *pflag.FlagSet) {
	o.monitorConfigOptions.AddFlags(f)
	f.StringVar(&o.Input, "input", "", "logged predictions: .jsonl (wire records), .csv or .parquet (required)")
	f.StringVar(&o.Labels, "labels", "", "labels joined by request_id: .jsonl, .csv or .parquet")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.StringVar(&o.HTML, "html", "", "write the HTML report of the last evaluated window to this file")
	f.BoolVar(&o.NoAlerts, "no-alerts", false, "do not send the configured webhooks")
}

func newMonitorRunCommand() *cobra.Command {
	var opts monitorRunOptions
	cmd := &cobra.Command{
		Use:   "run [NAME] --config F [--name NAME] --input predictions.(jsonl|csv|parquet) [--labels L]",
		Short: "Feed logged predictions through a monitor offline and evaluate its windows",
		Long: `Fold a file of logged predictions (and labels) into the monitor's
per-window summaries under the state directory, exactly as the server does
at ingest, then evaluate every window with data, oldest first: calibration
(ECE, MCE, Brier), accuracy drop, the concentration test, fairness and
drift, with the configured thresholds and the breach streak. Offline, a
rollback cannot move the alias: it is reported as rollback_failed.
Webhooks are sent unless --no-alerts.

Each run adds its input to the state directory: use a fresh --state-dir to
evaluate a file on its own. Exit status 1 when a window breaches a
threshold. See docs/monitoring.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.nameFromArgs(args); err != nil {
				return err
			}
			return runMonitorRun(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

// errOffline is what an offline run's rollback reports.
var errOffline = errors.New("offline run: the alias was not rolled back (monitors inside custody server roll back)")

func runMonitorRun(ctx context.Context, stdout io.Writer, opts monitorRunOptions) error {
	if opts.Input == "" {
		return usagef("--input is required")
	}
	m, ref, store, err := loadMonitor(opts.monitorConfigOptions)
	if err != nil {
		return err
	}
	o := watch.Options{Store: store, Rollbacker: watch.RollbackFunc(func(context.Context, string, string, string) error { return errOffline })}
	if !opts.NoAlerts && len(m.Alerts) > 0 {
		a, err := watch.NewWebhookAlerter(m.Alerts, os.Getenv, &http.Client{Timeout: 30 * time.Second})
		if err != nil {
			return err
		}
		o.Alerter = a
	}
	e, err := watch.New(*m, ref, o)
	if err != nil {
		return err
	}
	// Summaries are counts, so the order of observations does not matter:
	// a label in the input counts at once; a labels file is joined after.
	var labelled []watch.Label
	pending := map[string]watch.Prediction{}
	var preds, skipped, nlabels int64
	err = watch.ReadPredictions(ctx, opts.Input, m, func(p watch.Prediction, label *string) error {
		ok, err := e.ObservePrediction(ctx, p)
		if err != nil {
			return err
		}
		if !ok {
			skipped++
			return nil
		}
		preds++
		if label != nil {
			nlabels++
			_, err := e.ObserveLabel(ctx, watch.Label{Prediction: p, Label: *label})
			return err
		} else if opts.Labels != "" && p.RequestID != "" {
			p.Features = nil
			pending[p.RequestID] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := e.Flush(ctx); err != nil {
		return err
	}
	if opts.Labels != "" {
		err := watch.ReadLabels(ctx, opts.Labels, func(id, label string) error {
			if p, ok := pending[id]; ok {
				labelled = append(labelled, watch.Label{Prediction: p, Label: label})
				delete(pending, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, l := range labelled {
		if _, err := e.ObserveLabel(ctx, l); err != nil {
			return err
		}
	}
	nlabels += int64(len(labelled))
	if err := e.Flush(ctx); err != nil {
		return err
	}
	windows, err := e.Windows(ctx)
	if err != nil {
		return err
	}
	var results []*watch.Result
	for _, w := range windows {
		r, err := e.Evaluate(ctx, w)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if opts.JSON {
		if err := report.JSON(stdout, results); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "monitor %s: %d predictions (%d for other models or too old), %d labelled, %d windows\n",
			m.Name, preds, skipped, nlabels, len(results))
		for _, r := range results {
			printResult(stdout, r)
		}
	}
	if opts.HTML != "" && len(results) > 0 {
		if err := writeHTMLReport(opts.HTML, results[len(results)-1]); err != nil {
			return err
		}
	}
	var breached []string
	for _, r := range results {
		if r.Status == watch.StatusBreached {
			breached = append(breached, r.WindowStart.Format(time.RFC3339))
		}
	}
	if len(breached) > 0 {
		return notHold(fmt.Errorf("monitor %s: thresholds breached in %d windows (%s)", m.Name, len(breached), strings.Join(breached, ", ")))
	}
	return nil
}

func writeHTMLReport(path string, r *watch.Result) error {
	var b strings.Builder
	if err := report.HTML(&b, r); err != nil {
		return err
	}
	return writeOutput(io.Discard, path, []byte(b.String()), "")
}

// printResult prints one window's result in a few lines.
func printResult(w io.Writer, r *watch.Result) {
	span := r.WindowStart.Format(time.RFC3339) + " .. " + r.WindowEnd.Format(time.RFC3339)
	ece := "n/a"
	if r.Calibration != nil && r.Calibration.Rows > 0 {
		ece = fmt.Sprintf("%.6g", float64(r.Calibration.ECE))
	}
	fmt.Fprintf(w, "%s  %-17s predictions %d  labelled %d  ece %s  consecutive %d\n", span, r.Status, r.Predictions, r.Labelled, ece, r.Consecutive)
	for _, mr := range r.Metrics {
		if !mr.Breached {
			continue
		}
		what := mr.Metric
		if mr.Feature != "" {
			what += " " + mr.Feature
		}
		if mr.Segment != "" {
			what += " [" + mr.Segment + "]"
		}
		fmt.Fprintf(w, "  breach: %s = %s (threshold %s %s)", what, fmtFloat(float64(mr.Value)), mr.Direction, fmtFloat(mr.Threshold))
		if mr.Detail != "" {
			fmt.Fprintf(w, " %s", mr.Detail)
		}
		fmt.Fprintln(w)
	}
	if a := r.Action; a != nil {
		fmt.Fprintf(w, "  %s: %s", a.Kind, a.Reason)
		if a.Error != "" {
			fmt.Fprintf(w, " (%s)", a.Error)
		}
		fmt.Fprintln(w)
	}
}
