package oms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Verified is what a bundle proves once its signature holds: the signed
// statement and who signed it. The caller still has to compare the
// statement's resources with the model on disk.
type Verified struct {
	Statement *Statement
	Method    Method
	// SignerIDs are the KeyIDs of the public keys whose signatures verified
	// (one per distinct key). Threshold policies count these.
	SignerIDs []string
	// Signer describes the signer for people: a key ID, a certificate
	// subject, or a Sigstore identity and issuer.
	Signer string
}

// VerifyKeys checks a key-method bundle against trusted public keys and
// returns the signed statement. Every DSSE signature in the envelope is
// tried against every key; the bundle holds if at least one verifies. The
// bundle's own key material (hint or rawBytes) is never trusted.
func VerifyKeys(b *Bundle, keys []crypto.PublicKey) (*Verified, error) {
	m, err := b.Method()
	if err != nil {
		return nil, err
	}
	if m != MethodKey {
		return nil, fmt.Errorf("bundle was signed with the %s method; --key verifies key bundles only", m)
	}
	if len(keys) == 0 {
		return nil, errors.New("no trusted keys")
	}
	v, err := verifyEnvelope(b.DSSEEnvelope, keys)
	if err != nil {
		if hint := b.VerificationMaterial.PublicKey.Hint; hint != "" && !hasHint(keys, hint) {
			err = fmt.Errorf("%w (the bundle names key hint %s, which none of the trusted keys has)", err, hint)
		}
		return nil, err
	}
	v.Method = MethodKey
	v.Signer = "key " + strings.Join(v.SignerIDs, ", key ")
	return v, nil
}

func hasHint(keys []crypto.PublicKey, hint string) bool {
	for _, k := range keys {
		if h, err := KeyHint(k); err == nil && h == hint {
			return true
		}
	}
	return false
}

