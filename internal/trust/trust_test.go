package trust

import (
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/testvectors"
)

func hashDir(t *testing.T, files map[string]string, opts digest.Options) (string, *digest.Manifest) {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := digest.Hash(t.Context(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestKeys(t *testing.T) {
	_, m := hashDir(t, map[string]string{"a.bin": "aaa", "b.bin": "bbb"}, digest.Options{})
	key, err := oms.GenerateKey(oms.AlgoEd25519)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewKeys([]crypto.PublicKey{key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignManifest(t.Context(), key, m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Verify(t.Context(), b, m)
	if err != nil || !strings.HasPrefix(s.Identity, "key ") || len(s.KeyIDs) != 1 {
		t.Fatalf("Verify = %+v, %v", s, err)
	}
	// The same signature presented for other bytes.
	_, m2 := hashDir(t, map[string]string{"a.bin": "aaa", "b.bin": "bbX"}, digest.Options{})
	if _, err := v.Verify(t.Context(), b, m2); err == nil {
		t.Fatal("verified for other bytes")
	}
	// Same root, but a renamed resource (names are not in the OMS root).
	m3 := *m
	m3.Resources = append([]digest.Resource(nil), m.Resources...)
	m3.Resources[1].Name = "c.bin"
	if _, err := v.Verify(t.Context(), b, &m3); err == nil {
		t.Fatal("verified with a renamed resource")
	}
	// An untrusted key.
	other, _ := oms.GenerateKey(oms.AlgoECDSAP256)
	v2, _ := NewKeys([]crypto.PublicKey{other.Public()})
	if _, err := v2.Verify(t.Context(), b, m); err == nil {
		t.Fatal("verified with an untrusted key")
	}
	// Garbage.
	if _, err := v.Verify(t.Context(), []byte(`{"mediaType":"x"}`), m); err == nil {
		t.Fatal("verified garbage")
	}
	if _, err := NewKeys(nil); err == nil {
		t.Fatal("NewKeys(nil) succeeded")
	}
}

func TestSerialization(t *testing.T) {
	_, m := hashDir(t, map[string]string{"w.bin": "0123456789"}, digest.Options{ShardSize: 4})
	key, _ := oms.GenerateKey(oms.AlgoECDSAP256)
	b, err := SignManifest(t.Context(), key, m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serialization(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != "shards" || s.ShardSize != 4 {
		t.Fatalf("Serialization = %+v", s)
	}
	if _, err := Serialization([]byte("{}")); err == nil {
		t.Fatal("Serialization of a non-bundle succeeded")
	}
}

// TestModelSigningVectors registers-verifies the bundles the Python
// model_signing reference wrote (../shared/vectors): a P-384 key, a
// certificate chain to a test CA, and Sigstore keyless against the
// public-good trusted root, each against the manifest custody computes for
// the vector's model. The same bundles must fail under the wrong trust.
func TestModelSigningVectors(t *testing.T) {
	root := filepath.Join(testvectors.Dir(t), "sigstore-model-transparency", "scripts", "tests")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keys, err := ParseKeys(read(filepath.Join(root, "keys", "certificate", "signing-key-pub.pem")))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := ParseCertificates(read(filepath.Join(root, "keys", "certificate", "ca-cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	keyless := oms.KeylessPolicy{
		TrustedRoot: read(filepath.Join(testvectors.Dir(t), "sigstore-public-good", "trusted_root.json")),
		Identity:    "stefanb@us.ibm.com", Issuer: "https://sigstore.verify.ibm.com/oauth2",
	}
	all, err := New(Config{Keys: keys, Roots: cas, Keyless: []oms.KeylessPolicy{keyless}})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := oms.GenerateKey(oms.AlgoECDSAP384)
	wrong, _ := New(Config{Keys: []crypto.PublicKey{otherKey.Public()}})
	for _, name := range []string{"v1.1.0-elliptic-key", "v1.1.0-certificate", "v1.1.0-sigstore", "v1.0.1-certificate"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, name)
			bundle := read(filepath.Join(dir, "model.sig"))
			ser, err := Serialization(bundle)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := digest.OptionsFor(&digest.Manifest{Serialization: *ser}, digest.Options{Ignore: []string{"model.sig", "ignore-me"}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := digest.Hash(t.Context(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			s, err := all.Verify(t.Context(), bundle, m)
			if err != nil {
				t.Fatalf("vector did not verify: %v", err)
			}
			if s.Identity == "" {
				t.Fatal("no signer identity")
			}
			if _, err := wrong.Verify(t.Context(), bundle, m); err == nil {
				t.Fatal("verified under the wrong trust")
			}
			tampered := *m
			tampered.Resources = append([]digest.Resource(nil), m.Resources...)
			tampered.Resources[0].Digest = strings.Repeat("0", 64)
			if _, err := all.Verify(t.Context(), bundle, &tampered); err == nil {
				t.Fatal("verified for tampered content")
			}
		})
	}
}
