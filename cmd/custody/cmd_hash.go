package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/spf13/cobra"
)

func init() { register(newHashCommand) }

type hashOptions struct {
	manifestOptions
	JSON bool
}

func newHashCommand() *cobra.Command {
	var opts hashOptions
	cmd := &cobra.Command{
		Use:   "hash PATH",
		Short: "Compute a model's manifest and the digest to pin",
		Long: `Compute the manifest of a model (a single file or a directory): the SHA-256
of every file (or shard) in the OpenSSF Model Signing resource form, the OMS
root digest, and the digest to pin.

For a single file the digest is the file's plain SHA-256, what sha256sum
prints. For a directory it is the SHA-256 of a canonical manifest binding
every relative path to its content (see docs/manifest.md).

Prints "DIGEST  PATH", or the whole manifest with --json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHash(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.manifestOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the whole manifest as JSON")
	return cmd
}

func runHash(ctx context.Context, stdout io.Writer, opts hashOptions, path string) error {
	m, err := digest.Hash(ctx, path, opts.digestOptions())
	if err != nil {
		return checkError(err)
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	_, err = fmt.Fprintf(stdout, "%s  %s\n", m.Digest, path)
	return err
}
