package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newMonitorCommand) }

// newMonitorCommand groups the monitoring verbs that work on reference
// profiles (the scheduled monitors of the server will join them).
func newMonitorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Reference profiles, monitors and their reports",
	}
	cmd.AddCommand(newMonitorProfileCommand(), newMonitorRunCommand(), newMonitorReportCommand(), newMonitorEvaluateCommand())
	return cmd
}

type profileOptions struct {
	Input       string
	Columns     []string
	Categorical []string
	Out         string
	// Model outputs (optional): the baseline of a monitor's accuracy drop
	// and concentration tests.
	LabelColumn       string
	PredColumn        string
	ProbColumn        string
	PosLabel          string
	DecisionThreshold float64
	SegmentColumns    []string
	Bins              int
}

func (o *profileOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Input, "input", "", "reference data: .csv, .jsonl, .ndjson or .parquet (required)")
	f.StringArrayVar(&o.Columns, "column", nil, "profile this column (repeatable; default: every column)")
	f.StringArrayVar(&o.Categorical, "categorical", nil, "treat this column as categorical (repeatable)")
	f.StringVar(&o.Out, "out", "", "write the profile to this file (default: standard output)")
	f.StringVar(&o.LabelColumn, "label-column", "", "with --pred-column or --prob-column: also summarise the model's outputs (confusion and calibration)")
	f.StringVar(&o.PredColumn, "pred-column", "", "predicted class column")
	f.StringVar(&o.ProbColumn, "prob-column", "", "probability of the positive class column")
	f.StringVar(&o.PosLabel, "pos-label", "", "the positive class (default 1)")
	f.Float64Var(&o.DecisionThreshold, "decision-threshold", 0.5, "with --prob-column: predict positive when p >= this")
	f.StringArrayVar(&o.SegmentColumns, "segment-column", nil, "segment column of the output summaries (repeatable)")
	f.IntVar(&o.Bins, "bins", 10, "calibration buckets of the output summary")
}

func newMonitorProfileCommand() *cobra.Command {
	var opts profileOptions
	cmd := &cobra.Command{
		Use:   "profile --input REF [--column C]... [--out profile.json]",
		Short: "Summarise a reference file into a profile for later drift checks",
		Long: `Build a reference profile: per numerical column, counts over bins fixed from
the reference (Sturges edges, plus underflow and overflow bins), a quantile
sketch, mean and standard deviation; per categorical column, value counts;
missing values everywhere. 'custody drift --reference-profile' compares a
current file with it, the way streaming monitors do. See docs/monitoring.md.

Not to be confused with 'custody data profile', the reference of a data
contract's PSI expectation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProfile(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runProfile(ctx context.Context, stdout io.Writer, opts profileOptions) error {
	if opts.Input == "" {
		return usagef("--input is required")
	}
	outputs := opts.LabelColumn != ""
	if outputs && (opts.PredColumn == "") == (opts.ProbColumn == "") {
		return usagef("--label-column needs exactly one of --pred-column and --prob-column")
	}
	if !outputs && (opts.PredColumn != "" || opts.ProbColumn != "" || len(opts.SegmentColumns) > 0) {
		return usagef("--pred-column, --prob-column and --segment-column need --label-column")
	}
	if opts.Bins < 1 || opts.Bins > 10000 {
		return usagef("--bins must be between 1 and 10000")
	}
	read := opts.Columns
	if outputs && len(read) > 0 {
		read = append(slices.Clone(read), opts.LabelColumn, opts.PredColumn+opts.ProbColumn)
		read = append(read, opts.SegmentColumns...)
	}
	text := opts.Categorical
	if outputs {
		text = append(slices.Clone(text), opts.SegmentColumns...)
	}
	t, err := monitor.ReadTableAs(ctx, opts.Input, read, text)
	if err != nil {
		return err
	}
	cols := opts.Columns
	if outputs && len(cols) == 0 {
		// Every column but the outputs and segments is a feature.
		skip := append([]string{opts.LabelColumn, opts.PredColumn, opts.ProbColumn}, opts.SegmentColumns...)
		for _, c := range t.Columns {
			if !slices.Contains(skip, c.Name) {
				cols = append(cols, c.Name)
			}
		}
	}
	p, err := monitor.BuildProfile(t, cols, opts.Categorical)
	if err != nil {
		return err
	}
	if outputs {
		p.Outputs, err = monitor.BuildOutputProfile(t, monitor.PerformanceOptions{
			LabelColumn: opts.LabelColumn, PredColumn: opts.PredColumn, ProbColumn: opts.ProbColumn,
			PosLabel: opts.PosLabel, DecisionThreshold: opts.DecisionThreshold, GroupColumns: opts.SegmentColumns,
		}, opts.Bins)
		if err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return writeOutput(stdout, opts.Out, data, fmt.Sprintf("profiled %d columns of %d rows to %s", len(p.Columns), p.Rows, opts.Out))
}

// readProfile reads a profile written by 'custody monitor profile'.
func readProfile(path string) (*monitor.Profile, error) { return monitor.ReadProfile(path) }
