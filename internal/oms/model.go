package oms

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/digest"
)

// ErrNotVerified is wrapped by every error meaning "the model's signature
// does not hold": a bad or untrusted signature, a model that differs from
// the signed manifest, or too few trusted signers. Check with errors.Is.
var ErrNotVerified = errors.New("signature verification failed")

// SignOptions control how a model is hashed for signing.
type SignOptions struct {
	// Digest is passed to digest.Hash. Its Ignore paths are recorded in
	// serialization.ignore_paths, with the defaults and the signature file.
	Digest digest.Options
	// SignaturePath is where the bundle will be written; when it lies inside
	// the model directory it is left out of the manifest.
	SignaturePath string
}

// SignModel hashes the model at path and signs its manifest with key (and,
// for the certificate method, chain). It returns the bundle and the
// manifest that was signed.
func SignModel(ctx context.Context, path string, key crypto.Signer, chain []*x509.Certificate, opts SignOptions) (*Bundle, *digest.Manifest, error) {
	dopts := opts.Digest
	if rel, ok := insideModel(path, opts.SignaturePath); ok {
		dopts.Ignore = append(slices.Clone(dopts.Ignore), rel)
	}
	m, err := digest.Hash(ctx, path, dopts)
	if err != nil {
		return nil, nil, err
	}
	st, err := NewStatement(m.Name, toResources(m.Resources), Serialization{
		Method:        m.Serialization.Method,
		HashType:      m.Serialization.HashType,
		ShardSize:     m.Serialization.ShardSize,
		AllowSymlinks: m.Serialization.AllowSymlinks,
		IgnorePaths:   m.Serialization.IgnorePaths,
	})
	if err != nil {
		return nil, nil, err
	}
	if st.RootDigest != m.OMSRoot {
		return nil, nil, errors.New("internal error: statement and manifest disagree on the OMS root digest")
	}
	b, err := Sign(ctx, st, key, chain)
	if err != nil {
		return nil, nil, err
	}
	return b, m, nil
}

// insideModel reports whether file lies inside the model directory at
// model, and its model-relative "/" path if so.
func insideModel(model, file string) (string, bool) {
	if file == "" {
		return "", false
	}
	fi, err := os.Stat(model)
	if err != nil || !fi.IsDir() {
		return "", false
	}
	absModel, err1 := filepath.Abs(model)
	absFile, err2 := filepath.Abs(file)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(absModel, absFile)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func toResources(rs []digest.Resource) []Resource {
	out := make([]Resource, len(rs))
	for i, r := range rs {
		out[i] = Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: r.Digest}
	}
	return out
}

func toDigestResources(rs []Resource) []digest.Resource {
	out := make([]digest.Resource, len(rs))
	for i, r := range rs {
		out[i] = digest.Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: r.Digest}
	}
	return out
}

// Trust is what verification trusts. Exactly one of Keys, Roots or Keyless
// is set.
type Trust struct {
	// Keys are trusted public keys (key method, and cosign blob signatures).
	Keys []crypto.PublicKey
	// Roots are trust anchors for the certificate method.
	Roots []*x509.Certificate
	// Keyless is the Sigstore keyless policy.
	Keyless *KeylessPolicy
	// Threshold is the number of distinct trusted signers required; zero
	// means one.
	Threshold int
	// Now is the time certificate chains are validated at; zero means
	// time.Now().
	Now time.Time
}

// SignatureFile is one signature to check: its path (used to leave it out
// of the model) and contents.
type SignatureFile struct {
	Path string
	Data []byte
}

// VerifyOptions control how the model is compared with signed manifests.
type VerifyOptions struct {
	// Ignore adds model-relative paths to the ignore paths recorded in each
	// signature.
	Ignore []string
	// IgnoreUnsignedFiles accepts files on disk that no signed resource
	// lists; missing and changed files still fail.
	IgnoreUnsignedFiles bool
	// Workers is passed to digest.Hash.
	Workers int
}

// SignatureResult is the outcome for one signature file.
type SignatureResult struct {
	Path     string
	Verified *Verified // nil when the signature failed
	Err      error     // why it failed, nil when it held
	// Ignored are the paths excluded from the comparison beyond the OMS
	// defaults (the signature's ignore_paths, --ignore, signature files),
	// and Unsigned the files on disk accepted by IgnoreUnsignedFiles: what
	// a reviewer should know was not covered by the signature.
	Ignored, Unsigned []string
}

