package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"github.com/spf13/cobra"
)

func init() { register(newLineageCommand) }

type lineageOptions struct {
	clientOptions
	Dataset bool
	JSON    bool
}

func newLineageCommand() *cobra.Command {
	var opts lineageOptions
	cmd := &cobra.Command{
		Use:   "lineage NAME@VERSION",
		Short: "Show what a model version came from, or (--dataset) what a dataset went into",
		Long: `Without --dataset: everything upstream of a model version, the training run
(parameters, metrics, code, image, environment) and the datasets it read.
With --dataset: every run that read the dataset version and every model
version those runs produced.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLineage(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.Dataset, "dataset", false, "NAME@VERSION is a dataset: show what it went into")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the lineage as JSON")
	return cmd
}

func runLineage(ctx context.Context, stdout io.Writer, opts lineageOptions, ref string) error {
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	if opts.Dataset {
		d, err := c.Downstream(ctx, name, version)
		if err != nil {
			return serverError(err)
		}
		if opts.JSON {
			return printJSON(stdout, d)
		}
		fmt.Fprintf(stdout, "dataset %s@%s %s\n", d.Dataset.Name, d.Dataset.Version, d.Dataset.Digest)
		for _, r := range d.Runs {
			fmt.Fprintf(stdout, "  run %s -> model %s@%s\n", r.ID, r.OutputModel, r.OutputVersion)
		}
		return nil
	}
	l, err := c.Upstream(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, l)
	}
	fmt.Fprintf(stdout, "model %s@%s %s\n", l.Version.Model, l.Version.Version, l.Version.Manifest.Digest)
	if l.Run == nil {
		fmt.Fprintln(stdout, "  (no training run recorded)")
		return nil
	}
	r := l.Run
	fmt.Fprintf(stdout, "  run %s\n", r.ID)
	if r.CodeRepo != "" || r.CodeCommit != "" {
		fmt.Fprintf(stdout, "    code %s @ %s\n", r.CodeRepo, r.CodeCommit)
	}
	if r.ImageDigest != "" {
		fmt.Fprintf(stdout, "    image %s\n", r.ImageDigest)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		fmt.Fprintf(stdout, "    param %s = %s\n", k, r.Params[k])
	}
	mk := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		mk = append(mk, k)
	}
	sort.Strings(mk)
	for _, k := range mk {
		fmt.Fprintf(stdout, "    metric %s = %g\n", k, r.Metrics[k])
	}
	if len(r.EnvLock) > 0 {
		fmt.Fprintf(stdout, "    environment lock recorded (%d bytes)\n", len(r.EnvLock))
	}
	for _, d := range l.Datasets {
		fmt.Fprintf(stdout, "    dataset %s@%s %s dvc:%s\n", d.Name, d.Version, d.Digest, d.DVCMD5)
	}
	return nil
}
