package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/spf13/cobra"
)

func init() { register(newVerifyCommand) }

type verifyOptions struct {
	manifestOptions
	Digest     string
	DigestFile string
}

func newVerifyCommand() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify PATH (--digest sha256:HEX | --digest-file FILE)",
		Short: "Check a model against its pinned digest",
		Long: `Recompute a model's digest and compare it with the expected one.

--digest takes the pinned digest ("sha256:<hex>"). --digest-file takes either
a file whose first word is the digest, or the manifest printed by
'custody hash --json': then the model is hashed the way the manifest records
(shard size, symlinks, ignored paths) and a mismatch lists the files that
changed, were added or are missing.

Exit status: 0 the model matches, 1 it does not (or it contains something
custody refuses to hash), 2 it could not be checked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.manifestOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Digest, "digest", "", "the expected digest, sha256:<hex>")
	cmd.Flags().StringVar(&opts.DigestFile, "digest-file", "", "read the expected digest (or manifest) from this file")
	return cmd
}

func runVerify(ctx context.Context, stdout io.Writer, opts verifyOptions, path string) error {
	exp, err := expectedFromFlags(opts.Digest, opts.DigestFile)
	if err != nil {
		return err
	}
	m, err := digest.Verify(ctx, path, exp, opts.digestOptions())
	var mm *digest.MismatchError
	if errors.As(err, &mm) {
		fmt.Fprint(stdout, mm.Diff.String())
	}
	if err != nil {
		return checkError(fmt.Errorf("%s: %w", path, err))
	}
	_, err = fmt.Fprintf(stdout, "OK  %s  %s\n", m.Digest, path)
	return err
}
