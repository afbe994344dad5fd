package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/monitor/report"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type monitorReportOptions struct {
	monitorConfigOptions
	clientOptions
	Window string
	JSON   bool
	HTML   string
}

func (o *monitorReportOptions) AddFlags(f *pflag.FlagSet) {
	o.monitorConfigOptions.AddFlags(f)
	o.clientOptions.AddFlags(f)
	f.StringVar(&o.Window, "window", "latest", "latest, a time inside the window (RFC 3339), or FROM..TO to merge the windows starting in [FROM, TO)")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	f.StringVar(&o.HTML, "html", "", "write the report as a self-contained HTML page to this file")
}

func newMonitorReportCommand() *cobra.Command {
	var opts monitorReportOptions
	cmd := &cobra.Command{
		Use:   "report [NAME] (--config F | --server URL) [--name NAME] [--window latest|TIME|FROM..TO] [--json] [--html FILE]",
		Short: "Report a monitor's window from its persisted summaries",
		Long: `Compute a monitor's report from the summaries persisted under its state
directory (by 'custody monitor run' or, later, by the server): calibration
with the reliability table, accuracy, concentration, fairness and drift
with histogram counts. Windows merge exactly, so FROM..TO reports several
windows as one. The cost depends on the number of bins, not of
predictions. Nothing is recorded: the breach streak and stored results are
left as they are. With --server (or $CUSTODY_SERVER and no --config), the
report comes from a running 'custody server --monitors' (a viewer token is
enough). See docs/monitoring.md.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.nameFromArgs(args); err != nil {
				return err
			}
			return runMonitorReport(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func parseWindowTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("--window: %q is not an RFC 3339 time (e.g. 2026-11-20T00:00:00Z)", s)
	}
	return t, nil
}

func runMonitorReport(ctx context.Context, stdout io.Writer, opts monitorReportOptions) error {
	if opts.Server != "" || (opts.Config == "" && os.Getenv("CUSTODY_SERVER") != "") {
		return runRemoteMonitorReport(ctx, stdout, opts)
	}
	m, ref, store, err := loadMonitor(opts.monitorConfigOptions)
	if err != nil {
		return err
	}
	e, err := watch.New(*m, ref, watch.Options{Store: store})
	if err != nil {
		return err
	}
	windows, err := e.Windows(ctx)
	if err != nil {
		return err
	}
	var from, to time.Time
	switch w := opts.Window; {
	case w == "latest" || w == "":
		if len(windows) == 0 {
			return fmt.Errorf("monitor %s: no summaries in the state directory yet", m.Name)
		}
		from = windows[len(windows)-1]
		to = from.Add(time.Duration(m.Window))
	case strings.Contains(w, ".."):
		if from, to, err = parseWindowRange(w); err != nil {
			return err
		}
	default:
		t, err := parseWindowTime(w)
		if err != nil {
			return err
		}
		from = e.WindowStart(t)
		to = from.Add(time.Duration(m.Window))
	}
	r, err := e.Report(ctx, from, to)
	if err != nil {
		return err
	}
	return writeMonitorReport(stdout, opts, r)
}

// writeMonitorReport writes r as the options say: the HTML file if asked,
// then JSON or text on stdout.
func writeMonitorReport(stdout io.Writer, opts monitorReportOptions, r *watch.Result) error {
	if opts.HTML != "" {
		if err := writeHTMLReport(opts.HTML, r); err != nil {
			return err
		}
	}
	if opts.JSON {
		return report.JSON(stdout, r)
	}
	printResult(stdout, r)
	if opts.HTML != "" {
		fmt.Fprintf(stdout, "wrote the HTML report to %s\n", opts.HTML)
	}
	return nil
}

// runRemoteMonitorReport fetches the report from the server.
func runRemoteMonitorReport(ctx context.Context, stdout io.Writer, opts monitorReportOptions) error {
	if opts.Name == "" {
		return usagef("name the monitor: custody monitor report NAME --server URL")
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	var from, to time.Time
	switch w := opts.Window; {
	case w == "latest" || w == "":
	case strings.Contains(w, ".."):
		if from, to, err = parseWindowRange(w); err != nil {
			return err
		}
	default:
		return usagef("--window with --server: latest or FROM..TO")
	}
	r, err := c.MonitorReport(ctx, opts.Name, from, to)
	if err != nil {
		return serverError(err)
	}
	return writeMonitorReport(stdout, opts, r)
}

// parseWindowRange parses --window FROM..TO.
func parseWindowRange(w string) (from, to time.Time, err error) {
	a, b, _ := strings.Cut(w, "..")
	if from, err = parseWindowTime(a); err != nil {
		return
	}
	if to, err = parseWindowTime(b); err != nil {
		return
	}
	if !to.After(from) {
		err = usagef("--window %s: TO must be after FROM", w)
	}
	return
}
