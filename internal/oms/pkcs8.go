package oms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted private keys (RFC 5958 EncryptedPrivateKeyInfo with RFC 8018
// PBES2). custody writes:
//
//	EncryptedPrivateKeyInfo {
//	  encryptionAlgorithm: id-PBES2 (1.2.840.113549.1.5.13) {
//	    keyDerivationFunc: id-scrypt (1.3.6.1.4.1.11591.4.11)   RFC 7914 §7
//	      { salt: 16 random bytes, N: 2^14, r: 8, p: 1, keyLength: 32 }
//	    encryptionScheme: aes256-CBC (2.16.840.1.101.3.4.1.42) { iv: 16 random bytes }
//	  }
//	  encryptedData: AES-256-CBC(PKCS#8 DER, PKCS#7 padding)
//	}
//
// scrypt makes each passphrase guess cost 16 MiB of memory (N = 2^14 is the
// most OpenSSL accepts under its default 32 MiB scrypt memory limit); the
// format is the
// one `openssl pkcs8 -topk8 -scrypt` writes, so OpenSSL reads custody's keys.
// For reading, custody also accepts PBKDF2 (HMAC-SHA1/SHA-256/SHA-512) and
// AES-128-CBC, which OpenSSL writes by default.
var (
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACWithSHA1  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA25 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA51 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// scrypt cost custody writes (RFC 7914 parameters).
const (
	scryptN = 1 << 14
	scryptR = 8
	scryptP = 1
)

type encryptedPrivateKeyInfo struct {
	Algo          pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type scryptParams struct {
	Salt      []byte
	N         int
	R         int
	P         int
	KeyLength int `asn1:"optional"`
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

func algID(oid asn1.ObjectIdentifier, params any) (pkix.AlgorithmIdentifier, error) {
	der, err := asn1.Marshal(params)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: der}}, nil
}

// EncryptPKCS8 encrypts a PKCS#8 DER private key under passphrase as
// described above and returns the EncryptedPrivateKeyInfo DER.
func EncryptPKCS8(der, passphrase []byte) ([]byte, error) {
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	key, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(der)%aes.BlockSize
	plain := append(bytes.Clone(der), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)

	kdf, err := algID(oidScrypt, scryptParams{Salt: salt, N: scryptN, R: scryptR, P: scryptP, KeyLength: 32})
	if err != nil {
		return nil, err
	}
	enc, err := algID(oidAES256CBC, iv)
	if err != nil {
		return nil, err
	}
	pbes2, err := algID(oidPBES2, pbes2Params{KeyDerivationFunc: kdf, EncryptionScheme: enc})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{Algo: pbes2, EncryptedData: ct})
}

// DecryptPKCS8 decrypts a PBES2 EncryptedPrivateKeyInfo and returns the
// PKCS#8 DER inside. A wrong passphrase yields an error wrapping
// ErrPassphrase.
func DecryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, errors.New("encrypted private key: malformed EncryptedPrivateKeyInfo")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("%w: key encryption %v (only PBES2 is read)", ErrUnsupported, info.Algo.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, errors.New("encrypted private key: malformed PBES2 parameters")
	}
	var keyLen int
	switch {
	case params.EncryptionScheme.Algorithm.Equal(oidAES256CBC):
		keyLen = 32
	case params.EncryptionScheme.Algorithm.Equal(oidAES128CBC):
		keyLen = 16
	default:
		return nil, fmt.Errorf("%w: key cipher %v", ErrUnsupported, params.EncryptionScheme.Algorithm)
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) != 0 || len(iv) != aes.BlockSize {
		return nil, errors.New("encrypted private key: malformed IV")
	}
	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen)
	if err != nil {
		return nil, err
	}
	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted private key: ciphertext is not whole blocks")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > aes.BlockSize || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, fmt.Errorf("decrypting private key: %w", ErrPassphrase)
	}
	plain = plain[:len(plain)-pad]
	// A wrong passphrase passes the padding check 1 time in 256: the
	// result must also be well-formed DER.
	var probe asn1.RawValue
	if rest, err := asn1.Unmarshal(plain, &probe); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("decrypting private key: %w", ErrPassphrase)
	}
	return plain, nil
}

func deriveKey(kdf pkix.AlgorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, errors.New("encrypted private key: malformed scrypt parameters")
		}
		// Bound the work a key file can demand: N <= 2^20, r*p <= 64.
		if p.N < 2 || p.N > 1<<20 || p.R < 1 || p.P < 1 || p.R*p.P > 64 || (p.KeyLength != 0 && p.KeyLength != keyLen) {
			return nil, fmt.Errorf("%w: scrypt parameters N=%d r=%d p=%d", ErrUnsupported, p.N, p.R, p.P)
		}
		return scrypt.Key(passphrase, p.Salt, p.N, p.R, p.P, keyLen)
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, errors.New("encrypted private key: malformed PBKDF2 parameters")
		}
		if p.Iterations < 1 || p.Iterations > 10_000_000 || (p.KeyLength != 0 && p.KeyLength != keyLen) {
			return nil, fmt.Errorf("%w: PBKDF2 iteration count %d", ErrUnsupported, p.Iterations)
		}
		var h func() hash.Hash
		switch {
		case len(p.PRF.Algorithm) == 0 || p.PRF.Algorithm.Equal(oidHMACWithSHA1):
			h = sha1.New
		case p.PRF.Algorithm.Equal(oidHMACWithSHA25):
			h = sha256.New
		case p.PRF.Algorithm.Equal(oidHMACWithSHA51):
			h = sha512.New
		default:
			return nil, fmt.Errorf("%w: PBKDF2 PRF %v", ErrUnsupported, p.PRF.Algorithm)
		}
		return pbkdf2.Key(h, string(passphrase), p.Salt, p.Iterations, keyLen)
	default:
		return nil, fmt.Errorf("%w: key derivation %v", ErrUnsupported, kdf.Algorithm)
	}
}
