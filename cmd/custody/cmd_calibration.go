package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newCalibrationCommand) }

type calibrationOptions struct {
	Input    string
	Prob     string
	Label    string
	Segment  string
	PosLabel string
	Bins     int
	Strategy string
	MaxECE   float64
	JSON     bool
}

func (o *calibrationOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Input, "input", "", "predictions with outcomes: .csv, .jsonl or .ndjson (required)")
	f.StringVar(&o.Prob, "prob-column", "", "column of predicted probabilities of the positive class (required)")
	f.StringVar(&o.Label, "label-column", "", "column of observed labels (required)")
	f.StringVar(&o.Segment, "segment-column", "", "also report each value of this column separately")
	f.StringVar(&o.PosLabel, "pos-label", "", "the positive label (default: 1, labels must be 0/1 or -1/1)")
	f.IntVar(&o.Bins, "bins", 10, "number of bins")
	f.StringVar(&o.Strategy, "strategy", monitor.StrategyUniform, "bin edges: uniform (equal width) or quantile (equal mass)")
	f.Float64Var(&o.MaxECE, "max-ece", 0, "exit 1 when the ECE (overall or of any segment) reaches this value")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
}

func newCalibrationCommand() *cobra.Command {
	var opts calibrationOptions
	cmd := &cobra.Command{
		Use:   "calibration --input F --prob-column P --label-column Y [--bins N] [--strategy uniform|quantile] [--segment-column S] [--json]",
		Short: "Calibration of binary predictions: ECE, MCE, Brier score and the reliability table",
		Long: `Bin the predicted probabilities like scikit-learn's calibration_curve
(uniform: linspace(0, 1, N+1); quantile: numpy percentiles of the scores; a
score equal to an inner edge falls in the lower bin) and report per bin the
count, mean predicted probability and fraction of positives, with

  ece    sum over bins of count/N * |fraction positive - mean predicted|
  mce    the largest of those gaps
  brier  mean squared difference between probability and outcome

ECE is given for both equal-width and equal-mass bins. Rows with a missing
probability or label are skipped. See docs/monitoring.md.

Exit status: 0 report printed, 1 ECE reached --max-ece, 2 could not compute.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCalibration(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runCalibration(ctx context.Context, stdout io.Writer, opts calibrationOptions) error {
	if opts.Input == "" || opts.Prob == "" || opts.Label == "" {
		return usagef("--input, --prob-column and --label-column are required")
	}
	if opts.Bins < 1 || opts.Bins > 100000 {
		return usagef("--bins must be between 1 and 100000")
	}
	if opts.Strategy != monitor.StrategyUniform && opts.Strategy != monitor.StrategyQuantile {
		return usagef("--strategy must be uniform or quantile")
	}
	if opts.MaxECE < 0 {
		return usagef("--max-ece must not be negative")
	}
	rep, err := monitor.CalibrateFile(ctx, opts.Input, monitor.CalibrationOptions{
		ProbColumn: opts.Prob, LabelColumn: opts.Label, SegmentColumn: opts.Segment,
		PosLabel: opts.PosLabel, Bins: opts.Bins, Strategy: opts.Strategy,
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printCalibration(stdout, "overall", rep.Overall)
		for _, s := range rep.Segments {
			printCalibration(stdout, opts.Segment+"="+s.Segment, s.Calibration)
		}
	}
	if opts.MaxECE > 0 {
		if float64(rep.Overall.ECE) >= opts.MaxECE {
			return notHold(fmt.Errorf("ECE %s reaches --max-ece %s", fmtFloat(float64(rep.Overall.ECE)), fmtFloat(opts.MaxECE)))
		}
		for _, s := range rep.Segments {
			if float64(s.ECE) >= opts.MaxECE {
				return notHold(fmt.Errorf("segment %s: ECE %s reaches --max-ece %s", s.Segment, fmtFloat(float64(s.ECE)), fmtFloat(opts.MaxECE)))
			}
		}
	}
	return nil
}

func printCalibration(w io.Writer, name string, c monitor.Calibration) {
	fmt.Fprintf(w, "%s: rows %d  ece %s  mce %s  brier %s  (ece equal-width %s, equal-mass %s; %d %s bins)\n",
		name, c.Rows, fmtFloat(float64(c.ECE)), fmtFloat(float64(c.MCE)), fmtFloat(float64(c.Brier)),
		fmtFloat(float64(c.ECEEqualWidth)), fmtFloat(float64(c.ECEEqualMass)), c.Bins, c.Strategy)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  BIN\tLOWER\tUPPER\tCOUNT\tMEAN_PRED\tFRAC_POS\tGAP")
	for _, b := range c.Table {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\t%s\n", b.Bin, fmtFloat(float64(b.Lower)), fmtFloat(float64(b.Upper)),
			b.Count, fmtStat(b.MeanPredicted), fmtStat(b.FractionPositive), fmtStat(b.Gap))
	}
	tw.Flush()
}
