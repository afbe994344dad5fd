package oms

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// KeylessPolicy is what a Sigstore keyless signature must show.
type KeylessPolicy struct {
	// TrustedRoot is a Sigstore trusted_root.json (Fulcio CAs, Rekor and CT
	// log keys, timestamp authorities). Verification is fully offline.
	TrustedRoot []byte
	// Identity is the exact certificate SAN (e-mail or URI) of the signer.
	Identity string
	// Issuer is the exact OIDC issuer recorded in the certificate.
	Issuer string
}

// VerifyKeyless checks a Sigstore keyless bundle (raw JSON) with
// sigstore-go: the Fulcio certificate chain at the transparency-log time,
// the embedded SCT, the Rekor entry with its inclusion proof or promise,
// the signer identity and issuer, and the DSSE signature. It then parses
// the signed statement.
func VerifyKeyless(raw []byte, p KeylessPolicy) (*Verified, error) {
	if p.Identity == "" || p.Issuer == "" {
		return nil, errors.New("keyless verification needs both an identity and an issuer")
	}
	// custody's own strict parse first: duplicate keys, unknown fields and
	// the OMS rules for the sigstore method (certificate + tlog entries).
	ours, err := ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	m, err := ours.Method()
	if err != nil {
		return nil, err
	}
	if m != MethodSigstore || ours.DSSEEnvelope == nil {
		return nil, fmt.Errorf("bundle was signed with the %s method; --trusted-root verifies Sigstore keyless DSSE bundles only", m)
	}
	tr, err := root.NewTrustedRootFromJSON(p.TrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root: %v", ErrUnsupported, err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	verifier, err := verify.NewVerifier(tr,
		verify.WithSignedCertificateTimestamps(1),
		verify.WithTransparencyLog(1),
		verify.WithObserverTimestamps(1))
	if err != nil {
		return nil, err
	}
	id, err := verify.NewShortCertificateIdentity(p.Issuer, "", p.Identity, "")
	if err != nil {
		return nil, err
	}
	// The artifact is the model directory: its manifest is compared with the
	// signed resources by the caller, so sigstore-go is not given one.
	res, err := verifier.Verify(&b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithCertificateIdentity(id)))
	if err != nil {
		return nil, fmt.Errorf("sigstore verification failed: %w", err)
	}
	env, err := b.Envelope()
	if err != nil {
		return nil, err
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, err
	}
	ourPayload, err := ours.Payload()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(payload, ourPayload) {
		return nil, errors.New("bundle: parsers disagree about the payload")
	}
	st, err := ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement: predicate type %q in a keyless bundle", st.PredicateType)
	}
	leaf := ours.VerificationMaterial.Certificate.RawBytes
	sum := sha256.Sum256(leaf)
	signer := fmt.Sprintf("identity %q, issuer %q", p.Identity, p.Issuer)
	if res.VerifiedIdentity != nil && res.Signature != nil && res.Signature.Certificate != nil {
		signer = fmt.Sprintf("identity %q, issuer %q", res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer)
	}
	return &Verified{
		Statement: st,
		Method:    MethodSigstore,
		SignerIDs: []string{hex.EncodeToString(sum[:])},
		Signer:    signer,
	}, nil
}
