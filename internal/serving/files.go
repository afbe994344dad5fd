package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/registry"
)

var timeZero time.Time

// SignatureVerifier checks a signature bundle against a manifest computed
// from the bytes about to be served (internal/trust implements it with
// the keys the serving process trusts).
type SignatureVerifier interface {
	Verify(ctx context.Context, bundle []byte, m *digest.Manifest) (registry.Signer, error)
}

// FileOptions say where the model bytes are and how to check them.
type FileOptions struct {
	// From is a local copy of the model (file or directory); "" uses the
	// version's URI when it is an absolute path or a file:// URI.
	From string
	// Stage, if set, is a directory under which each prepared version is
	// copied (while hashing) into a fresh directory; the copy is what
	// gets served.
	Stage string
	// Trust checks the version's signature bundles; required.
	Trust SignatureVerifier
	// Digest are hashing options (workers); the serialization comes from
	// the version's manifest.
	Digest digest.Options
}

// Prepared is a verified model ready to serve.
type Prepared struct {
	Target *Target
	// Path is the model (file or directory) to load; Dir the directory
	// holding it (itself for a directory model).
	Path, Dir string
	Manifest  *digest.Manifest
	// Signers are the identities whose signatures verified.
	Signers []string
	// StageDir is the fresh staging directory (to remove once no process
	// serves it); "" when not staged.
	StageDir string
}

// Cleanup removes the staged copy, if any.
func (p *Prepared) Cleanup() error {
	if p == nil || p.StageDir == "" {
		return nil
	}
	return digest.RemoveStaged(p.StageDir)
}

// Source returns the local path of the model bytes of t.
func Source(t *Target, from string) (string, error) {
	if from != "" {
		return from, nil
	}
	uri := t.Record.URI
	switch {
	case strings.HasPrefix(uri, "file://"):
		u, err := url.Parse(uri)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return "", fmt.Errorf("version %s@%s: URI %q is not a local file:// URI", t.Model, t.Version, uri)
		}
		return filepath.FromSlash(u.Path), nil
	case filepath.IsAbs(uri):
		return uri, nil
	}
	return "", fmt.Errorf("version %s@%s lives at %q, which is not local: fetch it and give --from DIR", t.Model, t.Version, uri)
}

// Prepare checks the model bytes of t: the files (at opts.From or the
// version's URI) must hash, with the serialization of the version's
// manifest, to the digest the log entry records, and at least one of the
// version's signature bundles must verify under opts.Trust and sign
// exactly the manifest computed from those bytes. With opts.Stage the
// bytes are copied into a fresh directory while hashed, and the copy is
// served.
func Prepare(ctx context.Context, t *Target, opts FileOptions) (*Prepared, error) {
	if opts.Trust == nil {
		return nil, errors.New("serving: no signature trust configured")
	}
	src, err := Source(t, opts.From)
	if err != nil {
		return nil, err
	}
	// The manifest served with the version must be self-consistent and
	// pin the logged digest; it fixes the serialization to hash with.
	raw, err := json.Marshal(&t.Record.Manifest)
	if err != nil {
		return nil, err
	}
	want, err := digest.ReadManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, refuse(ErrDisagrees, "the manifest of %s@%s: %v", t.Model, t.Version, err)
	}
	if want.Digest != t.Digest {
		return nil, refuse(ErrDisagrees, "the manifest of %s@%s pins %s, the log says %s", t.Model, t.Version, want.Digest, t.Digest)
	}
	// Signatures first (cheap): a version no trusted key signed is refused
	// before its files are read or copied.
	signers, err := verifySignatures(ctx, t, opts.Trust, want)
	if err != nil {
		return nil, err
	}
	exp := digest.Expected{Digest: t.Digest, Manifest: want}
	p := &Prepared{Target: t, Signers: signers}
	var (
		m    *digest.Manifest
		path string
	)
	if opts.Stage != "" {
		if err := os.MkdirAll(opts.Stage, 0o700); err != nil {
			return nil, fmt.Errorf("failed to create the staging directory: %w", err)
		}
		p.StageDir, err = os.MkdirTemp(opts.Stage, "custody-"+t.Model+"-"+t.Version+"-")
		if err != nil {
			return nil, fmt.Errorf("failed to create the staging directory: %w", err)
		}
		path, m, err = digest.Stage(ctx, src, p.StageDir, exp, opts.Digest)
	} else {
		m, err = digest.Verify(ctx, src, exp, opts.Digest)
		path = src
	}
	if err != nil {
		p.Cleanup()
		var mm *digest.MismatchError
		if errors.As(err, &mm) || errors.Is(err, digest.ErrMismatch) || errors.Is(err, digest.ErrRefused) || errors.Is(err, digest.ErrChanged) || errors.Is(err, digest.ErrEmptyModel) {
			return nil, fmt.Errorf("%w: %s: %w", ErrFiles, src, err)
		}
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	// The bytes served hash to the pin; the signatures must sign the
	// manifest computed from them.
	if _, err := verifySignatures(ctx, t, opts.Trust, m); err != nil {
		p.Cleanup()
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		p.Cleanup()
		return nil, err
	}
	p.Path, p.Dir, p.Manifest = abs, abs, m
	if m.Kind == digest.KindFile {
		p.Dir = filepath.Dir(abs)
	}
	return p, nil
}

// verifySignatures returns the identities of the version's signature
// bundles that verify under trust and sign exactly m; at least one must.
func verifySignatures(ctx context.Context, t *Target, trust SignatureVerifier, m *digest.Manifest) ([]string, error) {
	if len(t.Record.Signatures) == 0 {
		return nil, refuse(ErrUnsigned, "%s@%s has no signature", t.Model, t.Version)
	}
	var (
		signers []string
		errs    []error
	)
	for i, sg := range t.Record.Signatures {
		s, err := trust.Verify(ctx, sg.Bundle, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: %w", i+1, err))
			continue
		}
		signers = append(signers, s.Identity)
	}
	if len(signers) == 0 {
		return nil, refuse(ErrUnsigned, "no signature of %s@%s verifies under the trusted keys: %v", t.Model, t.Version, errors.Join(errs...))
	}
	return signers, nil
}