// ModelResult is the outcome of VerifyModel.
type ModelResult struct {
	Signatures []SignatureResult
	// Signers are the distinct trusted signers whose signatures held and
	// whose manifests match the model.
	Signers []string
	// Manifest is the model as hashed for the first signature that held.
	Manifest *digest.Manifest
}

// VerifyModel checks the model at path against signature files: each
// signature must verify under trust, and the resources it signs must equal
// the model on disk, recomputed with the serialization the signature
// records (method, shard size, symlink policy, ignore paths, plus
// opts.Ignore and the signature files themselves). It holds when at least
// trust.Threshold distinct trusted signers signed a manifest that matches.
//
// A signature file that is a cosign blob signature is checked against the
// model file's SHA-256 instead (single-file models, key trust only).
//
// Errors wrap ErrNotVerified when the signatures do not hold, ErrUnsupported
// when a signature uses something custody cannot check, and otherwise come
// from reading or hashing the model (digest's sentinels).
func VerifyModel(ctx context.Context, path string, sigs []SignatureFile, trust Trust, opts VerifyOptions) (*ModelResult, error) {
	if len(sigs) == 0 {
		return nil, errors.New("no signature files")
	}
	threshold := max(trust.Threshold, 1)
	if len(trust.Keys) > 0 && threshold > len(trust.Keys) {
		return nil, fmt.Errorf("threshold %d is more than the %d trusted keys", threshold, len(trust.Keys))
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	var sigIgnores []string
	for _, s := range sigs {
		if rel, ok := insideModel(path, s.Path); ok {
			sigIgnores = append(sigIgnores, rel)
		}
	}
	manifests := map[string]*digest.Manifest{}
	hash := func(o digest.Options) (*digest.Manifest, error) {
		key := fmt.Sprint(o.ShardSize, o.AllowSymlinks, o.Ignore)
		if m, ok := manifests[key]; ok {
			return m, nil
		}
		m, err := digest.Hash(ctx, path, o)
		if err != nil {
			return nil, err
		}
		manifests[key] = m
		return m, nil
	}

	res := &ModelResult{}
	signers := map[string]bool{}
	var unsupported error
	for _, s := range sigs {
		v, m, cov, err := verifyOne(s, trust, opts, sigIgnores, hash)
		if err != nil && !errors.Is(err, ErrNotVerified) && !errors.Is(err, ErrUnsupported) {
			return nil, err // I/O or hashing: the model could not be checked
		}
		if errors.Is(err, ErrUnsupported) && unsupported == nil {
			unsupported = fmt.Errorf("%s: %w", s.Path, err)
		}
		if err != nil {
			res.Signatures = append(res.Signatures, SignatureResult{Path: s.Path, Err: err})
			continue
		}
		res.Signatures = append(res.Signatures, SignatureResult{Path: s.Path, Verified: v, Ignored: cov.ignored, Unsigned: cov.unsigned})
		if res.Manifest == nil {
			res.Manifest = m
		}
		for _, id := range v.SignerIDs {
			if !signers[id] {
				signers[id] = true
				res.Signers = append(res.Signers, id)
			}
		}
	}
	if len(res.Signers) >= threshold {
		return res, nil
	}
	if unsupported != nil {
		return res, unsupported
	}
	var reasons []string
	for _, s := range res.Signatures {
		if s.Err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", s.Path, s.Err))
		}
	}
	if threshold > 1 || len(reasons) == 0 {
		reasons = append(reasons, fmt.Sprintf("%d distinct trusted signer(s), threshold %d", len(res.Signers), threshold))
	}
	return res, fmt.Errorf("%w: %s", ErrNotVerified, strings.Join(reasons, "; "))
}

// notVerified wraps err as a signature failure unless it is ErrUnsupported.
func notVerified(err error) error {
	if err == nil || errors.Is(err, ErrUnsupported) {
		return err
	}
	return &notVerifiedError{err}
}

// notVerifiedError is a signature failure: its message is the reason alone,
// and it matches both the reason and ErrNotVerified with errors.Is.
type notVerifiedError struct{ err error }

