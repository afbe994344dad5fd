package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/custody-ml/custody/internal/attest"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/spf13/cobra"
)

func init() { register(newVerifyAttestationCommand) }

type verifyAttestationOptions struct {
	Keys  []string
	Model string
}

func newVerifyAttestationCommand() *cobra.Command {
	var opts verifyAttestationOptions
	cmd := &cobra.Command{
		Use:   "verify-attestation BUNDLE --key PUB --model PATH",
		Short: "Check a SLSA provenance attestation's signature and that its subject is the model at PATH",
		Long: `Check that BUNDLE (written by 'custody attest') is signed by one of the
--key public keys, holds an in-toto Statement v1 with a valid SLSA
provenance v1 predicate, and that its subject is the model at --model: the
model is hashed with the serialization the subject records and both its OMS
root (the subject digest) and its pinned digest must match.

Exit 0: verified. 1: not verified (signature, statement, or another model).
2: could not check (unreadable files, bad usage).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyAttestation(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	cmd.Flags().StringArrayVar(&opts.Keys, "key", nil, "trusted public key (PEM; repeatable; at least one)")
	cmd.Flags().StringVar(&opts.Model, "model", "", "the model file or directory (required)")
	return cmd
}

func runVerifyAttestation(ctx context.Context, stdout io.Writer, opts verifyAttestationOptions, bundlePath string) error {
	if len(opts.Keys) == 0 || opts.Model == "" {
		return usagef("--key and --model are required")
	}
	keys, err := loadPublicKeys(opts.Keys)
	if err != nil {
		return err
	}
	raw, err := readCapped(bundlePath, oms.MaxBundleSize)
	if err != nil {
		return err
	}
	p, signers, err := attest.Verify(raw, keys)
	if err != nil {
		return notHold(err)
	}
	name, _, _, ser, err := p.Subject()
	if err != nil {
		return notHold(err)
	}
	dopts, err := digest.OptionsFor(&digest.Manifest{Serialization: ser}, digest.Options{})
	if err != nil {
		return notHold(fmt.Errorf("%w: subject serialization: %v", attest.ErrNotVerified, err))
	}
	// A bundle kept inside the model directory is not part of the model.
	if rel, err := filepath.Rel(opts.Model, bundlePath); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
		dopts.Ignore = append(dopts.Ignore, filepath.ToSlash(rel))
	}
	m, err := digest.Hash(ctx, opts.Model, dopts)
	if err != nil {
		return err
	}
	if err := p.Check(m); err != nil {
		if errors.Is(err, attest.ErrNotVerified) {
			return notHold(err)
		}
		return err
	}
	inv := p.Provenance.GetRunDetails().GetMetadata().GetInvocationId()
	fmt.Fprintf(stdout, "OK  %s %s: SLSA provenance of run %q signed by key %s\n", name, m.OMSRoot, inv, strings.Join(signers, ", key "))
	return nil
}
