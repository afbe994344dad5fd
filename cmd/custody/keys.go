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

// writeFileDurable writes data to path through a temporary file in the same
// directory: write, fsync, rename, fsync the directory. A crash leaves
// either the old file or the new one, never a torn signature. With excl,
// an existing path is an error (keys are never overwritten).
func writeFileDurable(path string, data []byte, perm os.FileMode, excl bool) error {
	dir := filepath.Dir(path)
	if excl {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
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
	if excl {
		// link fails if path appeared meanwhile; rename would replace it.
		if err := os.Link(tmp, path); err != nil {
			return err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
