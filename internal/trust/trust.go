// Package trust connects OMS signature verification (internal/oms) to the
// registry: [Keys] is the registry's [registry.SignatureVerifier] for
// servers configured with trusted public keys. A bundle holds only if its
// signature verifies under one of the keys (the bundle's own key material is
// never trusted) and the statement it signs names exactly the submitted
// manifest: the same OMS root digest and the same resources.
package trust

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/registry"
)

// Config is what the server trusts. At least one kind must be set; a bundle
// is checked against the kind its verification material names.
type Config struct {
	// Keys are trusted public keys (key-method bundles).
	Keys []crypto.PublicKey
	// Roots are trust anchors for certificate-method bundles; chains are
	// validated at Now.
	Roots []*x509.Certificate
	// Keyless are accepted Sigstore identities (keyless bundles): a bundle
	// holds if it verifies under any one policy.
	Keyless []oms.KeylessPolicy
	// Now is the clock for certificate chains; nil means time.Now.
	Now func() time.Time
}

// Verifier is the registry's [registry.SignatureVerifier].
type Verifier struct{ c Config }

// New returns a verifier for c.
func New(c Config) (*Verifier, error) {
	if len(c.Keys) == 0 && len(c.Roots) == 0 && len(c.Keyless) == 0 {
		return nil, errors.New("trust: nothing is trusted (no keys, certificate roots or Sigstore identities)")
	}
	for _, p := range c.Keyless {
		if p.Identity == "" || p.Issuer == "" || len(p.TrustedRoot) == 0 {
			return nil, errors.New("trust: a Sigstore identity needs a trusted root, an identity and an issuer")
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Verifier{c: c}, nil
}

// NewKeys returns a verifier trusting keys.
func NewKeys(keys []crypto.PublicKey) (*Verifier, error) { return New(Config{Keys: keys}) }

// ParseKeys reads every PEM public key in data (ECDSA P-256/P-384, Ed25519).
func ParseKeys(data []byte) ([]crypto.PublicKey, error) { return oms.ParsePublicKeysPEM(data) }

// ParseCertificates reads every PEM certificate in data.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	return oms.ParseCertificatesPEM(data)
}

var _ registry.SignatureVerifier = (*Verifier)(nil)

// Verify implements [registry.SignatureVerifier].
func (v *Verifier) Verify(_ context.Context, bundle []byte, m *digest.Manifest) (registry.Signer, error) {
	b, err := oms.ParseBundle(bundle)
	if err != nil {
		return registry.Signer{}, err
	}
	if b.DSSEEnvelope == nil {
		return registry.Signer{}, errors.New("bundle has a message signature, not an OMS DSSE envelope")
	}
	method, err := b.Method()
	if err != nil {
		return registry.Signer{}, err
	}
	var ver *oms.Verified
	switch method {
	case oms.MethodKey:
		if len(v.c.Keys) == 0 {
			return registry.Signer{}, errors.New("key-method bundle, but the server trusts no keys")
		}
		ver, err = oms.VerifyKeys(b, v.c.Keys)
	case oms.MethodCertificate:
		if len(v.c.Roots) == 0 {
			return registry.Signer{}, errors.New("certificate-method bundle, but the server trusts no certificate roots")
		}
		ver, err = oms.VerifyCertChain(b, v.c.Roots, v.c.Now())
	case oms.MethodSigstore:
		if len(v.c.Keyless) == 0 {
			return registry.Signer{}, errors.New("keyless (Sigstore) bundle, but the server trusts no Sigstore identity")
		}
		var errs []error
		for _, p := range v.c.Keyless {
			if ver, err = oms.VerifyKeyless(bundle, p); err == nil {
				break
			}
			errs = append(errs, err)
		}
		if ver == nil {
			err = errors.Join(errs...)
		}
	default:
		err = fmt.Errorf("unsupported signing method %q", method)
	}
	if err != nil {
		return registry.Signer{}, err
	}
	if err := matches(ver.Statement, m); err != nil {
		return registry.Signer{}, err
	}
	return registry.Signer{Identity: ver.Signer, KeyIDs: ver.SignerIDs}, nil
}

// matches checks that st signs exactly the model m describes: the same
// files with the same digests (in whatever order and file naming the
// Python reference writes, see digest.DiffResources).
func matches(st *oms.Statement, m *digest.Manifest) error {
	if err := st.CheckSupported(); err != nil {
		return err
	}
	if st.Serialization.Method != m.Serialization.Method || st.Serialization.Method == digest.MethodShards && st.Serialization.ShardSize != m.Serialization.ShardSize {
		return fmt.Errorf("the signature's serialization (%s) differs from the manifest's (%s)", st.Serialization.Method, m.Serialization.Method)
	}
	want := make([]digest.Resource, len(st.Resources))
	for i, r := range st.Resources {
		want[i] = digest.Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: r.Digest}
	}
	if d := digest.DiffResources(want, m.Resources, m.Serialization.Method == digest.MethodShards); !d.Empty() {
		return fmt.Errorf("the model does not match the signed manifest (%d changed, %d added, %d missing)", len(d.Changed), len(d.Added), len(d.Missing))
	}
	return nil
}

// Serialization returns the serialization recorded in a bundle's signed
// statement, so that a client hashes a model the way it was signed. It
// verifies nothing: the server does.
func Serialization(bundle []byte) (*digest.Serialization, error) {
	b, err := oms.ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	payload, err := b.Payload()
	if err != nil {
		return nil, err
	}
	st, err := oms.ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	s := st.Serialization
	return &digest.Serialization{Method: s.Method, HashType: s.HashType, ShardSize: s.ShardSize, AllowSymlinks: s.AllowSymlinks, IgnorePaths: s.IgnorePaths}, nil
}

// SignManifest returns an OMS bundle (key method) signing the model m
// describes. Tests and benchmarks use it to sign synthetic manifests;
// people use `custody sign`.
func SignManifest(ctx context.Context, key crypto.Signer, m *digest.Manifest) ([]byte, error) {
	rs := make([]oms.Resource, len(m.Resources))
	for i, r := range m.Resources {
		rs[i] = oms.Resource{Name: r.Name, Algorithm: r.Algorithm, Digest: r.Digest}
	}
	s := m.Serialization
	st, err := oms.NewStatement(m.Name, rs, oms.Serialization{Method: s.Method, HashType: s.HashType, ShardSize: s.ShardSize, AllowSymlinks: s.AllowSymlinks, IgnorePaths: s.IgnorePaths})
	if err != nil {
		return nil, err
	}
	b, err := oms.Sign(ctx, st, key, nil)
	if err != nil {
		return nil, err
	}
	return b.Marshal()
}
