package oms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

// Key algorithms custody generates.
const (
	AlgoECDSAP256 = "ecdsa-p256"
	AlgoECDSAP384 = "ecdsa-p384"
	AlgoEd25519   = "ed25519"
)

// PEM block types custody reads and writes.
const (
	pemPrivateKey          = "PRIVATE KEY"
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
	pemPublicKey           = "PUBLIC KEY"
	pemCertificate         = "CERTIFICATE"
	pemCosignEncrypted     = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemCosignEncryptedOld  = "ENCRYPTED COSIGN PRIVATE KEY"
	pemECPrivateKey        = "EC PRIVATE KEY"
)

// ErrPassphrase is returned when a key file is encrypted and the passphrase
// is missing or wrong.
var ErrPassphrase = errors.New("wrong or missing passphrase")

// GenerateKey makes a new private key of the given algorithm.
func GenerateKey(algo string) (crypto.Signer, error) {
	switch algo {
	case AlgoECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgoECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case AlgoEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	default:
		return nil, fmt.Errorf("%w: key algorithm %q (want %s, %s or %s)", ErrUnsupported, algo, AlgoECDSAP256, AlgoECDSAP384, AlgoEd25519)
	}
}

// MarshalPrivateKeyPEM encodes key as PKCS#8 PEM. With a non-empty
// passphrase the key is encrypted as an RFC 8018 PBES2 EncryptedPrivateKeyInfo
// ("ENCRYPTED PRIVATE KEY", see [EncryptPKCS8]), which OpenSSL also reads.
func MarshalPrivateKeyPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
	}
	enc, err := EncryptPKCS8(der, passphrase)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPrivateKey, Bytes: enc}), nil
}

// MarshalPublicKeyPEM encodes pub as PKIX ("PUBLIC KEY") PEM.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// Passphrases supplies passphrases for encrypted key files, by format.
// Either function may be nil, meaning "no passphrase available".
type Passphrases struct {
	// PKCS8 is asked for "ENCRYPTED PRIVATE KEY" files.
	PKCS8 func() ([]byte, error)
	// Cosign is asked for cosign's "ENCRYPTED SIGSTORE PRIVATE KEY" files.
	Cosign func() ([]byte, error)
}

// ParsePrivateKeyPEM reads the first private key PEM block in data: PKCS#8
// ("PRIVATE KEY"), PBES2-encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY"), SEC 1
// ("EC PRIVATE KEY") or cosign's scrypt + NaCl secretbox format ("ENCRYPTED
// SIGSTORE PRIVATE KEY", also the older "ENCRYPTED COSIGN PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte, pass Passphrases) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		var der []byte
		switch block.Type {
		case pemPrivateKey:
			der = block.Bytes
		case pemECPrivateKey:
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parsing EC private key: %w", err)
			}
			return k, nil
		case pemEncryptedPrivateKey:
			p, err := askPass(pass.PKCS8)
			if err != nil {
				return nil, err
			}
			if der, err = DecryptPKCS8(block.Bytes, p); err != nil {
				return nil, err
			}
		case pemCosignEncrypted, pemCosignEncryptedOld:
			p, err := askPass(pass.Cosign)
			if err != nil {
				return nil, err
			}
			if der, err = encrypted.Decrypt(block.Bytes, p); err != nil {
				return nil, fmt.Errorf("decrypting cosign key: %w (%v)", ErrPassphrase, err)
			}
		default:
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS#8 private key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: private key type %T", ErrUnsupported, k)
		}
		if _, err := signatureHash(s.Public()); err != nil {
			return nil, err
		}
		return s, nil
	}
}

func askPass(f func() ([]byte, error)) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("key is encrypted: %w", ErrPassphrase)
	}
	return f()
}

// ParsePublicKeysPEM reads every "PUBLIC KEY" (PKIX) block in data. Text
// around the blocks (as certtool writes) is ignored.
func ParsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemPublicKey {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		if _, err := signatureHash(k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PUBLIC KEY PEM block found")
	}
	return keys, nil
}

// ParseCertificatesPEM reads every "CERTIFICATE" block in data.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return certs, nil
}

// KeyHint is the publicKey.hint model_signing 1.1 writes: the hex SHA-256
// of the public key's PKIX PEM encoding.
func KeyHint(pub crypto.PublicKey) (string, error) {
	p, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:]), nil
}

// KeyID identifies a public key: the hex SHA-256 of its PKIX DER encoding.
// Two keys are the same signer exactly when their KeyIDs are equal.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// signatureHash is the hash custody signs and verifies with for a key type,
// following the Sigstore algorithm registry: ECDSA P-256/SHA-256,
// P-384/SHA-384, P-521/SHA-512, RSA/SHA-256, and pure Ed25519 (0).
func signatureHash(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		case elliptic.P521():
			return crypto.SHA512, nil
		}
		return 0, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupported, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return 0, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: RSA key of %d bits (want >= 2048)", ErrUnsupported, k.N.BitLen())
		}
		return crypto.SHA256, nil
	default:
		return 0, fmt.Errorf("%w: public key type %T", ErrUnsupported, pub)
	}
}

// signMessage signs msg with key using signatureHash's algorithm.
func signMessage(key crypto.Signer, msg []byte) ([]byte, error) {
	h, err := signatureHash(key.Public())
	if err != nil {
		return nil, err
	}
	if h == 0 {
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	d := h.New()
	d.Write(msg)
	return key.Sign(rand.Reader, d.Sum(nil), h)
}

// verifyMessage checks sig over msg with pub using hash h (0 for Ed25519).
func verifyMessage(pub crypto.PublicKey, h crypto.Hash, msg, sig []byte) error {
	if _, ok := pub.(ed25519.PublicKey); ok {
		return verifyDigest(pub, 0, msg, sig)
	}
	d := h.New()
	d.Write(msg)
	return verifyDigest(pub, h, d.Sum(nil), sig)
}

// verifyDigest checks sig over a precomputed digest (or, for Ed25519, the
// message itself).
func verifyDigest(pub crypto.PublicKey, h crypto.Hash, digest, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, digest, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	default:
		return fmt.Errorf("%w: public key type %T", ErrUnsupported, pub)
	}
	if !ok {
		return errBadSignature
	}
	return nil
}

var errBadSignature = errors.New("signature does not verify")
