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
	sig        verifySigOptions
	Digest     string
	DigestFile string
}

func newVerifyCommand() *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify PATH (--digest sha256:HEX | --digest-file FILE | [--sig SIG]... (--key PUB... | --cert-chain ROOTS | --trusted-root JSON --identity ID --issuer URL))",
		Short: "Check a model against its pinned digest or its signatures",
		Long: `Recompute a model's digest and compare it with the expected one.

--digest takes the pinned digest ("sha256:<hex>"). --digest-file takes either
a file whose first word is the digest, or the manifest printed by
'custody hash --json': then the model is hashed the way the manifest records
(shard size, symlinks, ignored paths) and a mismatch lists the files that
changed, were added or are missing.

With --sig (default: model.sig inside a model directory, next to a single
file) it checks OpenSSF Model Signing signatures (custody, model_signing,
Sigstore keyless) or cosign blob signatures instead, trusting --key public
keys, --cert-chain CA certificates, or a Sigstore trusted root with an exact
--identity and --issuer. The model is hashed the way each signature records
and must equal the signed files exactly (--ignore-unsigned-files accepts
extra files). --threshold K requires K distinct trusted keys. See
docs/signing.md.

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
	opts.sig.AddFlags(cmd.Flags())
	return cmd
}

func runVerify(ctx context.Context, stdout io.Writer, opts verifyOptions, path string) error {
	if opts.sig.active() {
		if opts.Digest != "" || opts.DigestFile != "" {
			return usagef("--digest/--digest-file and signature flags are separate checks; run verify twice")
		}
		return runVerifySignature(ctx, stdout, opts.sig, opts.manifestOptions, path)
	}
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
