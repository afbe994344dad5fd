package oms

import (
	"crypto"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// BlobSignature is a cosign "sign-blob" signature: a signature over the
// SHA-256 digest of a single file. cosign writes it in two forms, both read
// by [ParseBlobSignature]:
//
//   - the old bundle, {"base64Signature": ..., "cert": ..., "rekorBundle": ...};
//   - a Sigstore bundle whose content is a messageSignature
//     {"messageDigest": {"algorithm": "SHA2_256", "digest": ...}, "signature": ...}.
//
// With --key custody checks the signature against the trusted keys only; the
// Rekor material is not consulted (as cosign's --insecure-ignore-tlog).
type BlobSignature struct {
	Signature []byte
	// Digest is the SHA-256 the signature claims to cover (bundle form
	// only); it must equal the file's.
	Digest []byte
}

// ParseBlobSignature recognises a cosign blob signature. ok is false (and
// err nil) when data is a Sigstore bundle with a DSSE envelope instead.
func ParseBlobSignature(data []byte) (sig *BlobSignature, ok bool, err error) {
	if len(data) > MaxBundleSize {
		return nil, false, fmt.Errorf("signature: %d bytes exceeds the %d-byte limit", len(data), MaxBundleSize)
	}
	var probe map[string]json.RawMessage
	if err := checkStrictJSON(data); err != nil {
		return nil, false, fmt.Errorf("signature: %w", err)
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, false, fmt.Errorf("signature: %w", err)
	}
	if _, old := probe["base64Signature"]; old {
		var o struct {
			Base64Signature string          `json:"base64Signature"`
			Cert            string          `json:"cert"`
			RekorBundle     json.RawMessage `json:"rekorBundle"`
		}
		if err := decodeStrict(data, &o); err != nil {
			return nil, true, fmt.Errorf("cosign signature: %w", err)
		}
		s, err := decodeB64(strings.TrimSpace(o.Base64Signature))
		if err != nil || len(s) == 0 {
			return nil, true, errors.New("cosign signature: base64Signature is not base64")
		}
		return &BlobSignature{Signature: s}, true, nil
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, false, err
	}
	if b.MessageSignature == nil {
		return nil, false, nil
	}
	ms := b.MessageSignature
	out := &BlobSignature{Signature: ms.Signature}
	if ms.MessageDigest != nil {
		if ms.MessageDigest.Algorithm != "SHA2_256" {
			return nil, true, fmt.Errorf("%w: message digest algorithm %q", ErrUnsupported, ms.MessageDigest.Algorithm)
		}
		if len(ms.MessageDigest.Digest) != 32 {
			return nil, true, errors.New("cosign bundle: message digest is not 32 bytes")
		}
		out.Digest = ms.MessageDigest.Digest
	}
	return out, true, nil
}

// VerifyBlob checks a cosign blob signature over a file whose SHA-256 is
// fileDigest, against trusted keys. cosign signs the SHA-256 digest for
// ECDSA and RSA keys whatever the curve; Ed25519 blob signatures need the
// whole file and are not supported.
func VerifyBlob(sig *BlobSignature, fileDigest [32]byte, keys []crypto.PublicKey) (*Verified, error) {
	if sig.Digest != nil && subtle.ConstantTimeCompare(sig.Digest, fileDigest[:]) != 1 {
		return nil, fmt.Errorf("the file's SHA-256 %x is not the signed digest %x", fileDigest, sig.Digest)
	}
	var ids []string
	for _, k := range keys {
		if _, ok := k.(ed25519.PublicKey); ok {
			continue
		}
		if verifyDigest(k, crypto.SHA256, fileDigest[:], sig.Signature) != nil {
			continue
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, errors.New("the cosign signature does not verify with the trusted key(s)")
	}
	return &Verified{Method: MethodKey, SignerIDs: ids, Signer: "key " + strings.Join(ids, ", key ")}, nil
}
