package digest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrMismatch is wrapped by every [MismatchError]: the model was hashed and
// does not match what was expected.
var ErrMismatch = errors.New("model does not match")

// Expected is what a model must match: a pinned digest and, when it is
// known, the manifest the pin came from (which lets a mismatch name the
// files that differ, and fixes how the model is serialized).
type Expected struct {
	Digest   Digest
	Manifest *Manifest // optional
}

// MismatchError reports how a model differs from what was expected.
type MismatchError struct {
	Want, Got Digest
	WantKind  Kind // empty when unknown
	GotKind   Kind
	Diff      Diff // empty when no expected manifest was given
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: expected %s, got %s", ErrMismatch, e.Want, e.Got)
	if e.WantKind != "" && e.WantKind != e.GotKind {
		fmt.Fprintf(&b, " (expected a %s, found a %s)", e.WantKind, e.GotKind)
	}
	if n := len(e.Diff.Changed) + len(e.Diff.Added) + len(e.Diff.Missing); n > 0 {
		fmt.Fprintf(&b, " (%d changed, %d added, %d missing)", len(e.Diff.Changed), len(e.Diff.Added), len(e.Diff.Missing))
	}
	return b.String()
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// OptionsFor returns opts adjusted to reproduce the serialization recorded
// in m: its method and shard size, its symlink policy and its ignore paths
// (to which opts.Ignore adds). It fails if opts contradicts m.
func OptionsFor(m *Manifest, opts Options) (Options, error) {
	if m == nil {
		return opts, nil
	}
	s := m.Serialization
	if opts.ShardSize != 0 && opts.ShardSize != s.ShardSize {
		return opts, fmt.Errorf("%w: shard size %d contradicts the manifest's %q method with shard size %d", ErrBadOptions, opts.ShardSize, s.Method, s.ShardSize)
	}
	opts.ShardSize = s.ShardSize
	opts.AllowSymlinks = opts.AllowSymlinks || s.AllowSymlinks
	opts.Ignore = append(append([]string(nil), s.IgnorePaths...), opts.Ignore...)
	return opts, nil
}

func (exp Expected) check(got *Manifest) error {
	want := exp.Digest
	if exp.Manifest != nil {
		if !want.IsZero() && !want.Equal(exp.Manifest.Digest) {
			return fmt.Errorf("%w: the expected digest %s and the manifest's %s disagree", ErrBadManifest, want, exp.Manifest.Digest)
		}
		want = exp.Manifest.Digest
	}
	if want.IsZero() {
		return fmt.Errorf("%w: no expected digest", ErrBadOptions)
	}
	kindOK := exp.Manifest == nil || exp.Manifest.Kind == got.Kind
	if want.Equal(got.Digest) && kindOK {
		return nil
	}
	e := &MismatchError{Want: want, Got: got.Digest, GotKind: got.Kind}
	if exp.Manifest != nil {
		e.WantKind = exp.Manifest.Kind
		e.Diff = Compare(exp.Manifest, got)
	}
	return e
}

// Verify hashes the model at path and checks it against exp. It returns the
// manifest computed, and an error wrapping [ErrMismatch] (a *MismatchError)
// when the model does not match. A model that cannot be hashed returns the
// error from [Hash]: [ErrRefused] and [ErrChanged] also mean it does not
// hold as pinned; anything else means it could not be checked.
func Verify(ctx context.Context, path string, exp Expected, opts Options) (*Manifest, error) {
	opts, err := OptionsFor(exp.Manifest, opts)
	if err != nil {
		return nil, err
	}
	got, err := Hash(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return got, exp.check(got)
}

// Stage copies the model at src into dir while hashing the very bytes it
// copies (see [HashCopy]) and keeps the copy only if it matches exp. The
// copy is built in a temporary directory inside dir and renamed to
// dir/sha256-<hex> once it matches, so the final path never holds anything
// unverified; a previous copy under that name is replaced. It returns the
// staged path: the model directory, or for a single-file model the file in
// it.
func Stage(ctx context.Context, src, dir string, exp Expected, opts Options) (string, *Manifest, error) {
	opts, err := OptionsFor(exp.Manifest, opts)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("failed to create staging directory: %w", err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".custody-staging-"+hex.EncodeToString(rnd[:]))
	got, err := HashCopy(ctx, src, tmp, opts)
	if err != nil {
		return "", nil, err
	}
	if err := exp.check(got); err != nil {
		if rerr := removeAll(tmp); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", got, err
	}
	final := filepath.Join(dir, "sha256-"+got.Digest.Hex())
	if err := removeAll(final); err != nil {
		removeAll(tmp)
		return "", nil, fmt.Errorf("failed to replace previous staged copy: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		removeAll(tmp)
		return "", nil, fmt.Errorf("failed to publish staged copy: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	if got.Kind == KindFile {
		return filepath.Join(final, got.Name), got, nil
	}
	return final, got, nil
}

// ReadExpected reads an expected digest from a file: either a manifest as
// printed by `custody hash --json` (checked with [ReadManifest]), or text
// whose first word is a digest ("sha256:<hex>" or bare hex, as `custody
// hash` and sha256sum print).
func ReadExpected(path string) (Expected, error) {
	f, err := os.Open(path)
	if err != nil {
		return Expected{}, err
	}
	defer f.Close()
	var head [1]byte
	n, _ := f.Read(head[:])
	if _, err := f.Seek(0, 0); err != nil {
		return Expected{}, err
	}
	if n == 1 && head[0] == '{' {
		m, err := ReadManifest(f)
		if err != nil {
			return Expected{}, fmt.Errorf("%s: %w", path, err)
		}
		return Expected{Digest: m.Digest, Manifest: m}, nil
	}
	var buf [512]byte
	n, _ = f.Read(buf[:])
	fields := strings.Fields(string(buf[:n]))
	if len(fields) == 0 {
		return Expected{}, fmt.Errorf("%s: %w: empty digest file", path, ErrBadDigest)
	}
	d, err := ParseDigest(fields[0])
	if err != nil {
		return Expected{}, fmt.Errorf("%s: %w", path, err)
	}
	return Expected{Digest: d}, nil
}
