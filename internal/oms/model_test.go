package oms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/testvectors"
)

func sigFile(t testing.TB, path string) SignatureFile {
	t.Helper()
	return SignatureFile{Path: path, Data: readFile(t, path)}
}

func wantNotVerified(t testing.TB, err error, contains string) {
	t.Helper()
	if !errors.Is(err, ErrNotVerified) {
		t.Fatalf("err = %v, want ErrNotVerified", err)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %v, want it to mention %q", err, contains)
	}
}

// vectorCase is one model_signing vector and how its test-verify-*.sh
// script verifies it.
type vectorCase struct {
	name   string // directory under scripts/tests
	model  string // model path relative to that directory ("" = the directory)
	ignore []string
}

func (c vectorCase) method() string { return c.name[strings.IndexByte(c.name, '-')+1:] }

var vectorCases = []vectorCase{
	{name: "v0.2.0-certificate"},
	{name: "v0.3.1-certificate"},
	{name: "v0.3.1-elliptic-key", model: "signme-1"},
	{name: "v0.3.1-sigstore"},
	{name: "v1.0.0-certificate"},
	{name: "v1.0.0-elliptic-key", model: "signme-1"},
	{name: "v1.0.0-sigstore"},
	{name: "v1.0.1-certificate", ignore: []string{"ignore-me"}},
	{name: "v1.0.1-elliptic-key", ignore: []string{"ignore-me"}},
	{name: "v1.0.1-sigstore", ignore: []string{"ignore-me"}},
	{name: "v1.1.0-certificate", ignore: []string{"ignore-me"}},
	{name: "v1.1.0-elliptic-key", ignore: []string{"ignore-me"}},
	{name: "v1.1.0-sigstore", ignore: []string{"ignore-me"}},
}

func vectorTrust(t testing.TB, method string) Trust {
	t.Helper()
	switch method {
	case "elliptic-key", "key":
		return Trust{Keys: []crypto.PublicKey{vectorKey(t)}}
	case "certificate":
		return Trust{Roots: vectorRoots(t)}
	default:
		return Trust{Keyless: &KeylessPolicy{
			TrustedRoot: readFile(t, testvectors.Path(t, "sigstore-public-good", "trusted_root.json")),
			Identity:    vectorIdentity,
			Issuer:      vectorIssuer,
		}}
	}
}

// TestVectorModels verifies every model_signing vector as its
// test-verify-*.sh script does, then checks that tampering with a copy of
// the model or the signature makes verification fail.
func TestVectorModels(t *testing.T) {
	ctx := t.Context()
	for _, c := range vectorCases {
		t.Run(c.name, func(t *testing.T) {
			dir := mtDir(t, c.name)
			trust := vectorTrust(t, c.method())
			opts := VerifyOptions{Ignore: c.ignore}
			model := filepath.Join(dir, c.model)
			sig := sigFile(t, filepath.Join(dir, "model.sig"))
			if _, err := VerifyModel(ctx, model, []SignatureFile{sig}, trust, opts); err != nil {
				t.Fatalf("vector does not verify: %v", err)
			}

			// Without the script's ignore path, the extra file is unsigned.
			if len(c.ignore) > 0 && c.name < "v1.1.0" {
				_, err := VerifyModel(ctx, model, []SignatureFile{sig}, trust, VerifyOptions{})
				wantNotVerified(t, err, "unsigned: ignore-me")
				if _, err := VerifyModel(ctx, model, []SignatureFile{sig}, trust, VerifyOptions{IgnoreUnsignedFiles: true}); err != nil {
					t.Errorf("--ignore-unsigned-files: %v", err)
				}
			}

			tamper := func(name string, f func(dir string)) {
				t.Run(name, func(t *testing.T) {
					cp := copyDir(t, dir)
					f(cp)
					_, err := VerifyModel(ctx, filepath.Join(cp, c.model), []SignatureFile{sigFile(t, filepath.Join(cp, "model.sig"))}, trust, opts)
					wantNotVerified(t, err, "")
				})
			}
			tamper("flipped byte", func(cp string) {
				p := filepath.Join(cp, "signme-1")
				b := readFile(t, p)
				b[0] ^= 1
				os.WriteFile(p, b, 0o644)
			})
			tamper("appended byte", func(cp string) {
				f, _ := os.OpenFile(filepath.Join(cp, "signme-1"), os.O_APPEND|os.O_WRONLY, 0)
				f.Write([]byte{0})
				f.Close()
			})
			if c.model == "" {
				tamper("added file", func(cp string) { os.WriteFile(filepath.Join(cp, "extra"), nil, 0o644) })
				tamper("removed file", func(cp string) { os.Remove(filepath.Join(cp, "signme-2")) })
				tamper("renamed file", func(cp string) { os.Rename(filepath.Join(cp, "signme-2"), filepath.Join(cp, "signme-3")) })
			}
			tamper("forged payload", func(cp string) {
				editBundle(t, filepath.Join(cp, "model.sig"), func(b map[string]any) {
					env := b["dsseEnvelope"].(map[string]any)
					p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
					// Semantically the same statement, different bytes.
					p = append(p, ' ')
					env["payload"] = base64.StdEncoding.EncodeToString(p)
				})
			})
			tamper("flipped signature", func(cp string) {
				editBundle(t, filepath.Join(cp, "model.sig"), func(b map[string]any) {
					s := b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)
					sig, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
					sig[len(sig)/2] ^= 1
					s["sig"] = base64.StdEncoding.EncodeToString(sig)
				})
			})
		})
	}
}

