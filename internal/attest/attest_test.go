package attest

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/custody-ml/custody/internal/oms"
)

func hashModel(t *testing.T, dir string) *digest.Manifest {
	t.Helper()
	m, err := digest.Hash(t.Context(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeModel(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func input(t *testing.T, m *digest.Manifest) Input {
	lock, _ := json.Marshal(envcheck.Lock{Schema: envcheck.Schema, Packages: []envcheck.Package{{Name: "torch", Version: "2.8.0+cpu"}, {Name: "numpy", Version: "2.3.1"}}})
	return Input{
		ModelName: "sentiment@1", Manifest: m,
		Run: Run{
			ID: "run-1", Params: map[string]string{"lr": "0.001"},
			CodeRepo: "https://git.example/sentiment", CodeCommit: strings.Repeat("4b", 20),
			ImageDigest: "sha256:" + strings.Repeat("a", 64), EnvLock: lock,
		},
		Datasets:  []Dataset{{Name: "reviews", Version: "2026-01", Digest: m.OMSRoot, SourceURI: "s3://data/reviews", DVCMD5: strings.Repeat("0", 32) + ".dir"}},
		StartedOn: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC), FinishedOn: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC),
	}
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := oms.GenerateKey(oms.AlgoECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestStatementFields(t *testing.T) {
	m := hashModel(t, writeModel(t, map[string]string{"w.bin": "weights", "config.json": "{}"}))
	raw, err := Statement(input(t, m))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Statement.GetSubject()[0].GetDigest()["sha256"]; got != m.OMSRoot.Hex() {
		t.Errorf("subject digest %s, want the OMS root %s", got, m.OMSRoot.Hex())
	}
	bd := p.Provenance.GetBuildDefinition()
	if bd.GetBuildType() != BuildType || bd.GetExternalParameters().AsMap()["params"].(map[string]any)["lr"] != "0.001" {
		t.Errorf("buildDefinition = %v", bd)
	}
	want := map[string]string{
		"reviews@2026-01": "sha256=" + m.OMSRoot.Hex(),
		"source":          "gitCommit=" + strings.Repeat("4b", 20),
		"build-image":     "sha256=" + strings.Repeat("a", 64),
	}
	var pkgs []string
	for _, rd := range bd.GetResolvedDependencies() {
		if rd.GetName() == "" {
			pkgs = append(pkgs, rd.GetUri())
			continue
		}
		for alg, v := range rd.GetDigest() {
			if want[rd.GetName()] == alg+"="+v {
				delete(want, rd.GetName())
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("missing resolved dependencies: %v", want)
	}
	if strings.Join(pkgs, " ") != "pkg:pypi/numpy@2.3.1 pkg:pypi/torch@2.8.0+cpu" {
		t.Errorf("packages = %v", pkgs)
	}
	rd := p.Provenance.GetRunDetails()
	if rd.GetBuilder().GetId() != DefaultBuilderID || rd.GetMetadata().GetInvocationId() != "run-1" ||
		!rd.GetMetadata().GetStartedOn().AsTime().Equal(time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)) || rd.GetMetadata().GetFinishedOn() == nil {
		t.Errorf("runDetails = %v", rd)
	}
	if _, err := Statement(Input{ModelName: "x", Manifest: &digest.Manifest{}}); err == nil {
		t.Error("a manifest without an OMS root was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	dir := writeModel(t, map[string]string{"w.bin": "weights", "config.json": "{}"})
	m := hashModel(t, dir)
	key := mustKey(t)
	b, err := Sign(t.Context(), input(t, m), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	keys := []crypto.PublicKey{key.Public()}

	// Round trip.
	p, signers, err := Verify(bundle, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(signers) != 1 {
		t.Errorf("signers = %v", signers)
	}
	if err := p.Check(m); err != nil {
		t.Fatalf("Check on the attested model: %v", err)
	}

	// Wrong key.
	if _, _, err := Verify(bundle, []crypto.PublicKey{mustKey(t).Public()}); !errors.Is(err, ErrNotVerified) {
		t.Errorf("wrong key: %v", err)
	}

	// Tampered statement (a parameter changed after signing).
	var env map[string]any
	if err := json.Unmarshal(bundle, &env); err != nil {
		t.Fatal(err)
	}
	dsse := env["dsseEnvelope"].(map[string]any)
	payload, _ := base64.StdEncoding.DecodeString(dsse["payload"].(string))
	dsse["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"lr":"0.001"`, `"lr":"0.1"`, 1)))
	if string(payload) == dsse["payload"] {
		t.Fatal("tamper did not apply")
	}
	tampered, _ := json.Marshal(env)
	if _, _, err := Verify(tampered, keys); !errors.Is(err, ErrNotVerified) {
		t.Errorf("tampered statement: %v", err)
	}

	// Wrong model: other bytes; same bytes under other names (same OMS
	// root, different pin).
	other := hashModel(t, writeModel(t, map[string]string{"w.bin": "weights2", "config.json": "{}"}))
	if err := p.Check(other); !errors.Is(err, ErrNotVerified) {
		t.Errorf("other model: %v", err)
	}
	renamed := hashModel(t, writeModel(t, map[string]string{"w.bin": "weights", "config2.json": "{}"}))
	if renamed.OMSRoot != m.OMSRoot {
		t.Fatal("test setup: the renamed model should keep the OMS root")
	}
	if err := p.Check(renamed); !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "pinned digest") {
		t.Errorf("renamed files: %v", err)
	}
}

// TestVerifyRejectsOtherPredicates: an OMS signature bundle is not a
// provenance attestation, even with the right key.
func TestVerifyRejectsOtherPredicates(t *testing.T) {
	dir := writeModel(t, map[string]string{"w.bin": "weights"})
	key := mustKey(t)
	b, _, err := oms.SignModel(t.Context(), dir, key, nil, oms.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify(raw, []crypto.PublicKey{key.Public()}); !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "predicate type") {
		t.Errorf("OMS bundle: %v", err)
	}
}
