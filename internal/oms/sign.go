package oms

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// dsseSigner adapts a crypto.Signer to dsse.Signer. Signatures carry an
// empty keyid, as model_signing 1.1 writes: OMS identifies the key through
// the bundle's verification material, never through keyid.
type dsseSigner struct{ key crypto.Signer }

func (s dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return signMessage(s.key, data)
}

func (s dsseSigner) KeyID() (string, error) { return "", nil }

// Sign signs st with key and returns the OMS bundle. With a certificate
// chain (leaf first, then intermediates; roots may be left out) the bundle
// carries the chain (certificate method); without, it carries the key's hint
// (key method). The leaf must hold key's public key, be valid now and allow
// digital signatures.
func Sign(ctx context.Context, st *Statement, key crypto.Signer, chain []*x509.Certificate) (*Bundle, error) {
	payload, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	return SignPayload(ctx, payload, key, chain)
}

// SignPayload signs an in-toto statement (any predicate, already serialized
// as JSON) like [Sign]: a DSSE envelope of payload type [PayloadType] in a
// Sigstore bundle v0.3, with the key's hint or the certificate chain as
// verification material. The caller vouches that payload is a statement.
func SignPayload(ctx context.Context, payload []byte, key crypto.Signer, chain []*x509.Certificate) (*Bundle, error) {
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("statement of %d bytes exceeds the %d-byte limit", len(payload), MaxPayloadSize)
	}
	vm := &VerificationMaterial{}
	if len(chain) > 0 {
		if err := checkSigningCert(chain[0], key.Public(), time.Now()); err != nil {
			return nil, err
		}
		c := &CertificateChain{}
		for _, cert := range chain {
			c.Certificates = append(c.Certificates, RawCertificate{RawBytes: cert.Raw})
		}
		vm.X509CertificateChain = c
	} else {
		hint, err := KeyHint(key.Public())
		if err != nil {
			return nil, err
		}
		vm.PublicKey = &PublicKeyIdentifier{Hint: hint}
	}
	signer, err := dsse.NewEnvelopeSigner(dsseSigner{key})
	if err != nil {
		return nil, err
	}
	env, err := signer.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return &Bundle{MediaType: BundleMediaType, VerificationMaterial: vm, DSSEEnvelope: env}, nil
}

func checkSigningCert(leaf *x509.Certificate, pub crypto.PublicKey, now time.Time) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := pub.(equaler); !ok || !k.Equal(leaf.PublicKey) {
		return errors.New("the signing certificate does not hold the signing key's public key")
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("the signing certificate is valid only from %s to %s", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return checkLeafUsage(leaf)
}

// checkLeafUsage requires the digitalSignature key usage when the leaf
// restricts key usage (RFC 5280 §4.2.1.3: an absent extension means
// unrestricted, and model_signing accepts such certificates), and the
// codeSigning extended key usage when it restricts extended key usage.
func checkLeafUsage(leaf *x509.Certificate) error {
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("the signing certificate's key usage does not include digitalSignature")
	}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		for _, u := range leaf.ExtKeyUsage {
			if u == x509.ExtKeyUsageCodeSigning || u == x509.ExtKeyUsageAny {
				return nil
			}
		}
		return errors.New("the signing certificate's extended key usage does not include codeSigning")
	}
	return nil
}