func (e *notVerifiedError) Error() string   { return e.err.Error() }
func (e *notVerifiedError) Unwrap() []error { return []error{e.err, ErrNotVerified} }

// coverage is what a holding signature did not cover.
type coverage struct{ ignored, unsigned []string }

func verifyOne(s SignatureFile, trust Trust, opts VerifyOptions, sigIgnores []string, hash func(digest.Options) (*digest.Manifest, error)) (*Verified, *digest.Manifest, coverage, error) {
	var cov coverage
	// cosign blob signatures cover the file bytes, not a manifest.
	if len(trust.Keys) > 0 {
		blob, ok, err := ParseBlobSignature(s.Data)
		if err != nil {
			return nil, nil, cov, notVerified(err)
		}
		if ok {
			m, err := hash(digest.Options{Workers: opts.Workers})
			if err != nil {
				return nil, nil, cov, err
			}
			if m.Kind != digest.KindFile {
				return nil, nil, cov, notVerified(errors.New("a cosign blob signature covers a single file, but the model is a directory"))
			}
			v, err := VerifyBlob(blob, m.Digest, trust.Keys)
			return v, m, cov, notVerified(err)
		}
	}

	var v *Verified
	var err error
	switch {
	case trust.Keyless != nil:
		v, err = VerifyKeyless(s.Data, *trust.Keyless)
	default:
		var b *Bundle
		if b, err = ParseBundle(s.Data); err != nil {
			break
		}
		if b.DSSEEnvelope == nil {
			err = errors.New("bundle has a message signature, not an OMS DSSE envelope")
			break
		}
		if len(trust.Keys) > 0 {
			v, err = VerifyKeys(b, trust.Keys)
		} else {
			now := trust.Now
			if now.IsZero() {
				now = time.Now()
			}
			v, err = VerifyCertChain(b, trust.Roots, now)
		}
	}
	if err != nil {
		return nil, nil, cov, notVerified(err)
	}
	st := v.Statement
	if err := st.CheckSupported(); err != nil {
		return nil, nil, cov, err
	}

	ser := st.Serialization
	dopts := digest.Options{AllowSymlinks: ser.AllowSymlinks, Workers: opts.Workers}
	if ser.Method == digest.MethodShards {
		dopts.ShardSize = ser.ShardSize
	}
	for _, p := range ser.IgnorePaths {
		n, err := digest.NormalizeIgnore(".", p)
		if err != nil {
			return nil, nil, cov, notVerified(fmt.Errorf("signed ignore path %q: %w", p, err))
		}
		dopts.Ignore = append(dopts.Ignore, n)
	}
	dopts.Ignore = append(dopts.Ignore, opts.Ignore...)
	dopts.Ignore = append(dopts.Ignore, sigIgnores...)
	slices.Sort(dopts.Ignore)
	dopts.Ignore = slices.Compact(dopts.Ignore)

	m, err := hash(dopts)
	if err != nil {
		return nil, nil, cov, err
	}
	d := digest.DiffResources(toDigestResources(st.Resources), m.Resources, ser.Method == digest.MethodShards)
	if opts.IgnoreUnsignedFiles {
		cov.unsigned = d.Added
		d.Added = nil
	}
	if !d.Empty() {
		return nil, nil, cov, notVerified(fmt.Errorf("model does not match the signed manifest (%s)", diffSummary(d)))
	}
	for _, p := range dopts.Ignore {
		if !slices.Contains(digest.DefaultIgnores, p) {
			cov.ignored = append(cov.ignored, p)
		}
	}
	return v, m, cov, nil
}

func diffSummary(d digest.Diff) string {
	var parts []string
	for _, x := range []struct {
		what  string
		names []string
	}{{"changed", d.Changed}, {"unsigned", d.Added}, {"missing", d.Missing}} {
		if len(x.names) == 0 {
			continue
		}
		names := x.names
		more := ""
		if len(names) > 10 {
			more = ", ... " + strconv.Itoa(len(names)-10) + " more"
			names = names[:10]
		}
		parts = append(parts, x.what+": "+strings.Join(names, ", ")+more)
	}
	return strings.Join(parts, "; ")
}
