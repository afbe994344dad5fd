package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSignWithCertificate runs 'custody sign --cert --chain' and 'custody
// verify --cert-chain' with a throwaway CA: the certificate method end to
// end, and the exit codes for an untrusted root and an expired leaf.
func TestSignWithCertificate(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	newCert := func(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca := newCert(caTmpl, caTmpl, caKey.Public(), caKey)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	inter := newCert(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, ca, interKey.Public(), caKey)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	leaf := newCert(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "release signer"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, inter, leafKey.Public(), interKey)
	expired := newCert(&x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "old signer"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}, inter, leafKey.Public(), interKey)

	der, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	keyPath := write("signer.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	leafPath := write("leaf.pem", certPEM(leaf))
	interPath := write("inter.pem", certPEM(inter))
	rootPath := write("root.pem", certPEM(ca))
	otherPath := write("other.pem", certPEM(inter)) // trusting only the intermediate also works: every --cert-chain certificate is an anchor
	model := filepath.Join(dir, "model")
	os.Mkdir(model, 0o755)
	write("model/weights.bin", []byte("weights"))

	ctx := t.Context()
	if code := run(ctx, []string{"sign", model, "--key", keyPath, "--cert", leafPath, "--chain", interPath}); code != 0 {
		t.Fatalf("sign exit %d", code)
	}
	if code := run(ctx, []string{"verify", model, "--cert-chain", rootPath}); code != 0 {
		t.Fatalf("verify exit %d", code)
	}
	if code := run(ctx, []string{"verify", model, "--cert-chain", otherPath}); code != 0 {
		t.Fatalf("verify with the intermediate as anchor: exit %d", code)
	}
	// A root that did not issue the chain: does not hold.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherTmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "other"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	otherRoot := write("other-root.pem", certPEM(newCert(otherTmpl, otherTmpl, otherKey.Public(), otherKey)))
	if code := run(ctx, []string{"verify", model, "--cert-chain", otherRoot}); code != 1 {
		t.Fatalf("verify against another root: exit %d, want 1", code)
	}
	// Without the intermediate in the bundle, the chain does not build.
	if code := run(ctx, []string{"sign", model, "--key", keyPath, "--cert", leafPath, "--sig", filepath.Join(dir, "nochain.sig")}); code != 0 {
		t.Fatalf("sign exit %d", code)
	}
	if code := run(ctx, []string{"verify", model, "--cert-chain", rootPath, "--sig", filepath.Join(dir, "nochain.sig")}); code != 1 {
		t.Fatalf("verify without intermediate: exit %d, want 1", code)
	}
	// Signing refuses an expired certificate (exit 2: nothing was signed).
	expiredPath := write("expired.pem", certPEM(expired))
	if code := run(ctx, []string{"sign", model, "--key", keyPath, "--cert", expiredPath, "--sig", filepath.Join(dir, "expired.sig")}); code != 2 {
		t.Fatalf("sign with an expired certificate: exit %d, want 2", code)
	}
	// Tampering after signing: does not hold.
	write("model/weights.bin", []byte("weightz"))
	if code := run(ctx, []string{"verify", model, "--cert-chain", rootPath}); code != 1 {
		t.Fatalf("verify tampered: exit %d, want 1", code)
	}
}