// VerifyCertChain checks a certificate-method bundle: the leaf and the
// bundle's intermediates must chain to one of roots (every certificate in
// roots is a trust anchor) at time at, the leaf must allow digitalSignature
// and, if it restricts extended key usage, codeSigning; then the DSSE
// signature must verify with the leaf's key.
//
// Certificate bundles carry no trusted signing time (custody verifies no
// timestamp-authority token for them), so callers pass the current time:
// a signature stops verifying when its certificate expires.
func VerifyCertChain(b *Bundle, roots []*x509.Certificate, at time.Time) (*Verified, error) {
	m, err := b.Method()
	if err != nil {
		return nil, err
	}
	if m != MethodCertificate {
		return nil, fmt.Errorf("bundle was signed with the %s method; --cert-chain verifies certificate bundles only", m)
	}
	if len(roots) == 0 {
		return nil, errors.New("no trusted root certificates")
	}
	var chain []*x509.Certificate
	for i, raw := range b.VerificationMaterial.X509CertificateChain.Certificates {
		c, err := x509.ParseCertificate(raw.RawBytes)
		if err != nil {
			return nil, fmt.Errorf("bundle certificate %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	leaf := chain[0]
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}); err != nil {
		return nil, fmt.Errorf("certificate chain does not verify: %w", err)
	}
	if err := checkLeafUsage(leaf); err != nil {
		return nil, err
	}
	v, err := verifyEnvelope(b.DSSEEnvelope, []crypto.PublicKey{leaf.PublicKey})
	if err != nil {
		return nil, err
	}
	fp := sha256.Sum256(leaf.Raw)
	v.Method = MethodCertificate
	v.Signer = fmt.Sprintf("certificate %q (sha256:%s) issued by %q", leaf.Subject.String(), hex.EncodeToString(fp[:]), leaf.Issuer.String())
	return v, nil
}

// verifyEnvelope checks the envelope's signatures over the DSSE PAE against
// keys, then parses the payload as an OMS statement. Signatures are checked
// before the payload is interpreted (OMS §8.3).
func verifyEnvelope(env *dsse.Envelope, keys []crypto.PublicKey) (*Verified, error) {
	payload, signers, legacy, err := verifyEnvelopeSignatures(env, keys)
	if err != nil {
		return nil, err
	}
	st, err := ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	if legacy && st.PredicateType != LegacyPredicateType {
		return nil, errors.New("a signature in the legacy model_signing 0.2.0 encoding covers a current statement")
	}
	return &Verified{Statement: st, SignerIDs: signers}, nil
}

// VerifyKeysPayload checks a key-method bundle against trusted public keys
// like [VerifyKeys], but returns the signed payload (an in-toto statement of
// any predicate, e.g. SLSA provenance) without interpreting it, and the
// KeyIDs of the keys whose signatures verified. The legacy model_signing
// 0.2.0 PAE encoding is not accepted here.
func VerifyKeysPayload(b *Bundle, keys []crypto.PublicKey) (payload []byte, signerIDs []string, err error) {
	m, err := b.Method()
	if err != nil {
		return nil, nil, err
	}
	if m != MethodKey {
		return nil, nil, fmt.Errorf("bundle was signed with the %s method; --key verifies key bundles only", m)
	}
	if len(keys) == 0 {
		return nil, nil, errors.New("no trusted keys")
	}
	payload, signerIDs, legacy, err := verifyEnvelopeSignatures(b.DSSEEnvelope, keys)
	if err != nil {
		return nil, nil, err
	}
	if legacy {
		return nil, nil, errors.New("a signature uses the legacy model_signing 0.2.0 encoding")
	}
	return payload, signerIDs, nil
}

// verifyEnvelopeSignatures checks the envelope's signatures over the DSSE
// PAE against keys and returns the payload, the KeyIDs of the keys that
// verified, and whether one did so only in the legacy encoding.
func verifyEnvelopeSignatures(env *dsse.Envelope, keys []crypto.PublicKey) ([]byte, []string, bool, error) {
	if env == nil {
		return nil, nil, false, errors.New("bundle has no DSSE envelope")
	}
	if err := checkEnvelope(env); err != nil {
		return nil, nil, false, err
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, nil, false, err
	}
	pae := dsse.PAE(env.PayloadType, payload)
	digests := map[crypto.Hash][]byte{} // the PAE hashed once per algorithm
	var legacyPAE []byte
	ids := map[string]bool{}
	var signers []string
	legacy := false
	for _, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			return nil, nil, false, err
		}
		for _, k := range keys {
			h, err := signatureHash(k)
			if err != nil {
				return nil, nil, false, err
			}
			ok := verifyPAE(k, h, pae, digests, sig) == nil
			if !ok {
				// model_signing 0.2.0 signed a malformed PAE with SHA-256
				// whatever the curve; accepted only for its own v0.1
				// predicate, checked below.
				if _, isEC := k.(*ecdsa.PublicKey); isEC {
					if legacyPAE == nil {
						legacyPAE = compatPAE(env.PayloadType, payload)
					}
					if verifyMessage(k, crypto.SHA256, legacyPAE, sig) == nil {
						ok, legacy = true, true
					}
				}
			}
			if !ok {
				continue
			}
			id, err := KeyID(k)
			if err != nil {
				return nil, nil, false, err
			}
			if !ids[id] {
				ids[id] = true
				signers = append(signers, id)
			}
		}
	}
	if len(signers) == 0 {
		return nil, nil, false, errors.New("no signature in the bundle verifies with the trusted key(s)")
	}
	return payload, signers, legacy, nil
}

// verifyPAE checks sig over the PAE with key k, hashing the PAE at most
// once per algorithm across all signatures and keys (payloads can be large).
func verifyPAE(k crypto.PublicKey, h crypto.Hash, pae []byte, digests map[crypto.Hash][]byte, sig []byte) error {
	if h == 0 {
		return verifyDigest(k, 0, pae, sig)
	}
	d, ok := digests[h]
	if !ok {
		w := h.New()
		w.Write(pae)
		d = w.Sum(nil)
		digests[h] = d
	}
	return verifyDigest(k, h, d, sig)
}

// compatPAE is the pre-authentication encoding model_signing 0.2.0 signed
// by mistake: "DSSEV1 <len(type)> <type> <len(payload)> <python repr of the
// payload bytes>", UTF-8 encoded. The repr is an injective encoding of the
// payload, so the signature still binds the exact bytes.
func compatPAE(payloadType string, payload []byte) []byte {
	var b strings.Builder
	b.WriteString("DSSEV1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.WriteString(pythonBytesRepr(payload))
	return []byte(b.String())
}

// pythonBytesRepr renders p as Python 3's repr(bytes) does.
func pythonBytesRepr(p []byte) string {
	quote := byte('\'')
	if strings.IndexByte(string(p), '\'') >= 0 && strings.IndexByte(string(p), '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte('b')
	b.WriteByte(quote)
	for _, c := range p {
		switch {
		case c == quote || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(quote)
	return b.String()
}
