package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/spf13/cobra"
)

func init() { register(newSignCommand) }

type signOptions struct {
	manifestOptions
	Key   string
	Cert  string
	Chain []string
	Sig   string
}

func (o *signOptions) AddFlags(cmd *cobra.Command) {
	o.manifestOptions.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.Key, "key", "", "private key (PKCS#8 PEM, encrypted PKCS#8 with CUSTODY_PASSWORD, or a cosign key with COSIGN_PASSWORD)")
	f.StringVar(&o.Cert, "cert", "", "signing certificate (PEM) for the key: writes a certificate bundle")
	f.StringArrayVar(&o.Chain, "chain", nil, "intermediate CA certificates (PEM) to include after --cert (repeatable)")
	f.StringVar(&o.Sig, "sig", "", "where to write the signature (default: model.sig inside a model directory, next to a single file)")
}

func newSignCommand() *cobra.Command {
	var opts signOptions
	cmd := &cobra.Command{
		Use:   "sign PATH --key KEY [--cert LEAF [--chain CHAIN]...] [--sig OUT]",
		Short: "Sign a model: an OpenSSF Model Signing (OMS) v1.0 Sigstore bundle",
		Long: `Hash a model and sign its manifest as an OpenSSF Model Signing v1.0
signature: an in-toto statement (predicate https://model_signing/signature/v1.0)
in a DSSE envelope in a Sigstore bundle v0.3. model_signing, cosign
(verify-blob-attestation) and 'custody verify --sig' verify it.

Without --cert the bundle names the key by its hint (key method); with --cert
it carries the certificate and the --chain certificates (certificate method).
The signature file is left out of the manifest, and the ignored paths are
recorded in the signature so verification reproduces the same manifest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSign(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

// defaultSigPath is model.sig inside a directory model or next to a file.
func defaultSigPath(model string) string {
	if fi, err := os.Stat(model); err == nil && fi.IsDir() {
		return filepath.Join(model, "model.sig")
	}
	return filepath.Join(filepath.Dir(model), "model.sig")
}

func runSign(ctx context.Context, stdout io.Writer, opts signOptions, path string) error {
	if opts.Key == "" {
		return usagef("--key is required")
	}
	if len(opts.Chain) > 0 && opts.Cert == "" {
		return usagef("--chain needs --cert")
	}
	key, err := loadPrivateKey(opts.Key)
	if err != nil {
		return err
	}
	var chain []*x509.Certificate
	for _, p := range append([]string{opts.Cert}, opts.Chain...) {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		certs, err := oms.ParseCertificatesPEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if p == opts.Cert && len(certs) != 1 {
			// The leaf file must hold the leaf alone: which of several
			// certificates signs would otherwise be a guess.
			return usagef("--cert %s holds %d certificates; put the leaf alone there and the CAs in --chain", p, len(certs))
		}
		chain = append(chain, certs...)
	}
	sigPath := opts.Sig
	if sigPath == "" {
		sigPath = defaultSigPath(path)
	}
	b, m, err := oms.SignModel(ctx, path, key, chain, oms.SignOptions{Digest: opts.digestOptions(), SignaturePath: sigPath})
	if err != nil {
		switch {
		case errors.Is(err, digest.ErrBadOptions):
			return &usageError{msg: err.Error()}
		case errors.Is(err, digest.ErrRefused), errors.Is(err, digest.ErrChanged), errors.Is(err, digest.ErrEmptyModel):
			return fmt.Errorf("cannot sign %s: %w", path, err)
		}
		return err
	}
	out, err := b.Marshal()
	if err != nil {
		return err
	}
	if err := fileutil.WriteFileAtomic(sigPath, out, 0o644); err != nil {
		return err
	}
	method := "key"
	if len(chain) > 0 {
		method = "certificate"
	}
	_, err = fmt.Fprintf(stdout, "signed %s (%d resources, oms_root %s, %s method)\nsignature: %s\n", path, len(m.Resources), m.OMSRoot, method, sigPath)
	return err
}
