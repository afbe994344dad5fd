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
	"errors"
	"fmt"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/registry"
)

// Keys verifies key-method OMS bundles against trusted public keys.
type Keys struct{ keys []crypto.PublicKey }

// NewKeys returns a verifier trusting keys.
func NewKeys(keys []crypto.PublicKey) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("trust: no trusted keys")
	}
	return &Keys{keys: keys}, nil
}

// ParseKeys reads every PEM public key in data (ECDSA P-256/P-384, Ed25519).
func ParseKeys(data []byte) ([]crypto.PublicKey, error) { return oms.ParsePublicKeysPEM(data) }

var _ registry.SignatureVerifier = (*Keys)(nil)

// Verify implements [registry.SignatureVerifier].
func (k *Keys) Verify(_ context.Context, bundle []byte, m *digest.Manifest) (registry.Signer, error) {
	b, err := oms.ParseBundle(bundle)
	if err != nil {
		return registry.Signer{}, err
	}
	v, err := oms.VerifyKeys(b, k.keys)
	if err != nil {
		return registry.Signer{}, err
	}
	if err := matches(v.Statement, m); err != nil {
		return registry.Signer{}, err
	}
	return registry.Signer{Identity: v.Signer, KeyIDs: v.SignerIDs}, nil
}

// matches checks that st signs exactly the model m describes.
func matches(st *oms.Statement, m *digest.Manifest) error {
	if digest.Digest(st.RootDigest) != m.OMSRoot {
		return fmt.Errorf("the signature is for model root %s, not %s", digest.Digest(st.RootDigest), m.OMSRoot)
	}
	if len(st.Resources) != len(m.Resources) {
		return fmt.Errorf("the signature lists %d resources, the manifest %d", len(st.Resources), len(m.Resources))
	}
	for i, r := range st.Resources {
		mr := m.Resources[i]
		if r.Name != mr.Name || r.Algorithm != mr.Algorithm || r.Digest != mr.Digest {
			return fmt.Errorf("signed resource %q differs from the manifest's %q", r.Name, mr.Name)
		}
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
