package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/custody-ml/custody/internal/fileutil"
	"golang.org/x/mod/sumdb/note"
)

// Key files hold one signed-note key string and a newline:
//
//	PRIVATE+KEY+<name>+<8 hex key hash>+<base64(0x01 || Ed25519 seed)>   signer (0600)
//	<name>+<8 hex key hash>+<base64(0x01 || Ed25519 public key)>         verifier
//
// as golang.org/x/mod/sumdb/note writes them (C2SP signed-note key
// encoding); the name is the log's origin.

// maxKeyFile bounds what key readers read.
const maxKeyFile = 4 << 10

// GenerateKey returns a new signer key and its verifier key, named origin.
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := checkOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

// VerifierKey derives the verifier key of a signer key.
func VerifierKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64>: the name has no '+', the base64
	// may.
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	parts := strings.SplitN(rest, "+", 3)
	if !ok || len(parts) != 3 {
		return "", errors.New("not a signed-note private key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 signed-note private key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[0], pub)
}

func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, maxKeyFile+1)
	n, _ := f.Read(b)
	if n > maxKeyFile {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxKeyFile)
	}
	return strings.TrimSpace(string(b[:n])), nil
}

// LoadSigner reads a signer key file and returns the signer and its
// verifier key.
func LoadSigner(path string) (note.Signer, string, error) {
	skey, err := readKeyFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("failed to read the log key: %w", err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("log key %s: %w", path, err)
	}
	vkey, err := VerifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("log key %s: %w", path, err)
	}
	return s, vkey, nil
}

// LoadOrCreateSigner loads the signer key at path, or, if there is none,
// generates one named origin and writes it durably (temporary file, fsync,
// hard link to path so that a concurrent creator's key is never
// overwritten, fsync of the directory) with mode 0600, and its verifier key
// to path + ".pub".
func LoadOrCreateSigner(path, origin string) (note.Signer, string, error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return LoadSigner(path)
	}
	skey, _, err := GenerateKey(origin)
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	f, err := os.CreateTemp(dir, ".log.key.tmp-*")
	if err != nil {
		return nil, "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, "", fmt.Errorf("failed to write the log key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, "", fmt.Errorf("failed to write the log key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	s, vkey, err := LoadSigner(path) // the winner's key if another process raced us
	if err != nil {
		return nil, "", err
	}
	if err := fileutil.WriteFileAtomic(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// ParseVerifier accepts a verifier key, or the path of a file holding one.
func ParseVerifier(s string) (note.Verifier, error) {
	if v, err := note.NewVerifier(strings.TrimSpace(s)); err == nil {
		return v, nil
	}
	k, err := readKeyFile(s)
	if err != nil {
		return nil, fmt.Errorf("log key %q is neither a verifier key nor a readable file: %w", s, err)
	}
	v, err := note.NewVerifier(k)
	if err != nil {
		return nil, fmt.Errorf("log key file %s: %w", s, err)
	}
	return v, nil
}
