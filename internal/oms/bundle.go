package oms

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// BundleMediaType is the media type of the Sigstore bundles custody writes.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// MaxBundleSize caps a signature file: the base64 payload plus certificates
// and transparency-log material.
const MaxBundleSize = MaxPayloadSize/3*4 + 1<<20

// bundleMediaTypes are the Sigstore bundle versions whose JSON form custody
// reads. They differ only in which verification material is allowed, which
// custody checks per signing method.
var bundleMediaTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle+json;version=0.1": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	BundleMediaType: true,
}

// Bundle is the JSON form of a Sigstore bundle (sigstore_bundle.proto) as
// OMS and cosign use it. Transparency-log and timestamp material is kept raw:
// only the keyless path checks it, through sigstore-go.
type Bundle struct {
	MediaType            string                `json:"mediaType"`
	VerificationMaterial *VerificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *dsse.Envelope        `json:"dsseEnvelope,omitempty"`
	MessageSignature     *MessageSignature     `json:"messageSignature,omitempty"`
}

// VerificationMaterial holds exactly one of PublicKey (key method),
// X509CertificateChain (certificate method) or Certificate (Sigstore
// keyless).
type VerificationMaterial struct {
	PublicKey                 *PublicKeyIdentifier `json:"publicKey,omitempty"`
	X509CertificateChain      *CertificateChain    `json:"x509CertificateChain,omitempty"`
	Certificate               *RawCertificate      `json:"certificate,omitempty"`
	TlogEntries               []json.RawMessage    `json:"tlogEntries,omitempty"`
	TimestampVerificationData json.RawMessage      `json:"timestampVerificationData,omitempty"`
}

// PublicKeyIdentifier names the signing key. model_signing >= 1.1 and
// custody write Hint = hex(SHA-256(PEM public key)); older model_signing
// wrote the PEM key itself in RawBytes. Neither is trusted: the verifier's
// own keys decide.
type PublicKeyIdentifier struct {
	Hint       string `json:"hint,omitempty"`
	RawBytes   []byte `json:"rawBytes,omitempty"`
	KeyDetails string `json:"keyDetails,omitempty"`
}

// CertificateChain is the leaf certificate followed by its CA chain.
type CertificateChain struct {
	Certificates []RawCertificate `json:"certificates"`
}

// RawCertificate is one DER certificate (base64 in JSON).
type RawCertificate struct {
	RawBytes []byte `json:"rawBytes"`
}

// MessageSignature is a signature over a blob's digest (cosign sign-blob).
type MessageSignature struct {
	MessageDigest *MessageDigest `json:"messageDigest,omitempty"`
	Signature     []byte         `json:"signature"`
}

// MessageDigest is the digest a MessageSignature covers.
type MessageDigest struct {
	Algorithm string `json:"algorithm"`
	Digest    []byte `json:"digest"`
}

// Method is the OMS signing method a bundle's verification material implies.
type Method string

// Signing methods (OMS §4.1).
const (
	MethodKey         Method = "key"
	MethodCertificate Method = "certificate"
	MethodSigstore    Method = "sigstore"
)

// ParseBundle parses a Sigstore bundle strictly: size capped, one JSON value
// with no duplicate keys and no unknown fields, a known media type, exactly
// one kind of verification material and exactly one of a DSSE envelope or a
// message signature. A DSSE envelope must carry an in-toto payload and at
// least one signature.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %d bytes exceeds the %d-byte limit", len(data), MaxBundleSize)
	}
	var b Bundle
	if err := decodeStrict(data, &b); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !bundleMediaTypes[b.MediaType] {
		return nil, fmt.Errorf("bundle: unknown media type %q", b.MediaType)
	}
	if _, err := b.Method(); err != nil {
		return nil, err
	}
	switch {
	case b.DSSEEnvelope != nil && b.MessageSignature != nil:
		return nil, errors.New("bundle: has both a DSSE envelope and a message signature")
	case b.DSSEEnvelope != nil:
		if err := checkEnvelope(b.DSSEEnvelope); err != nil {
			return nil, err
		}
	case b.MessageSignature != nil:
		if len(b.MessageSignature.Signature) == 0 {
			return nil, errors.New("bundle: message signature is empty")
		}
	default:
		return nil, errors.New("bundle: has neither a DSSE envelope nor a message signature")
	}
	return &b, nil
}

// Method reports the signing method from the verification material.
func (b *Bundle) Method() (Method, error) {
	vm := b.VerificationMaterial
	if vm == nil {
		return "", errors.New("bundle: no verification material")
	}
	var m []Method
	if vm.PublicKey != nil {
		if vm.PublicKey.Hint == "" && len(vm.PublicKey.RawBytes) == 0 {
			return "", errors.New("bundle: publicKey has neither hint nor rawBytes")
		}
		m = append(m, MethodKey)
	}
	if vm.X509CertificateChain != nil {
		if len(vm.X509CertificateChain.Certificates) == 0 {
			return "", errors.New("bundle: empty certificate chain")
		}
		for _, c := range vm.X509CertificateChain.Certificates {
			if len(c.RawBytes) == 0 {
				return "", errors.New("bundle: empty certificate in chain")
			}
		}
		m = append(m, MethodCertificate)
	}
	if vm.Certificate != nil {
		if len(vm.Certificate.RawBytes) == 0 {
			return "", errors.New("bundle: empty certificate")
		}
		m = append(m, MethodSigstore)
	}
	if len(m) != 1 {
		return "", fmt.Errorf("bundle: verification material must hold exactly one of publicKey, x509CertificateChain, certificate (found %d)", len(m))
	}
	if m[0] == MethodSigstore && len(vm.TlogEntries) == 0 && b.DSSEEnvelope != nil {
		return "", errors.New("bundle: a Sigstore certificate bundle must carry transparency-log entries")
	}
	return m[0], nil
}

// ParseEnvelope parses a bare DSSE envelope (JSON) with the same checks as
// the envelope inside a bundle.
func ParseEnvelope(data []byte) (*dsse.Envelope, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("envelope: %d bytes exceeds the %d-byte limit", len(data), MaxBundleSize)
	}
	var e dsse.Envelope
	if err := decodeStrict(data, &e); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if err := checkEnvelope(&e); err != nil {
		return nil, err
	}
	return &e, nil
}

func checkEnvelope(e *dsse.Envelope) error {
	if e.PayloadType != PayloadType {
		return fmt.Errorf("envelope: payload type %q, want %q", e.PayloadType, PayloadType)
	}
	if len(e.Signatures) == 0 {
		return errors.New("envelope: no signatures")
	}
	if len(e.Signatures) > 64 {
		return errors.New("envelope: more than 64 signatures")
	}
	for _, s := range e.Signatures {
		if s.Sig == "" {
			return errors.New("envelope: empty signature")
		}
		if _, err := decodeB64(s.Sig); err != nil {
			return fmt.Errorf("envelope: signature: %w", err)
		}
	}
	p, err := decodeB64(e.Payload)
	if err != nil {
		return fmt.Errorf("envelope: payload: %w", err)
	}
	if len(p) == 0 {
		return errors.New("envelope: empty payload")
	}
	return nil
}

// decodeB64 decodes standard or URL-safe base64, padded or not, as the DSSE
// envelope spec allows.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Payload returns the decoded DSSE payload.
func (b *Bundle) Payload() ([]byte, error) {
	if b.DSSEEnvelope == nil {
		return nil, errors.New("bundle: no DSSE envelope")
	}
	return decodeB64(b.DSSEEnvelope.Payload)
}

// Marshal returns the bundle's JSON, indented for people who read it.
func (b *Bundle) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
