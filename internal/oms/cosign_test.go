package oms

import (
	"crypto"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cosignBinary finds cosign on PATH. CI installs it (scripts/install-tools.sh)
// and must run these tests, so there a missing cosign fails instead of
// skipping.
func cosignBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cosign is not on PATH; scripts/install-tools.sh installs it")
		}
		t.Skip("cosign is not on PATH (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)")
	}
	return p
}

func runCosign(t *testing.T, cosign, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cosign, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=cosign-test-pw", "COSIGN_EXPERIMENTAL=0", "TUF_ROOT="+filepath.Join(dir, "tuf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCosignInterop checks both directions with the real cosign: bundles
// custody writes verify with 'cosign verify-blob-attestation', and custody
// verifies cosign's sign-blob signatures (old and bundle form) and signs
// with cosign's encrypted keys.
func TestCosignInterop(t *testing.T) {
	cosign := cosignBinary(t)
	ctx := t.Context()
	dir := t.TempDir()
	if out, err := runCosign(t, cosign, dir, "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	emptyRoot := filepath.Join(dir, "empty_root.json")
	os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	cosignKey, err := ParsePrivateKeyPEM(readFile(t, filepath.Join(dir, "cosign.key")), Passphrases{Cosign: pass("cosign-test-pw")})
	if err != nil {
		t.Fatalf("reading cosign's private key: %v", err)
	}

	keys := map[string]crypto.Signer{
		"cosign key":  cosignKey,
		AlgoECDSAP256: mustKey(t, AlgoECDSAP256),
		AlgoECDSAP384: mustKey(t, AlgoECDSAP384),
		AlgoEd25519:   mustKey(t, AlgoEd25519),
	}
	for name, key := range keys {
		t.Run("custody bundle verifies with cosign/"+name, func(t *testing.T) {
			model := writeModel(t, map[string]string{"config.json": "{}", "w/weights.bin": "weights"})
			sig := filepath.Join(model, "model.sig")
			b := signDir(t, model, key, nil, SignOptions{})
			p, _ := b.Payload()
			st, _ := ParseStatement(p)
			pub, _ := MarshalPublicKeyPEM(key.Public())
			pubPath := filepath.Join(t.TempDir(), "key.pub")
			os.WriteFile(pubPath, pub, 0o644)
			args := []string{"verify-blob-attestation", "--key", pubPath, "--bundle", sig, "--new-bundle-format",
				"--trusted-root", emptyRoot, "--insecure-ignore-tlog",
				"--digestAlg", "sha256", "--type", PredicateType}
			if name == AlgoECDSAP384 {
				// cosign hashes ECDSA signatures with SHA-256 unless told;
				// OMS (and model_signing) use SHA-384 with P-384.
				args = append(args, "--signature-digest-algorithm", "sha384")
			}
			out, err := runCosign(t, cosign, dir, append(args, "--digest", hex.EncodeToString(st.RootDigest[:]))...)
			if err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("cosign rejects custody's bundle: %v\n%s", err, out)
			}
			// cosign really checks the subject: another digest fails.
			out, err = runCosign(t, cosign, dir, append(args, "--digest", strings.Repeat("0", 64))...)
			if err == nil {
				t.Fatalf("cosign accepted a wrong subject digest:\n%s", out)
			}
		})
	}

	t.Run("cosign sign-blob verifies with custody", func(t *testing.T) {
		blob := filepath.Join(dir, "model.gguf")
		os.WriteFile(blob, []byte("gguf bytes"), 0o644)
		pubs, err := ParsePublicKeysPEM(readFile(t, filepath.Join(dir, "cosign.pub")))
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]string{{"--bundle", "old.json"}, {"--new-bundle-format", "--bundle", "new.json"}} {
			args := append([]string{"sign-blob", "--yes", "--key", "cosign.key", "--tlog-upload=false"}, form...)
			if out, err := runCosign(t, cosign, dir, append(args, blob)...); err != nil {
				t.Fatalf("cosign %v: %v\n%s", args, err, out)
			}
			s := sigFile(t, filepath.Join(dir, form[len(form)-1]))
			if _, err := VerifyModel(ctx, blob, []SignatureFile{s}, Trust{Keys: pubs}, VerifyOptions{}); err != nil {
				t.Fatalf("%v: %v", form, err)
			}
			other := filepath.Join(t.TempDir(), "model.gguf")
			os.WriteFile(other, []byte("gguf bytez"), 0o644)
			_, err := VerifyModel(ctx, other, []SignatureFile{s}, Trust{Keys: pubs}, VerifyOptions{})
			wantNotVerified(t, err, "")
		}
	})
}
