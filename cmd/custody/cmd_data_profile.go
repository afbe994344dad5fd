package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/custody-ml/custody/internal/contract"
	"github.com/spf13/cobra"
)

type dataProfileOptions struct {
	Column       string
	Bins         int
	Categorical  bool
	Format       string
	Contract     string
	Out          string
	MaxLineBytes sizeFlag
}

func newDataProfileCommand() *cobra.Command {
	var opts dataProfileOptions
	cmd := &cobra.Command{
		Use:   "profile --column NAME DATA",
		Short: "Write a column's reference distribution for the PSI expectation",
		Long: `Compute the reference profile of one column, the JSON that
expect_column_psi_to_be_less_than reads from "reference_path" (docs/data.md):
numeric: quantile bin edges and the exact fraction of values per bin (two
passes over DATA); --categorical: the fraction of each distinct value.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDataProfile(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Column, "column", "", "column to profile (required)")
	f.IntVar(&opts.Bins, "bins", 10, "number of numeric bins (quantile edges)")
	f.BoolVar(&opts.Categorical, "categorical", false, "profile distinct values instead of numeric bins")
	f.StringVar(&opts.Format, "format", "", "input format: csv, jsonl or parquet (default from the extension)")
	f.StringVar(&opts.Contract, "contract", "", "read CSV options (delimiter, null values) from this contract")
	f.StringVar(&opts.Out, "out", "", "also write the profile to this file")
	f.Var(&opts.MaxLineBytes, "max-line-bytes", "longest line accepted (default 1MiB)")
	return cmd
}

func runDataProfile(ctx context.Context, stdout io.Writer, opts dataProfileOptions, path string) error {
	if opts.Column == "" {
		return usagef("data profile: --column is required")
	}
	if opts.MaxLineBytes > maxLineCap {
		return usagef("data profile: --max-line-bytes must be at most 1GiB")
	}
	if opts.Bins < 1 || opts.Bins > 1000 {
		return usagef("data profile: --bins must be in 1..1000")
	}
	var con *contract.Contract
	if opts.Contract != "" {
		b, _, err := readSpecFile(opts.Contract)
		if err != nil {
			return err
		}
		if con, err = contract.ParseContract(bytesReader(b), opts.Contract); err != nil {
			return err
		}
	}
	format, err := inputFormat(path, dataCheckOptions{Format: opts.Format}, con)
	if err != nil {
		return err
	}
	var co contract.CSVOptions
	if con != nil {
		co = con.CSV
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func() (contract.Source, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		src, _, err := openSource(f, fi.Size(), path, format, co, int(opts.MaxLineBytes))
		return src, err
	}
	p, err := contract.BuildProfile(ctx, open, contract.ProfileOptions{Column: opts.Column, Bins: opts.Bins, Categorical: opts.Categorical})
	if err != nil {
		return fmt.Errorf("failed to profile %s: %w", path, err)
	}
	return writeJSON(stdout, opts.Out, p)
}