func editBundle(t testing.TB, path string, f func(map[string]any)) {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(readFile(t, path), &b); err != nil {
		t.Fatal(err)
	}
	f(b)
	out, _ := json.Marshal(b)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVectorWrongTrust(t *testing.T) {
	ctx := t.Context()
	dir := mtDir(t, "v1.1.0-sigstore")
	sig := []SignatureFile{sigFile(t, filepath.Join(dir, "model.sig"))}
	opts := VerifyOptions{Ignore: []string{"ignore-me"}}
	tr := vectorTrust(t, "sigstore")
	for _, p := range []KeylessPolicy{
		{TrustedRoot: tr.Keyless.TrustedRoot, Identity: "someone@example.com", Issuer: vectorIssuer},
		{TrustedRoot: tr.Keyless.TrustedRoot, Identity: vectorIdentity, Issuer: "https://github.com/login/oauth"},
	} {
		_, err := VerifyModel(ctx, dir, sig, Trust{Keyless: &p}, opts)
		wantNotVerified(t, err, "")
	}
	// A key bundle checked against another key, a certificate bundle
	// against another root.
	other := mustKey(t, AlgoECDSAP384)
	kdir := mtDir(t, "v1.1.0-elliptic-key")
	_, err := VerifyModel(ctx, kdir, []SignatureFile{sigFile(t, filepath.Join(kdir, "model.sig"))}, Trust{Keys: []crypto.PublicKey{other.Public()}}, opts)
	wantNotVerified(t, err, "hint")
	cdir := mtDir(t, "v1.1.0-certificate")
	_, err = VerifyModel(ctx, cdir, []SignatureFile{sigFile(t, filepath.Join(cdir, "model.sig"))}, Trust{Roots: []*x509.Certificate{newTestCA(t, "other", nil).cert}}, opts)
	wantNotVerified(t, err, "certificate chain")
	// The method must match the trust given.
	_, err = VerifyModel(ctx, cdir, []SignatureFile{sigFile(t, filepath.Join(cdir, "model.sig"))}, vectorTrust(t, "key"), opts)
	wantNotVerified(t, err, "certificate method")
}

// TestOMSVectors runs the ossf/model-signing-spec vectors: valid bundles
// verify against the model they sign, invalid ones are rejected.
func TestOMSVectors(t *testing.T) {
	ctx := t.Context()
	base := testvectors.Path(t, "ossf-model-signing-spec", "test-vectors", "v1.0")
	// The valid vectors sign model_signing's test models; copy the model
	// files so that the vector bundle is the only signature around.
	model := func(src string) string {
		dir := filepath.Join(t.TempDir(), "model")
		os.Mkdir(dir, 0o755)
		for _, f := range []string{"signme-1", "signme-2", "ignore-me"} {
			os.WriteFile(filepath.Join(dir, f), readFile(t, mtDir(t, src, f)), 0o644)
		}
		return dir
	}
	valid := []struct{ file, method, model string }{
		{"key.bundle.json", "key", "v1.1.0-elliptic-key"},
		{"certificate.bundle.json", "certificate", "v1.1.0-elliptic-key"},
		{"sigstore.bundle.json", "sigstore", "v1.1.0-sigstore"},
	}
	for _, v := range valid {
		t.Run("valid/"+v.file, func(t *testing.T) {
			dir := model(v.model)
			sig := []SignatureFile{sigFile(t, filepath.Join(base, "valid", v.file))}
			if _, err := VerifyModel(ctx, dir, sig, vectorTrust(t, v.method), VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "signme-2"), []byte("tampered"), 0o644)
			_, err := VerifyModel(ctx, dir, sig, vectorTrust(t, v.method), VerifyOptions{})
			wantNotVerified(t, err, "changed: signme-2")
		})
	}
	for _, sub := range []string{"invalid", "invalid-payload"} {
		ents, err := os.ReadDir(filepath.Join(base, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Run(sub+"/"+e.Name(), func(t *testing.T) {
				sig := []SignatureFile{sigFile(t, filepath.Join(base, sub, e.Name()))}
				for _, m := range []string{"key", "certificate", "sigstore"} {
					for _, src := range []string{"v1.1.0-elliptic-key", "v1.1.0-sigstore"} {
						_, err := VerifyModel(ctx, model(src), sig, vectorTrust(t, m), VerifyOptions{})
						wantNotVerified(t, err, "")
					}
				}
			})
		}
	}
}

func signDir(t testing.TB, dir string, key crypto.Signer, chain []*x509.Certificate, opts SignOptions) *Bundle {
	t.Helper()
	if opts.SignaturePath == "" {
		opts.SignaturePath = filepath.Join(dir, "model.sig")
	}
	b, _, err := SignModel(t.Context(), dir, key, chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opts.SignaturePath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	files := map[string]string{"config.json": "{}", "weights/a.bin": "aaaa", "weights/b.bin": "bbbb", "é ü.txt": "unicode", "empty": ""}
	for _, algo := range []string{AlgoECDSAP256, AlgoECDSAP384, AlgoEd25519} {
		t.Run(algo, func(t *testing.T) {
			key := mustKey(t, algo)
			dir := writeModel(t, files)
			b := signDir(t, dir, key, nil, SignOptions{})
			hint, _ := KeyHint(key.Public())
			if b.VerificationMaterial.PublicKey.Hint != hint {
				t.Errorf("hint %q, want %q", b.VerificationMaterial.PublicKey.Hint, hint)
			}
			sig := []SignatureFile{sigFile(t, filepath.Join(dir, "model.sig"))}
			res, err := VerifyModel(ctx, dir, sig, Trust{Keys: []crypto.PublicKey{key.Public()}}, VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Manifest.Resources) != len(files) {
				t.Errorf("%d resources, want %d", len(res.Manifest.Resources), len(files))
			}
			// Wrong key.
			_, err = VerifyModel(ctx, dir, sig, Trust{Keys: []crypto.PublicKey{mustKey(t, algo).Public()}}, VerifyOptions{})
			wantNotVerified(t, err, "no signature")
		})
	}
	t.Run("shards, ignores, single file", func(t *testing.T) {
		key := mustKey(t, AlgoECDSAP256)
		dir := writeModel(t, map[string]string{"big": strings.Repeat("x", 1000), "skip/me": "x", "small": "y"})
		b := signDir(t, dir, key, nil, SignOptions{Digest: digest.Options{ShardSize: 300, Ignore: []string{"skip"}}})
		p, _ := b.Payload()
		st, err := ParseStatement(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Serialization.Method != "shards" || st.Serialization.ShardSize != 300 || !strings.Contains(strings.Join(st.Serialization.IgnorePaths, ","), "model.sig") || !strings.Contains(strings.Join(st.Serialization.IgnorePaths, ","), "skip") {
			t.Errorf("serialization %+v", st.Serialization)
		}
		trust := Trust{Keys: []crypto.PublicKey{key.Public()}}
		sig := []SignatureFile{sigFile(t, filepath.Join(dir, "model.sig"))}
		if _, err := VerifyModel(ctx, dir, sig, trust, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "skip", "me"), []byte("changed, but ignored by the signer"), 0o644)
		if _, err := VerifyModel(ctx, dir, sig, trust, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("x", 999)+"y"), 0o644)
		_, err = VerifyModel(ctx, dir, sig, trust, VerifyOptions{})
		wantNotVerified(t, err, "changed: big")

		file := filepath.Join(t.TempDir(), "weights.bin")
		os.WriteFile(file, []byte("single"), 0o644)
		signDir(t, file, key, nil, SignOptions{SignaturePath: file + ".sig"})
		if _, err := VerifyModel(ctx, file, []SignatureFile{sigFile(t, file+".sig")}, trust, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCertificateMethod(t *testing.T) {
	ctx := t.Context()
	root := newTestCA(t, "root", nil)
	inter := newTestCA(t, "intermediate", root)
	key := mustKey(t, AlgoECDSAP256)
	good := inter.issue(t, key.Public(), leafOpts{keyUsage: x509.KeyUsageDigitalSignature, extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	dir := writeModel(t, map[string]string{"a": "a"})
	sigPath := filepath.Join(dir, "model.sig")
	signDir(t, dir, key, []*x509.Certificate{good, inter.cert}, SignOptions{})
	trust := Trust{Roots: []*x509.Certificate{root.cert}}
	if _, err := VerifyModel(ctx, dir, []SignatureFile{sigFile(t, sigPath)}, trust, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Expired by verification time, not yet valid.
	for _, at := range []time.Time{time.Now().Add(3 * time.Hour), time.Now().Add(-3 * time.Hour)} {
		_, err := VerifyModel(ctx, dir, []SignatureFile{sigFile(t, sigPath)}, Trust{Roots: trust.Roots, Now: at}, VerifyOptions{})
		wantNotVerified(t, err, "expired or is not yet valid")
	}
	// Bundles whose chain was swapped for certificates (same key) that
	// are expired, lack digitalSignature or codeSigning, or miss the
	// intermediate.
	bad := map[string][]*x509.Certificate{
		"expired":         {inter.issue(t, key.Public(), leafOpts{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour), keyUsage: x509.KeyUsageDigitalSignature}), inter.cert},
		"key usage":       {inter.issue(t, key.Public(), leafOpts{keyUsage: x509.KeyUsageKeyEncipherment}), inter.cert},
		"ext key usage":   {inter.issue(t, key.Public(), leafOpts{keyUsage: x509.KeyUsageDigitalSignature, extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), inter.cert},
		"no intermediate": {good},
		"other root":      {newTestCA(t, "mallory", nil).issue(t, key.Public(), leafOpts{keyUsage: x509.KeyUsageDigitalSignature})},
	}
	for name, chain := range bad {
		t.Run(name, func(t *testing.T) {
			cp := filepath.Join(t.TempDir(), "model.sig")
			os.WriteFile(cp, readFile(t, sigPath), 0o644)
			editBundle(t, cp, func(b map[string]any) {
				var certs []any
				for _, c := range chain {
					certs = append(certs, map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(c.Raw)})
				}
				b["verificationMaterial"].(map[string]any)["x509CertificateChain"] = map[string]any{"certificates": certs}
			})
			_, err := VerifyModel(ctx, dir, []SignatureFile{sigFile(t, cp)}, trust, VerifyOptions{})
			wantNotVerified(t, err, "")
		})
	}
	// Signing refuses certificates that could not verify.
	if _, _, err := SignModel(ctx, dir, key, bad["key usage"], SignOptions{}); err == nil {
		t.Error("signed with a certificate without digitalSignature")
	}
	if _, _, err := SignModel(ctx, dir, mustKey(t, AlgoECDSAP256), []*x509.Certificate{good}, SignOptions{}); err == nil {
		t.Error("signed with a certificate for another key")
	}
}

// TestReplayAndSwap: a valid signature of one model does not verify
// another, and a signature moved into another bundle does not verify.
func TestReplayAndSwap(t *testing.T) {
	ctx := t.Context()
	key := mustKey(t, AlgoECDSAP256)
	trust := Trust{Keys: []crypto.PublicKey{key.Public()}}
	a := writeModel(t, map[string]string{"w": "model A"})
	b := writeModel(t, map[string]string{"w": "model B"})
	signDir(t, a, key, nil, SignOptions{})
	signDir(t, b, key, nil, SignOptions{})
	_, err := VerifyModel(ctx, b, []SignatureFile{sigFile(t, filepath.Join(a, "model.sig"))}, trust, VerifyOptions{})
	wantNotVerified(t, err, "changed: w")

	// Swap: A's payload with B's signature.
	swapped := filepath.Join(t.TempDir(), "swapped.sig")
	os.WriteFile(swapped, readFile(t, filepath.Join(a, "model.sig")), 0o644)
	var bb map[string]any
	json.Unmarshal(readFile(t, filepath.Join(b, "model.sig")), &bb)
	editBundle(t, swapped, func(m map[string]any) {
		m["dsseEnvelope"].(map[string]any)["signatures"] = bb["dsseEnvelope"].(map[string]any)["signatures"]
	})
	_, err = VerifyModel(ctx, a, []SignatureFile{sigFile(t, swapped)}, trust, VerifyOptions{})
	wantNotVerified(t, err, "no signature")

	// The payload type is covered by the signature (DSSE PAE).
	editBundle(t, swapped, func(m map[string]any) {
		m["dsseEnvelope"] = bb["dsseEnvelope"]
		m["dsseEnvelope"].(map[string]any)["payloadType"] = "application/json"
	})
	_, err = VerifyModel(ctx, b, []SignatureFile{sigFile(t, swapped)}, trust, VerifyOptions{})
	wantNotVerified(t, err, "payload type")
}

func TestThreshold(t *testing.T) {
	ctx := t.Context()
	k1, k2, k3 := mustKey(t, AlgoECDSAP256), mustKey(t, AlgoEd25519), mustKey(t, AlgoECDSAP384)
	dir := writeModel(t, map[string]string{"w": "weights"})
	// Reviewers' signatures live beside the model: a signature inside it
	// would be signed by the next reviewer.
	s1 := filepath.Join(t.TempDir(), "alice.sig")
	s2 := filepath.Join(t.TempDir(), "bob.sig")
	signDir(t, dir, k1, nil, SignOptions{SignaturePath: s1})
	signDir(t, dir, k2, nil, SignOptions{SignaturePath: s2})
	all := []crypto.PublicKey{k1.Public(), k2.Public(), k3.Public()}
	sigs := []SignatureFile{sigFile(t, s1), sigFile(t, s2)}
	res, err := VerifyModel(ctx, dir, sigs, Trust{Keys: all, Threshold: 2}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signers) != 2 {
		t.Errorf("signers %v", res.Signers)
	}
	_, err = VerifyModel(ctx, dir, sigs, Trust{Keys: all, Threshold: 3}, VerifyOptions{})
	wantNotVerified(t, err, "2 distinct trusted signer(s), threshold 3")
	// The same signature twice is one signer.
	_, err = VerifyModel(ctx, dir, []SignatureFile{sigFile(t, s1), sigFile(t, s1)}, Trust{Keys: all, Threshold: 2}, VerifyOptions{})
	wantNotVerified(t, err, "1 distinct trusted signer(s), threshold 2")
	// An untrusted signer does not count.
	_, err = VerifyModel(ctx, dir, sigs, Trust{Keys: []crypto.PublicKey{k1.Public(), k3.Public()}, Threshold: 2}, VerifyOptions{})
	wantNotVerified(t, err, "threshold 2")
	// A signer whose manifest does not match the model does not count.
	other := writeModel(t, map[string]string{"w": "other weights"})
	s3 := filepath.Join(t.TempDir(), "carol.sig")
	signDir(t, other, k3, nil, SignOptions{SignaturePath: s3})
	_, err = VerifyModel(ctx, dir, append(sigs[:1:1], sigFile(t, s3)), Trust{Keys: all, Threshold: 2}, VerifyOptions{})
	wantNotVerified(t, err, "changed: w")
}

// TestCosignBlob builds cosign sign-blob signatures in both forms (as
// cosign writes them: an ECDSA signature over the file's SHA-256).
func TestCosignBlob(t *testing.T) {
	ctx := t.Context()
	key := mustKey(t, AlgoECDSAP256)
	file := filepath.Join(t.TempDir(), "model.gguf")
	os.WriteFile(file, []byte("gguf weights"), 0o644)
	sum := sha256.Sum256([]byte("gguf weights"))
	sig, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), sum[:])
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := KeyHint(key.Public())
	forms := map[string]string{
		"old": `{"base64Signature":"` + base64.StdEncoding.EncodeToString(sig) + `","cert":"","rekorBundle":null}`,
		"new": `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"` + hint +
			`"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"` + base64.StdEncoding.EncodeToString(sum[:]) +
			`"},"signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}}`,
	}
	for name, body := range forms {
		t.Run(name, func(t *testing.T) {
			s := SignatureFile{Path: "blob.sig", Data: []byte(body)}
			if _, err := VerifyModel(ctx, file, []SignatureFile{s}, Trust{Keys: []crypto.PublicKey{key.Public()}}, VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyModel(ctx, file, []SignatureFile{s}, Trust{Keys: []crypto.PublicKey{mustKey(t, AlgoECDSAP256).Public()}}, VerifyOptions{})
			wantNotVerified(t, err, "cosign signature does not verify")
			other := filepath.Join(t.TempDir(), "model.gguf")
			os.WriteFile(other, []byte("gguf weightz"), 0o644)
			_, err = VerifyModel(ctx, other, []SignatureFile{s}, Trust{Keys: []crypto.PublicKey{key.Public()}}, VerifyOptions{})
			wantNotVerified(t, err, "")
			_, err = VerifyModel(ctx, filepath.Dir(file), []SignatureFile{s}, Trust{Keys: []crypto.PublicKey{key.Public()}}, VerifyOptions{})
			wantNotVerified(t, err, "directory")
		})
	}
}

func TestSignatureFileLeftOut(t *testing.T) {
	key := mustKey(t, AlgoEd25519)
	dir := writeModel(t, map[string]string{"a": "a"})
	custom := filepath.Join(dir, "sigs", "release.sig")
	os.Mkdir(filepath.Dir(custom), 0o755)
	b := signDir(t, dir, key, nil, SignOptions{SignaturePath: custom})
	p, _ := b.Payload()
	st, _ := ParseStatement(p)
	for _, r := range st.Resources {
		if strings.Contains(r.Name, "sig") {
			t.Errorf("signature file in the manifest: %v", st.Resources)
		}
	}
	if _, err := VerifyModel(context.Background(), dir, []SignatureFile{sigFile(t, custom)}, Trust{Keys: []crypto.PublicKey{key.Public()}}, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}
