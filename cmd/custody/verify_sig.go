package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/spf13/pflag"
)

// verifySigOptions are the flags of 'custody verify' that check signatures
// (OMS bundles and cosign blob signatures) instead of a pinned digest.
type verifySigOptions struct {
	Sigs                []string
	Keys                []string
	CertChain           []string
	TrustedRoot         string
	Identity            string
	Issuer              string
	Threshold           int
	IgnoreUnsignedFiles bool
}

func (o *verifySigOptions) AddFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&o.Sigs, "sig", nil, "signature file: an OMS Sigstore bundle or a cosign blob signature (repeatable; default: model.sig inside a model directory, next to a single file)")
	f.StringArrayVar(&o.Keys, "key", nil, "trusted public key, PKIX PEM (repeatable)")
	f.StringArrayVar(&o.CertChain, "cert-chain", nil, "trusted CA certificates, PEM; every certificate is a trust anchor (repeatable)")
	f.StringVar(&o.TrustedRoot, "trusted-root", "", "Sigstore trusted_root.json for keyless signatures (offline)")
	f.StringVar(&o.Identity, "identity", "", "keyless: the signer's exact certificate identity (e-mail or URI)")
	f.StringVar(&o.Issuer, "issuer", "", "keyless: the exact OIDC issuer URL")
	f.IntVar(&o.Threshold, "threshold", 1, "number of distinct trusted keys that must have signed the model")
	f.BoolVar(&o.IgnoreUnsignedFiles, "ignore-unsigned-files", false, "accept files on disk that the signature does not list (missing or changed files still fail)")
}

// active reports whether any signature flag was given.
func (o *verifySigOptions) active() bool {
	return len(o.Sigs) > 0 || len(o.Keys) > 0 || len(o.CertChain) > 0 || o.TrustedRoot != "" ||
		o.Identity != "" || o.Issuer != "" || o.IgnoreUnsignedFiles || o.Threshold != 1
}

// trust builds the verification policy from the flags.
func (o *verifySigOptions) trust() (oms.Trust, error) {
	var t oms.Trust
	modes := 0
	for _, set := range []bool{len(o.Keys) > 0, len(o.CertChain) > 0, o.TrustedRoot != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return t, usagef("give exactly one of --key, --cert-chain or --trusted-root (with --identity and --issuer)")
	}
	if (o.Identity != "" || o.Issuer != "") && o.TrustedRoot == "" {
		return t, usagef("--identity and --issuer go with --trusted-root")
	}
	if o.Threshold < 1 {
		return t, usagef("--threshold must be at least 1")
	}
	if o.Threshold > 1 && len(o.Keys) == 0 {
		return t, usagef("--threshold counts distinct keys: use it with --key")
	}
	t.Threshold = o.Threshold
	switch {
	case len(o.Keys) > 0:
		keys, err := loadPublicKeys(o.Keys)
		if err != nil {
			return t, err
		}
		ids := map[string]bool{}
		for _, k := range keys {
			id, err := oms.KeyID(k)
			if err != nil {
				return t, err
			}
			ids[id] = true
		}
		if o.Threshold > len(ids) {
			return t, usagef("--threshold %d is more than the %d distinct trusted keys", o.Threshold, len(ids))
		}
		t.Keys = keys
	case len(o.CertChain) > 0:
		var roots []*x509.Certificate
		for _, p := range o.CertChain {
			data, err := os.ReadFile(p)
			if err != nil {
				return t, err
			}
			certs, err := oms.ParseCertificatesPEM(data)
			if err != nil {
				return t, fmt.Errorf("%s: %w", p, err)
			}
			roots = append(roots, certs...)
		}
		t.Roots = roots
	default:
		if o.Identity == "" || o.Issuer == "" {
			return t, usagef("--trusted-root needs --identity and --issuer")
		}
		tr, err := os.ReadFile(o.TrustedRoot)
		if err != nil {
			return t, err
		}
		t.Keyless = &oms.KeylessPolicy{TrustedRoot: tr, Identity: o.Identity, Issuer: o.Issuer}
	}
	return t, nil
}

// runVerifySignature checks the model at path against signature files. The
// serialization (shard size, symlinks, ignored paths) comes from each
// signature; --ignore adds paths and --workers is honoured.
func runVerifySignature(ctx context.Context, stdout io.Writer, sig verifySigOptions, mopts manifestOptions, path string) error {
	if mopts.ShardSize != 0 || mopts.AllowSymlinks {
		return usagef("--shard-size and --allow-symlinks are read from the signature; do not pass them with --sig")
	}
	trust, err := sig.trust()
	if err != nil {
		return err
	}
	sigPaths := sig.Sigs
	if len(sigPaths) == 0 {
		sigPaths = []string{defaultSigPath(path)}
	}
	var files []oms.SignatureFile
	for _, p := range sigPaths {
		data, err := readCapped(p, oms.MaxBundleSize)
		if err != nil {
			return err
		}
		files = append(files, oms.SignatureFile{Path: p, Data: data})
	}
	var ignores []string
	for _, p := range mopts.Ignore {
		n, err := digest.NormalizeIgnore(path, p)
		if err != nil {
			return &usageError{msg: err.Error()}
		}
		ignores = append(ignores, n)
	}
	res, err := oms.VerifyModel(ctx, path, files, trust, oms.VerifyOptions{
		Ignore:              ignores,
		IgnoreUnsignedFiles: sig.IgnoreUnsignedFiles,
		Workers:             mopts.Workers,
	})
	if err != nil {
		switch {
		case errors.Is(err, oms.ErrNotVerified):
			return notHold(fmt.Errorf("%s: %w", path, err))
		case errors.Is(err, oms.ErrUnsupported):
			return fmt.Errorf("%s: cannot check: %w", path, err)
		}
		return checkError(fmt.Errorf("%s: %w", path, err))
	}
	var signers []string
	for _, s := range res.Signatures {
		if s.Verified == nil {
			continue
		}
		signers = append(signers, fmt.Sprintf("  %s: %s", s.Path, s.Verified.Signer))
		// What the signature did not cover, for whoever decides to trust it.
		if len(s.Ignored) > 0 {
			signers = append(signers, "    not covered (ignored): "+strings.Join(s.Ignored, ", "))
		}
		if len(s.Unsigned) > 0 {
			signers = append(signers, "    not covered (unsigned, accepted by --ignore-unsigned-files): "+strings.Join(s.Unsigned, ", "))
		}
	}
	what := fmt.Sprintf("%d resources, oms_root %s", len(res.Manifest.Resources), res.Manifest.OMSRoot)
	if res.Manifest.Kind == digest.KindFile && res.Manifest.Serialization.Method == digest.MethodFiles {
		what = "sha256 " + res.Manifest.Digest.Hex()
	}
	_, err = fmt.Fprintf(stdout, "OK  %s  (%s; %d trusted signer(s))\n%s\n", path, what, len(res.Signers), strings.Join(signers, "\n"))
	return err
}

// readCapped reads a whole regular file, refusing larger than limit (and
// FIFOs or devices, which could block or never end).
func readCapped(path string, limit int64) ([]byte, error) {
	// Stat before opening: opening a FIFO for reading blocks.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, notHold(fmt.Errorf("%s: larger than %d bytes: not a signature", path, limit))
	}
	return data, nil
}
