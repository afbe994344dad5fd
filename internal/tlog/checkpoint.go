package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Size caps of what verifiers accept.
const (
	// MaxCheckpointSize bounds a checkpoint's text.
	MaxCheckpointSize = 1 << 10
	// MaxSignedCheckpointSize bounds a signed checkpoint (text and
	// signature lines).
	MaxSignedCheckpointSize = 16 << 10
)

// Checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint):
// the log's origin, a tree size and the RFC 6962 root hash of the tree of
// that size. Its text is exactly three lines, each ending in "\n":
//
//	<origin>                 the log's name, e.g. "custody.example.com/log"
//	<tree size>              decimal, no sign, no leading zeros
//	<root hash>              standard base64 (with padding) of 32 bytes
//
// custody writes no extension lines and its parser refuses them. Signed, it
// is a C2SP signed note (https://c2sp.org/signed-note): the text, an empty
// line, and one line per signature, "— <key name> <base64(4-byte key
// hash || Ed25519 signature)>", where the key name is the origin.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   Hash
}

// Format returns the checkpoint's text.
func (c Checkpoint) Format() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// ErrMalformedCheckpoint is wrapped by [ParseCheckpoint] errors.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// ParseCheckpoint parses a checkpoint's text strictly: exactly the three
// lines above in canonical form (no extension lines, no leading zeros, no
// non-canonical base64), at most [MaxCheckpointSize] bytes.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(text) > MaxCheckpointSize {
		return Checkpoint{}, bad("longer than %d bytes", MaxCheckpointSize)
	}
	if !utf8.Valid(text) || !bytes.HasSuffix(text, []byte("\n")) {
		return Checkpoint{}, bad("not UTF-8 lines ending in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) != 3 {
		return Checkpoint{}, bad("%d lines, want 3 (origin, size, root hash; no extensions)", len(lines))
	}
	origin := lines[0]
	if err := checkOrigin(origin); err != nil {
		return Checkpoint{}, bad("%v", err)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, bad("tree size %.30q is not a canonical decimal", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != len(Hash{}) || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return Checkpoint{}, bad("root hash %.60q is not the base64 of 32 bytes", lines[2])
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Hash[:], h)
	return c, nil
}

// checkOrigin accepts what can also be a signed-note key name: non-empty,
// printable, no spaces and no '+'.
func checkOrigin(o string) error {
	if o == "" {
		return errors.New("empty origin")
	}
	for _, r := range o {
		if r == '+' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("origin %.60q contains %q", o, r)
		}
	}
	return nil
}

// ErrBadSignature is wrapped when a signed checkpoint does not carry a
// valid signature of the expected key; check with errors.Is.
var ErrBadSignature = errors.New("checkpoint not signed by the log key")

// OpenCheckpoint verifies a signed checkpoint against the log's verifier
// key and parses it. The origin must be the key's name.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if len(signed) > MaxSignedCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: signed checkpoint longer than %d bytes", ErrMalformedCheckpoint, MaxSignedCheckpointSize)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w %s: %v", ErrBadSignature, v.Name(), err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q is not the key name %q", ErrBadSignature, c.Origin, v.Name())
	}
	return c, nil
}
