package oms

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/testvectors"
)

const (
	vectorIdentity = "stefanb@us.ibm.com"
	vectorIssuer   = "https://sigstore.verify.ibm.com/oauth2"
)

func mtDir(t testing.TB, elem ...string) string {
	t.Helper()
	return testvectors.Path(t, append([]string{"sigstore-model-transparency", "scripts", "tests"}, elem...)...)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	keys, err := ParsePublicKeysPEM(readFile(t, mtDir(t, "keys", "certificate", "signing-key-pub.pem")))
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

func vectorRoots(t testing.TB) []*x509.Certificate {
	t.Helper()
	roots, err := ParseCertificatesPEM(readFile(t, mtDir(t, "keys", "certificate", "ca-cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

func parseVector(t testing.TB, path string) (*Bundle, []byte) {
	t.Helper()
	raw := readFile(t, path)
	b, err := ParseBundle(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b, raw
}

// fileDigests hashes the regular files directly in dir (the vector models
// are flat), skipping names in skip.
func fileDigests(t testing.TB, dir string, skip ...string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if slices.Contains(skip, e.Name()) {
			continue
		}
		sum := sha256.Sum256(readFile(t, filepath.Join(dir, e.Name())))
		out[e.Name()] = hex.EncodeToString(sum[:])
	}
	return out
}

func checkResources(t testing.TB, st *Statement, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range st.Resources {
		got[r.Name] = r.Digest
	}
	if len(got) != len(want) {
		t.Fatalf("signed resources %v, files %v", got, want)
	}
	for n, d := range want {
		if got[n] != d {
			t.Fatalf("resource %s: signed %s, file %s", n, got[n], d)
		}
	}
}

// TestModelTransparencyVectors verifies the signature of every bundle
// model_signing wrote, and that its signed resources are the files beside
// it (the model-level comparison, ignores included, is tested in
// cmd/custody against the same vectors).
func TestModelTransparencyVectors(t *testing.T) {
	versions := []string{"v0.2.0", "v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"}
	trustedRoot := readFile(t, testvectors.Path(t, "sigstore-public-good", "trusted_root.json"))
	for _, ver := range versions {
		for _, method := range []string{"elliptic-key", "certificate", "sigstore"} {
			dir := mtDir(t, ver+"-"+method)
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			t.Run(ver+"-"+method, func(t *testing.T) {
				b, raw := parseVector(t, filepath.Join(dir, "model.sig"))
				var v *Verified
				var err error
				switch method {
				case "elliptic-key":
					v, err = VerifyKeys(b, []crypto.PublicKey{vectorKey(t)})
				case "certificate":
					v, err = VerifyCertChain(b, vectorRoots(t), time.Now())
				case "sigstore":
					v, err = VerifyKeyless(raw, KeylessPolicy{TrustedRoot: trustedRoot, Identity: vectorIdentity, Issuer: vectorIssuer})
				}
				if err != nil {
					t.Fatal(err)
				}
				want := fileDigests(t, dir, "model.sig", "ignore-me")
				if method == "elliptic-key" && (ver == "v0.3.1" || ver == "v1.0.0") {
					// Python's single-file form: the model is signme-1, named ".".
					want = map[string]string{".": want["signme-1"]}
				}
				checkResources(t, v.Statement, want)
				if ver == "v0.2.0" && v.Statement.PredicateType != LegacyPredicateType {
					t.Errorf("predicate type %s", v.Statement.PredicateType)
				}
			})
		}
	}
}

func TestKeylessWrongIdentity(t *testing.T) {
	trustedRoot := readFile(t, testvectors.Path(t, "sigstore-public-good", "trusted_root.json"))
	raw := readFile(t, mtDir(t, "v1.1.0-sigstore", "model.sig"))
	for _, p := range []KeylessPolicy{
		{TrustedRoot: trustedRoot, Identity: "mallory@example.com", Issuer: vectorIssuer},
		{TrustedRoot: trustedRoot, Identity: vectorIdentity, Issuer: "https://accounts.google.com"},
	} {
		if _, err := VerifyKeyless(raw, p); err == nil || !strings.Contains(err.Error(), "sigstore verification failed") {
			t.Errorf("identity %s issuer %s: err = %v, want a verification failure", p.Identity, p.Issuer, err)
		}
	}
}
