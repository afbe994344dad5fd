package oms

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
)

func pass(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }

func TestVectorKeyHint(t *testing.T) {
	// model_signing 1.1 wrote this hint for the vectors' P-384 key.
	got, err := KeyHint(vectorKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e"; got != want {
		t.Errorf("hint %s, want %s", got, want)
	}
}

func TestPrivateKeyFormats(t *testing.T) {
	for _, algo := range []string{AlgoECDSAP256, AlgoECDSAP384, AlgoEd25519} {
		t.Run(algo, func(t *testing.T) {
			key := mustKey(t, algo)
			type equaler interface{ Equal(crypto.PrivateKey) bool }

			plain, err := MarshalPrivateKeyPEM(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePrivateKeyPEM(plain, Passphrases{})
			if err != nil || !got.(equaler).Equal(key) {
				t.Fatalf("plain PKCS#8 round trip: %v", err)
			}

			enc, err := MarshalPrivateKeyPEM(key, []byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(enc); b.Type != "ENCRYPTED PRIVATE KEY" {
				t.Fatalf("encrypted key PEM type %q", b.Type)
			}
			got, err = ParsePrivateKeyPEM(enc, Passphrases{PKCS8: pass("correct horse")})
			if err != nil || !got.(equaler).Equal(key) {
				t.Fatalf("encrypted PKCS#8 round trip: %v", err)
			}
			if _, err := ParsePrivateKeyPEM(enc, Passphrases{PKCS8: pass("wrong")}); !errors.Is(err, ErrPassphrase) {
				t.Errorf("wrong passphrase: err = %v", err)
			}
			if _, err := ParsePrivateKeyPEM(enc, Passphrases{}); !errors.Is(err, ErrPassphrase) {
				t.Errorf("no passphrase: err = %v", err)
			}

			// cosign's format: scrypt + secretbox around PKCS#8 DER.
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			box, err := encrypted.Encrypt(der, []byte("cosign pass"))
			if err != nil {
				t.Fatal(err)
			}
			cos := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: box})
			got, err = ParsePrivateKeyPEM(cos, Passphrases{Cosign: pass("cosign pass")})
			if err != nil || !got.(equaler).Equal(key) {
				t.Fatalf("cosign key: %v", err)
			}
			if _, err := ParsePrivateKeyPEM(cos, Passphrases{Cosign: pass("nope")}); !errors.Is(err, ErrPassphrase) {
				t.Errorf("cosign key, wrong passphrase: err = %v", err)
			}
		})
	}
}

// TestOpenSSLInterop: OpenSSL reads custody's encrypted keys, and custody
// reads OpenSSL's default (PBKDF2, AES-256-CBC) encrypted keys.
func TestOpenSSLInterop(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not on PATH (scripts/install-tools.sh installs it)")
		}
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	key := mustKey(t, AlgoECDSAP256)
	enc, _ := MarshalPrivateKeyPEM(key, []byte("pw"))
	p := filepath.Join(dir, "custody.key")
	os.WriteFile(p, enc, 0o600)
	out, err := exec.Command(openssl, "pkey", "-in", p, "-passin", "pass:pw", "-pubout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl cannot read custody's encrypted key: %v\n%s", err, out)
	}
	pubs, err := ParsePublicKeysPEM(out)
	if err != nil || !pubs[0].(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatalf("openssl derived another public key: %v", err)
	}

	plain, _ := MarshalPrivateKeyPEM(key, nil)
	os.WriteFile(filepath.Join(dir, "plain.key"), plain, 0o600)
	for _, args := range [][]string{
		{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"},
		{"pkcs8", "-topk8", "-v2", "aes-128-cbc"},
		{"pkcs8", "-topk8", "-scrypt"},
	} {
		o := filepath.Join(dir, "openssl.key")
		cmd := exec.Command(openssl, append(args, "-in", filepath.Join(dir, "plain.key"), "-out", o, "-passout", "pass:pw")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		got, err := ParsePrivateKeyPEM(readFile(t, o), Passphrases{PKCS8: pass("pw")})
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) {
			t.Fatalf("%v: another key", args)
		}
	}
}
