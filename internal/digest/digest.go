// Package digest computes model manifests: the per-file (or per-shard)
// SHA-256 digests of a model, a single file or a directory, in the resource
// form of the OpenSSF Model Signing (OMS) v1.0 specification, the OMS root
// digest, and the single pinned digest custody uses to refuse anything that
// does not match.
//
// # Digests
//
// A [Manifest] carries two model-wide digests:
//
//   - Digest, the pin. For a single file hashed with the "files" method it is
//     the file's plain SHA-256 (what sha256sum prints). Otherwise it is the
//     SHA-256 of the canonical manifest text (see [Manifest.CanonicalText] and
//     docs/manifest.md), which binds every relative path to its content, so
//     renaming, adding, removing or swapping files all change it.
//   - OMSRoot, the OMS subject digest: SHA-256 over the concatenated raw
//     resource digests in manifest order. It does not bind names and is never
//     used alone as a pin.
//
// # Safety
//
// Enumeration never leaves the model root: files are opened through an
// [os.Root]. Symbolic links are refused unless [Options.AllowSymlinks] is set,
// FIFOs, devices and sockets are always refused, and a file that changes
// while it is hashed (size, modification time, or identity) is an error.
// Hashing streams through fixed-size buffers, in parallel over files and
// shards; the result does not depend on scheduling.
package digest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Size is the size of a SHA-256 digest in bytes.
const Size = sha256.Size

// Digest is a SHA-256 digest. Its text form is "sha256:<64 lowercase hex>".
type Digest [Size]byte

// String returns "sha256:<hex>".
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// Hex returns the lowercase hex encoding of d, without the algorithm prefix.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero value (no digest).
func (d Digest) IsZero() bool { return d == Digest{} }

// Equal compares two digests in constant time.
func (d Digest) Equal(o Digest) bool { return subtle.ConstantTimeCompare(d[:], o[:]) == 1 }

// MarshalText implements [encoding.TextMarshaler].
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseDigest].
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// ErrBadDigest is returned (wrapped) by [ParseDigest] for malformed input.
var ErrBadDigest = errors.New("malformed digest")

// ParseDigest parses "sha256:<64 hex digits>" or 64 bare hex digits. Upper-
// and lowercase hex are accepted; any other algorithm, length or character
// is an error wrapping [ErrBadDigest].
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if s[:i] != "sha256" {
			return d, fmt.Errorf("%w %q: unsupported algorithm %q (want sha256)", ErrBadDigest, truncate(s), s[:i])
		}
		h = s[i+1:]
	}
	if len(h) != 2*Size {
		return d, fmt.Errorf("%w %q: want 64 hex digits, got %d characters", ErrBadDigest, truncate(s), len(h))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return Digest{}, fmt.Errorf("%w %q: %v", ErrBadDigest, truncate(s), err)
	}
	return d, nil
}

// ParseHex parses exactly 64 lowercase hex digits, the form OMS resource
// digests take.
func ParseHex(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*Size || strings.ToLower(s) != s {
		return d, fmt.Errorf("%w %q: want 64 lowercase hex digits", ErrBadDigest, truncate(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("%w %q: %v", ErrBadDigest, truncate(s), err)
	}
	return d, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
