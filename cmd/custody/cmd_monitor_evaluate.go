package main

import (
	"context"
	"fmt"
	"io"

	"github.com/custody-ml/custody/internal/monitor/report"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/spf13/cobra"
)

type monitorEvaluateOptions struct {
	clientOptions
	JSON bool
}

func newMonitorEvaluateCommand() *cobra.Command {
	var opts monitorEvaluateOptions
	cmd := &cobra.Command{
		Use:   "evaluate NAME --server URL",
		Short: "Have the server evaluate a monitor's due windows now",
		Long: `Ask a running 'custody server --monitors' to evaluate the monitor's due
windows now, as its schedule does every --monitor-interval: each result is
stored and logged (monitor.result), breaches alert, and N breaching windows
in a row roll the alias back. Needs a token with the alias permission
(approver or admin). Prints one line per evaluated window; exit 1 when one
breached. See docs/monitoring.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMonitorEvaluate(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the results as JSON")
	return cmd
}

func runMonitorEvaluate(ctx context.Context, stdout io.Writer, opts monitorEvaluateOptions, name string) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	rs, err := c.EvaluateMonitor(ctx, name)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		if err := report.JSON(stdout, rs); err != nil {
			return err
		}
	} else {
		for _, r := range rs {
			printResult(stdout, r)
		}
	}
	n := 0
	for _, r := range rs {
		if r.Status == watch.StatusBreached {
			n++
		}
	}
	if n > 0 {
		return notHold(fmt.Errorf("monitor %s: thresholds breached in %d of %d windows", name, n, len(rs)))
	}
	return nil
}
