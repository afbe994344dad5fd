package main

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custody-ml/custody/internal/oms"
)

// Environment variables that carry key passphrases.
const (
	envPassword       = "CUSTODY_PASSWORD"
	envCosignPassword = "COSIGN_PASSWORD"
)

// keyPassphrases reads passphrases from the environment: CUSTODY_PASSWORD
// for custody's PKCS#8 keys; COSIGN_PASSWORD, else CUSTODY_PASSWORD, else
// the empty passphrase (which cosign allows) for cosign keys.
func keyPassphrases() oms.Passphrases {
	return oms.Passphrases{
		PKCS8: func() ([]byte, error) {
			p, ok := os.LookupEnv(envPassword)
			if !ok || p == "" {
				return nil, fmt.Errorf("the key is encrypted: set %s: %w", envPassword, oms.ErrPassphrase)
			}
			return []byte(p), nil
		},
		Cosign: func() ([]byte, error) {
			if p, ok := os.LookupEnv(envCosignPassword); ok {
				return []byte(p), nil
			}
			return []byte(os.Getenv(envPassword)), nil
		},
	}
}

func loadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := oms.ParsePrivateKeyPEM(data, keyPassphrases())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func loadPublicKeys(paths []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		k, err := oms.ParsePublicKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// writeNewFileDurable creates path with data, durably (temporary file in
// the same directory, fsync, hard link into place, fsync the directory), and
// fails if path exists: keys are never overwritten, not even in a race.
func writeNewFileDurable(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // the link below keeps the data
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
