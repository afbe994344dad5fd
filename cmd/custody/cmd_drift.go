package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newDriftCommand) }

type driftOptions struct {
	Reference   string
	Profile     string
	Current     string
	Columns     []string
	Categorical []string
	Thresholds  []string
	DriftShare  float64
	FailOnDrift bool
	JSON        bool
}

func (o *driftOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Reference, "reference", "", "reference data: .csv, .jsonl or .ndjson (required)")
	f.StringVar(&o.Profile, "reference-profile", "", "compare with a profile from 'custody monitor profile' instead of --reference (fixed reference bins)")
	f.StringVar(&o.Current, "current", "", "current data, same format choices (required)")
	f.StringArrayVar(&o.Columns, "column", nil, "compare this column (repeatable; default: every column in both files)")
	f.StringArrayVar(&o.Categorical, "categorical", nil, "treat this column as categorical even if it holds numbers (repeatable)")
	f.StringArrayVar(&o.Thresholds, "threshold", nil, "[COLUMN:]STAT=LIMIT, e.g. psi=0.2 or age:ks_pvalue=0.01 (repeatable); exit 1 when one is breached")
	f.Float64Var(&o.DriftShare, "drift-share", monitor.DefaultDriftShare, "share of drifting columns from which the dataset drifts")
	f.BoolVar(&o.FailOnDrift, "fail-on-drift", false, "exit 1 when the dataset drifts")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON")
}

