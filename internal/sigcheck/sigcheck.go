// Package sigcheck is a TEMPORARY, minimal verifier of OpenSSF Model
// Signing (OMS) v1.0 bundles signed with a trusted ECDSA P-256 key, used by
// the registry server until the full implementation in internal/oms (branch
// "sign") is merged. It understands only the key method: a Sigstore bundle
// whose dsseEnvelope carries an in-toto Statement v1 with predicate type
// https://model_signing/signature/v1.0, signed over the DSSE
// pre-authentication encoding with ECDSA P-256 / SHA-256.
//
// TODO(lead): once internal/oms is on main, replace this package with an
// adapter over oms.ParseBundle + oms.VerifyKeys (and VerifyCertChain /
// VerifyKeyless for the other trust kinds) and delete it. Sign exists only
// so that tests can produce bundles before `custody sign` exists here.
package sigcheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/registry"
)

const (
	payloadType   = "application/vnd.in-toto+json"
	statementType = "https://in-toto.io/Statement/v1"
	predicateType = "https://model_signing/signature/v1.0"
	bundleType    = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

type bundle struct {
	MediaType            string          `json:"mediaType"`
	VerificationMaterial json.RawMessage `json:"verificationMaterial"`
	DSSEEnvelope         *envelope       `json:"dsseEnvelope"`
}

type envelope struct {
	Payload     []byte `json:"payload"`
	PayloadType string `json:"payloadType"`
	Signatures  []struct {
		KeyID string `json:"keyid,omitempty"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

type statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
	Predicate     struct {
		Serialization digest.Serialization `json:"serialization"`
		Resources     []digest.Resource    `json:"resources"`
	} `json:"predicate"`
}

// pae is the DSSE v1 pre-authentication encoding.
func pae(typ string, payload []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "DSSEv1 %d %s %d ", len(typ), typ, len(payload))
	b.Write(payload)
	return b.Bytes()
}

// Verifier checks bundles against trusted ECDSA P-256 public keys.
type Verifier struct {
	keys []*ecdsa.PublicKey
	ids  []string
}

// ParsePublicKeys reads PEM "PUBLIC KEY" blocks (ECDSA P-256).
func ParsePublicKeys(data []byte) ([]*ecdsa.PublicKey, error) {
	var out []*ecdsa.PublicKey
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok || ek.Curve != elliptic.P256() {
			return nil, errors.New("only ECDSA P-256 public keys are supported by this build")
		}
		out = append(out, ek)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM PUBLIC KEY block")
	}
	return out, nil
}

// New returns a verifier trusting keys.
func New(keys []*ecdsa.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no trusted keys")
	}
	v := &Verifier{keys: keys}
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(der)
		v.ids = append(v.ids, hex.EncodeToString(sum[:8]))
	}
	return v, nil
}

var _ registry.SignatureVerifier = (*Verifier)(nil)

// Verify implements registry.SignatureVerifier.
func (v *Verifier) Verify(_ context.Context, raw []byte, m *digest.Manifest) (registry.Signer, error) {
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return registry.Signer{}, fmt.Errorf("not a Sigstore bundle: %v", err)
	}
	if b.MediaType != bundleType || b.DSSEEnvelope == nil {
		return registry.Signer{}, errors.New("not a v0.3 Sigstore bundle with a DSSE envelope")
	}
	env := b.DSSEEnvelope
	if env.PayloadType != payloadType {
		return registry.Signer{}, fmt.Errorf("payload type %q is not in-toto", env.PayloadType)
	}
	msg := sha256.Sum256(pae(env.PayloadType, env.Payload))
	var signer []string
	for _, s := range env.Signatures {
		for i, k := range v.keys {
			if ecdsa.VerifyASN1(k, msg[:], s.Sig) {
				signer = append(signer, v.ids[i])
			}
		}
	}
	if len(signer) == 0 {
		return registry.Signer{}, errors.New("no signature verifies with a trusted key")
	}
	var st statement
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		return registry.Signer{}, fmt.Errorf("signed payload is not a statement: %v", err)
	}
	if st.Type != statementType || st.PredicateType != predicateType || len(st.Subject) != 1 {
		return registry.Signer{}, errors.New("signed statement is not an OMS v1.0 statement with one subject")
	}
	if st.Subject[0].Digest["sha256"] != m.OMSRoot.Hex() {
		return registry.Signer{}, fmt.Errorf("signature is for model root sha256:%s, not %s", st.Subject[0].Digest["sha256"], m.OMSRoot)
	}
	if len(st.Predicate.Resources) != len(m.Resources) {
		return registry.Signer{}, errors.New("signed resources differ from the manifest")
	}
	for i, r := range st.Predicate.Resources {
		if r != m.Resources[i] {
			return registry.Signer{}, fmt.Errorf("signed resource %q differs from the manifest", r.Name)
		}
	}
	return registry.Signer{Identity: "key " + signer[0], KeyIDs: signer}, nil
}

// GenerateKey returns a new P-256 key and its PEM public key.
func GenerateKey() (*ecdsa.PrivateKey, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Sign returns an OMS bundle for m signed with key. For tests only (see
// the package comment).
func Sign(key *ecdsa.PrivateKey, m *digest.Manifest) ([]byte, error) {
	var st statement
	st.Type, st.PredicateType = statementType, predicateType
	st.Subject = append(st.Subject, struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}{Name: m.Name, Digest: map[string]string{"sha256": m.OMSRoot.Hex()}})
	st.Predicate.Serialization, st.Predicate.Resources = m.Serialization, m.Resources
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	msg := sha256.Sum256(pae(payloadType, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, key, msg[:])
	if err != nil {
		return nil, err
	}
	env := map[string]any{"payload": payload, "payloadType": payloadType,
		"signatures": []map[string]string{{"sig": base64.StdEncoding.EncodeToString(sig)}}}
	return json.Marshal(map[string]any{"mediaType": bundleType, "verificationMaterial": map[string]any{"publicKey": map[string]string{"hint": strconv.Itoa(0)}}, "dsseEnvelope": env})
}
