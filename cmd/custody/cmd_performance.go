package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newPerformanceCommand) }

type performanceOptions struct {
	Input        string
	Reference    string
	Label        string
	Pred         string
	Prob         string
	Decision     float64
	PosLabel     string
	Segment      string
	Groups       []string
	Alpha        float64
	FailOnDrop   bool
	FailOnUnfair bool
	JSON         bool
}

func (o *performanceOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Input, "input", "", "current window: predictions with labels (.csv, .jsonl, .ndjson; required)")
	f.StringVar(&o.Reference, "reference", "", "reference window, same columns: adds the concentration tests")
	f.StringVar(&o.Label, "label-column", "", "column of observed labels (required)")
	f.StringVar(&o.Pred, "pred-column", "", "column of predicted classes")
	f.StringVar(&o.Prob, "prob-column", "", "column of probabilities of the positive class (binary; instead of --pred-column)")
	f.Float64Var(&o.Decision, "decision-threshold", 0.5, "with --prob-column: predict positive when p >= this")
	f.StringVar(&o.PosLabel, "pos-label", "", `the positive class for fairness and --prob-column (default "1")`)
	f.StringVar(&o.Segment, "segment-column", "", "also test concentration across the values of this column")
	f.StringArrayVar(&o.Groups, "group-column", nil, "protected attribute for fairness metrics (repeatable)")
	f.Float64Var(&o.Alpha, "alpha", 0.05, "significance level of the concentration tests")
	f.BoolVar(&o.FailOnDrop, "fail-on-drop", false, "exit 1 when accuracy dropped significantly (uniform or concentrated)")
	f.BoolVar(&o.FailOnUnfair, "fail-on-unfair", false, "exit 1 when a protected attribute fails the four-fifths rule")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
}

func newPerformanceCommand() *cobra.Command {
	var opts performanceOptions
	cmd := &cobra.Command{
		Use:   "performance --input F --label-column Y (--pred-column P | --prob-column P) [--reference REF] [--segment-column S] [--group-column G]... [--json]",
		Short: "Accuracy, per-class precision/recall, where a drop is concentrated, and fairness",
		Long: `Report accuracy and per-class precision and recall (scikit-learn's
definitions) of the predictions in --input.

With --reference, compare the two windows: per class (and per segment with
--segment-column) a two-proportion z-test of accuracy with Holm's correction,
and Cochran's Q test of heterogeneity of the per-stratum changes. The verdict
is "concentrated" (Q significant and some strata dropped significantly),
"uniform" (a significant drop that is not concentrated) or "none".

With --group-column, fairness of the binary prediction per protected
attribute, as fairlearn defines it: demographic parity difference and ratio,
equalized odds difference, and the four-fifths rule. See docs/monitoring.md.

Exit status: 0 report printed, 1 a --fail-on-... condition holds, 2 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPerformance(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runPerformance(ctx context.Context, stdout io.Writer, opts performanceOptions) error {
	if opts.Input == "" || opts.Label == "" {
		return usagef("--input and --label-column are required")
	}
	if (opts.Pred == "") == (opts.Prob == "") {
		return usagef("give exactly one of --pred-column and --prob-column")
	}
	if !(opts.Alpha > 0 && opts.Alpha < 1) {
		return usagef("--alpha must be in (0, 1)")
	}
	if !(opts.Decision > 0 && opts.Decision <= 1) {
		return usagef("--decision-threshold must be in (0, 1]")
	}
	po := monitor.PerformanceOptions{
		LabelColumn: opts.Label, PredColumn: opts.Pred, ProbColumn: opts.Prob, DecisionThreshold: opts.Decision,
		PosLabel: opts.PosLabel, SegmentColumn: opts.Segment, GroupColumns: opts.Groups, Alpha: opts.Alpha,
	}
	cur, err := monitor.ReadTable(ctx, opts.Input, po.PerformanceColumns())
	if err != nil {
		return err
	}
	var ref *monitor.Table
	if opts.Reference != "" {
		if ref, err = monitor.ReadTable(ctx, opts.Reference, po.PerformanceColumns()); err != nil {
			return err
		}
	}
	rep, err := monitor.EvaluateTables(cur, ref, po)
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
		printPerformance(stdout, rep)
	}
	if opts.FailOnDrop {
		for _, c := range []*monitor.Concentration{rep.ByClass, rep.BySegment} {
			if c != nil && c.Verdict != monitor.VerdictNone {
				return notHold(fmt.Errorf("accuracy dropped (%s by %s)", c.Verdict, c.By))
			}
		}
	}
	if opts.FailOnUnfair {
		for _, f := range rep.Fairness {
			if !f.FourFifthsRule {
				return notHold(fmt.Errorf("%s fails the four-fifths rule (demographic parity ratio %s)", f.Attribute, fmtFloat(float64(f.DemographicParityRatio))))
			}
		}
	}
	return nil
}

func printPerformance(w io.Writer, rep *monitor.PerformanceReport) {
	fmt.Fprintf(w, "accuracy %s over %d rows", fmtFloat(float64(rep.Current.Accuracy)), rep.Current.Rows)
	if rep.ReferencePerf != nil {
		fmt.Fprintf(w, " (reference %s over %d rows)", fmtFloat(float64(rep.ReferencePerf.Accuracy)), rep.ReferencePerf.Rows)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tSUPPORT\tPRECISION\tRECALL")
	for _, c := range rep.Current.Classes {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", c.Class, c.Support, fmtFloat(float64(c.Precision)), fmtFloat(float64(c.Recall)))
	}
	tw.Flush()
	for _, c := range []*monitor.Concentration{rep.ByClass, rep.BySegment} {
		if c == nil {
			continue
		}
		fmt.Fprintf(w, "change by %s: %s", c.By, c.Verdict)
		if len(c.ConcentratedIn) > 0 {
			fmt.Fprintf(w, " in %s", strings.Join(c.ConcentratedIn, ", "))
		}
		fmt.Fprintf(w, " (heterogeneity Q %s, df %d, p %s)\n", fmtFloat(float64(c.Q)), c.QDF, fmtFloat(float64(c.QPValue)))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STRATUM\tREF_ACC\tCUR_ACC\tCHANGE\tZ\tP\tP_HOLM\tDROP")
		for _, s := range c.Strata {
			drop := "no"
			if s.SignificantDrop {
				drop = "YES"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Stratum, fmtFloat(float64(s.RefAccuracy)), fmtFloat(float64(s.CurAccuracy)),
				fmtFloat(float64(s.Change)), fmtFloat(float64(s.Z)), fmtFloat(float64(s.PValue)), fmtFloat(float64(s.PValueHolm)), drop)
		}
		tw.Flush()
	}
	for _, f := range rep.Fairness {
		rule := "passed"
		if !f.FourFifthsRule {
			rule = "FAILED"
		}
		fmt.Fprintf(w, "fairness by %s: demographic parity difference %s, ratio %s, equalized odds difference %s, four-fifths rule %s\n",
			f.Attribute, fmtFloat(float64(f.DemographicParityDifference)), fmtFloat(float64(f.DemographicParityRatio)),
			fmtFloat(float64(f.EqualizedOddsDifference)), rule)
	}
}