func newDriftCommand() *cobra.Command {
	var opts driftOptions
	cmd := &cobra.Command{
		Use:   "drift --reference REF --current CUR [--column C]... [--threshold [C:]STAT=LIMIT]... [--json]",
		Short: "Compare two data files column by column (PSI, Jensen-Shannon, Wasserstein, KS, chi-square)",
		Long: `Compare the distribution of each column of CUR with REF, with Evidently's
definitions and default binning and scipy's tests (see docs/monitoring.md):

With --reference-profile (from 'custody monitor profile') the current file is binned
over the profile's fixed reference bins, as a streaming monitor does: psi,
jensen_shannon, chi2 for categorical columns, missing shares and quantiles.

  numerical   psi, jensen_shannon, wasserstein_normed, ks_statistic, ks_pvalue
  categorical psi, jensen_shannon, chi2_statistic, chi2_pvalue

and the share of missing values. A column is numerical when every
non-missing value in both files is a number. Each column's drift verdict is
Evidently's default test, or, for columns that --threshold covers, whether a
threshold is breached; the dataset drifts when the share of drifting columns
reaches --drift-share.

Thresholds: distances and missing_share breach at value >= LIMIT, p-values
(ks_pvalue, chi2_pvalue) at value < LIMIT.

Exit status: 0 report printed, 1 a threshold is breached (or the dataset
drifts, with --fail-on-drift), 2 the files could not be compared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDrift(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runDrift(ctx context.Context, stdout io.Writer, opts driftOptions) error {
	if (opts.Reference == "") == (opts.Profile == "") || opts.Current == "" {
		return usagef("--current and one of --reference and --reference-profile are required")
	}
	if !(opts.DriftShare > 0 && opts.DriftShare <= 1) {
		return usagef("--drift-share must be in (0, 1]")
	}
	var th monitor.Thresholds
	for _, s := range opts.Thresholds {
		t, err := monitor.ParseThreshold(s)
		if err != nil {
			return usagef("%v", err)
		}
		th = append(th, t)
	}
	if opts.Profile != "" {
		return runProfileDrift(ctx, stdout, opts, th)
	}
	// Read both files at once.
	var ref, cur *monitor.Table
	var refErr, curErr error
	var wg sync.WaitGroup
	wg.Go(func() { ref, refErr = monitor.ReadTableAs(ctx, opts.Reference, opts.Columns, opts.Categorical) })
	cur, curErr = monitor.ReadTableAs(ctx, opts.Current, opts.Columns, opts.Categorical)
	wg.Wait()
	if refErr != nil {
		return refErr
	}
	if curErr != nil {
		return curErr
	}
	rep, err := monitor.CompareTables(ref, cur, monitor.DriftOptions{
		Columns: opts.Columns, Categorical: opts.Categorical, Thresholds: th, DriftShare: opts.DriftShare,
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
	} else if err := printDrift(stdout, rep); err != nil {
		return err
	}
	if rep.Breached {
		var cols []string
		for _, c := range rep.Columns {
			if len(c.Breaches) > 0 {
				cols = append(cols, c.Column)
			}
		}
		return notHold(fmt.Errorf("drift thresholds breached in %d column(s): %s", len(cols), strings.Join(cols, ", ")))
	}
	if opts.FailOnDrift && rep.DatasetDrift {
		return notHold(fmt.Errorf("dataset drift: %d of %d columns drifted", rep.DriftedColumns, len(rep.Columns)))
	}
	return nil
}

func fmtStat(p *monitor.Float) string {
	if p == nil {
		return "-"
	}
	return fmtFloat(float64(*p))
}

func fmtFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "+Inf"
	case v != 0 && math.Abs(v) < 1e-4:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.4f", v)
}

func printDrift(w io.Writer, rep *monitor.DriftReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COLUMN\tTYPE\tPSI\tJS\tWASS_NORMED\tKS_STAT\tKS_P\tCHI2\tCHI2_P\tMISSING(REF/CUR)\tTEST\tDRIFT")
	for _, c := range rep.Columns {
		drift := "no"
		if c.Drifted {
			drift = "YES"
		}
		for _, b := range c.Breaches {
			drift += fmt.Sprintf(" %s=%s", b.Stat, fmtFloat(float64(b.Value)))
		}
		psi, js := c.PSI, c.JensenShannon
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\t%s=%s\t%s\n",
			c.Column, c.Kind, fmtStat(&psi), fmtStat(&js), fmtStat(c.WassersteinNormed),
			fmtStat(c.KSStatistic), fmtStat(c.KSPValue), fmtStat(c.Chi2Statistic), fmtStat(c.Chi2PValue),
			fmtFloat(float64(c.ReferenceMissingShare)), fmtFloat(float64(c.CurrentMissingShare)),
			c.StatTest, fmtFloat(float64(c.DriftScore)), drift)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.OnlyInReference) > 0 {
		fmt.Fprintf(w, "not compared, only in the reference: %s\n", strings.Join(rep.OnlyInReference, ", "))
	}
	if len(rep.OnlyInCurrent) > 0 {
		fmt.Fprintf(w, "not compared, only in the current file: %s\n", strings.Join(rep.OnlyInCurrent, ", "))
	}
	verdict := "no"
	if rep.DatasetDrift {
		verdict = "YES"
	}
	_, err := fmt.Fprintf(w, "dataset drift: %s (%d of %d columns, share %s, threshold %s)\n",
		verdict, rep.DriftedColumns, len(rep.Columns), fmtFloat(float64(rep.DriftShare)), fmtFloat(rep.DriftShareMax))
	return err
}

// runProfileDrift compares the current file with a reference profile.
func runProfileDrift(ctx context.Context, stdout io.Writer, opts driftOptions, th monitor.Thresholds) error {
	p, err := readProfile(opts.Profile)
	if err != nil {
		return err
	}
	var text []string
	for _, c := range p.Columns {
		if c.Kind == monitor.Categorical {
			text = append(text, c.Column)
		}
	}
	var names []string
	for _, c := range p.Columns {
		if len(opts.Columns) == 0 || slices.Contains(opts.Columns, c.Column) {
			names = append(names, c.Column)
		}
	}
	cur, err := monitor.ReadTableAs(ctx, opts.Current, names, text)
	if err != nil {
		return err
	}
	ds, err := monitor.CompareProfile(p, cur)
	if err != nil {
		return err
	}
	type row struct {
		monitor.ProfileDrift
		Breaches []monitor.Breach `json:"breaches,omitempty"`
	}
	var rows []row
	var breached []string
	for _, d := range ds {
		b := d.Breaches(th)
		if len(b) > 0 {
			breached = append(breached, d.Column)
		}
		rows = append(rows, row{d, b})
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"reference_profile": opts.Profile, "current": opts.Current, "columns": rows}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COLUMN\tTYPE\tPSI\tJS\tCHI2_P\tMISSING(REF/CUR)\tBREACHES")
		for _, r := range rows {
			var bs []string
			for _, b := range r.Breaches {
				bs = append(bs, b.Stat+"="+fmtFloat(float64(b.Value)))
			}
			psi, js := r.PSI, r.JensenShannon
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s/%s\t%s\n", r.Column, r.Kind, fmtStat(&psi), fmtStat(&js), fmtStat(r.Chi2PValue),
				fmtFloat(float64(r.ReferenceMissingShare)), fmtFloat(float64(r.CurrentMissingShare)), strings.Join(bs, " "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(breached) > 0 {
		return notHold(fmt.Errorf("drift thresholds breached in %d column(s): %s", len(breached), strings.Join(breached, ", ")))
	}
	return nil
}
