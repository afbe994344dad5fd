package bom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/envcheck"
	"github.com/custody-ml/custody/internal/store"
)

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func dig(s string) digest.Digest { return sha256.Sum256([]byte(s)) }

func fixture(t *testing.T) Input {
	t.Helper()
	at := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	rows := int64(1000)
	lock, err := json.Marshal(envcheck.Lock{
		Schema: envcheck.Schema, CapturedAt: at,
		Python:   &envcheck.Python{Executable: "/usr/bin/python3", Version: "3.13.5", Implementation: "CPython"},
		Packages: []envcheck.Package{{Name: "numpy", Version: "2.3.1"}, {Name: "torch", Version: "2.8.0+cpu"}, {Name: "typing-extensions", Version: "4.14.0"}},
		OS:       envcheck.OS{ID: "debian", PrettyName: "Debian GNU/Linux 13 (trixie)", Arch: "amd64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Model: &store.Model{Name: "sentiment", Description: "review sentiment", Owners: []string{"ml-team"}, Tags: []string{"nlp"}},
		Version: &store.Version{
			Model: "sentiment", Version: "1",
			Manifest: digest.Manifest{
				Kind: digest.KindDirectory, Name: "model", Digest: dig("pin"), OMSRoot: dig("root"),
				Serialization: digest.Serialization{Method: "files", HashType: "sha256"},
				Resources:     []digest.Resource{{Name: "config.json", Algorithm: "sha256", Digest: sum("c")}, {Name: "weights.safetensors", Algorithm: "sha256", Digest: sum("w")}},
				Files:         []digest.File{{Name: "config.json", Size: 12}, {Name: "weights.safetensors", Size: 4096}},
			},
			Signatures: []store.Signature{{Signer: "key abc123", KeyIDs: []string{"abc123"}}},
			URI:        "s3://models/sentiment/1", Format: "safetensors", ScanVerdict: "safe", RunID: "run-1",
			CreatedBy: "ci", CreatedAt: at,
		},
		Run: &store.Run{
			ID: "run-1", Params: map[string]string{"lr": "0.001", "epochs": "3"}, Metrics: map[string]float64{"accuracy": 0.931, "f1": 0.9},
			CodeRepo: "https://git.example.com/ml/sentiment.git", CodeCommit: strings.Repeat("ab", 20),
			ImageDigest: "sha256:" + sum("image"), EnvLock: lock,
			Inputs:      []store.DatasetRef{{Name: "reviews", Version: "2026-01"}},
			OutputModel: "sentiment", OutputVersion: "1", CreatedBy: "ci", CreatedAt: at,
		},
		Datasets: []store.Dataset{{
			Name: "reviews", Version: "2026-01", Digest: dig("data"), DVCMD5: strings.Repeat("0", 32) + ".dir",
			SourceURI: "s3://data/reviews", Size: 30, Rows: &rows,
			Files: []store.DatasetFile{{Path: "a.csv", Size: 10, SHA256: sum("a"), MD5: strings.Repeat("1", 32)}, {Path: "b.csv", Size: 20, SHA256: sum("b"), MD5: strings.Repeat("2", 32)}},
		}},
	}
}

func encode(t *testing.T, in Input) []byte {
	t.Helper()
	b, err := Build(in, Options{Timestamp: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildValidates(t *testing.T) {
	full := fixture(t)
	noRun := fixture(t)
	noRun.Run, noRun.Datasets, noRun.Model = nil, nil, nil
	foreignLock := fixture(t)
	foreignLock.Run.EnvLock = json.RawMessage(`{"pip": ["x==1"]}`)
	foreignLock.Run.ImageDigest = ""
	for name, in := range map[string]Input{"full": full, "no run": noRun, "foreign lock": foreignLock} {
		t.Run(name, func(t *testing.T) {
			raw := encode(t, in)
			if err := Validate(bytes.NewReader(raw)); err != nil {
				t.Fatalf("%v\n%s", err, raw)
			}
		})
	}
}

// TestBuildContent checks the mapping of docs/bom.md on the decoded JSON.
func TestBuildContent(t *testing.T) {
	in := fixture(t)
	raw := encode(t, in)
	var doc struct {
		BOMFormat, SpecVersion, SerialNumber string
		Metadata                             struct {
			Component struct {
				Type, Name, Version, Purl string
				BOMRef                    string `json:"bom-ref"`
				Hashes                    []struct{ Alg, Content string }
				Components                []struct{ Type, Name string }
				Properties                []struct{ Name, Value string }
				ModelCard                 struct {
					ModelParameters struct {
						Datasets []struct{ Ref string }
					}
					QuantitativeAnalysis struct {
						PerformanceMetrics []struct{ Type, Value string }
					}
				}
			}
		}
		Components []struct {
			Type, Name, Version, Purl string
			BOMRef                    string `json:"bom-ref"`
			Hashes                    []struct{ Alg, Content string }
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
		Formulation []struct {
			Components []struct {
				Type   string
				Hashes []struct{ Alg, Content string }
			}
			Workflows []struct {
				UID    string
				Inputs []struct {
					Resource   *struct{ Ref string }
					Parameters []struct{ Name, Value string }
				}
				Outputs []struct {
					Resource struct{ Ref string }
				}
				ResourceReferences []struct {
					ExternalReference struct{ Type, URL, Comment string }
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Metadata.Component
	if doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.6" || !strings.HasPrefix(doc.SerialNumber, "urn:uuid:") {
		t.Errorf("header: %s %s %s", doc.BOMFormat, doc.SpecVersion, doc.SerialNumber)
	}
	if m.Type != "machine-learning-model" || m.Name != "sentiment" || m.Version != "1" {
		t.Errorf("model component: %+v", m)
	}
	if len(m.Hashes) != 1 || m.Hashes[0].Alg != "SHA-256" || m.Hashes[0].Content != in.Version.Manifest.Digest.Hex() {
		t.Errorf("model hashes = %+v", m.Hashes)
	}
	if len(m.Components) != 2 || m.Components[1].Name != "weights.safetensors" || m.Components[1].Type != "file" {
		t.Errorf("model files = %+v", m.Components)
	}
	props := map[string]string{}
	for _, p := range m.Properties {
		props[p.Name] = p.Value
	}
	for k, want := range map[string]string{"custody:oms_root": in.Version.Manifest.OMSRoot.String(), "custody:signer": "key abc123", "custody:param:lr": "0.001"} {
		if props[k] != want {
			t.Errorf("property %s = %q, want %q", k, props[k], want)
		}
	}
	if ds := m.ModelCard.ModelParameters.Datasets; len(ds) != 1 || ds[0].Ref != "dataset:reviews@2026-01" {
		t.Errorf("modelCard datasets = %+v", ds)
	}
	if pm := m.ModelCard.QuantitativeAnalysis.PerformanceMetrics; len(pm) != 2 || pm[0].Type != "accuracy" || pm[0].Value != "0.931" {
		t.Errorf("metrics = %+v", pm)
	}
	var libs []string
	for _, c := range doc.Components {
		switch c.Type {
		case "library":
			libs = append(libs, c.Purl)
		case "data":
			if c.BOMRef != "dataset:reviews@2026-01" || c.Hashes[0].Content != in.Datasets[0].Digest.Hex() {
				t.Errorf("dataset component = %+v", c)
			}
		}
	}
	if strings.Join(libs, " ") != "pkg:pypi/numpy@2.3.1 pkg:pypi/torch@2.8.0%2Bcpu pkg:pypi/typing-extensions@4.14.0" {
		t.Errorf("libraries = %v", libs)
	}
	if d := doc.Dependencies[0]; d.Ref != m.BOMRef || len(d.DependsOn) != 3 {
		t.Errorf("model dependencies = %+v", d)
	}
	if len(doc.Formulation) != 1 || len(doc.Formulation[0].Workflows) != 1 {
		t.Fatalf("formulation = %+v", doc.Formulation)
	}
	f := doc.Formulation[0]
	wf := f.Workflows[0]
	if wf.UID != "run-1" || wf.Outputs[0].Resource.Ref != m.BOMRef || wf.Inputs[0].Resource.Ref != "dataset:reviews@2026-01" || len(wf.Inputs[1].Parameters) != 2 {
		t.Errorf("workflow = %+v", wf)
	}
	if er := wf.ResourceReferences[0].ExternalReference; er.Type != "vcs" || er.URL != in.Run.CodeRepo || !strings.Contains(er.Comment, in.Run.CodeCommit) {
		t.Errorf("code reference = %+v", er)
	}
	if len(f.Components) != 1 || f.Components[0].Type != "container" || "sha256:"+f.Components[0].Hashes[0].Content != in.Run.ImageDigest {
		t.Errorf("image = %+v", f.Components)
	}
	// Same records, same BOM (serial number included).
	if again := encode(t, in); !bytes.Equal(raw, again) {
		t.Error("Build is not deterministic")
	}
}

// TestValidateRejects proves the validator is not a rubber stamp: each
// mutation of a valid BOM breaks one rule of the 1.6 schema.
func TestValidateRejects(t *testing.T) {
	raw := encode(t, fixture(t))
	cases := map[string]func(doc map[string]any){
		"unknown component type": func(doc map[string]any) {
			doc["metadata"].(map[string]any)["component"].(map[string]any)["type"] = "neural-net"
		},
		"hash not hex": func(doc map[string]any) {
			c := doc["metadata"].(map[string]any)["component"].(map[string]any)
			c["hashes"].([]any)[0].(map[string]any)["content"] = "sha256:" + strings.Repeat("a", 64)
		},
		"no bomFormat":      func(doc map[string]any) { delete(doc, "bomFormat") },
		"bad timestamp":     func(doc map[string]any) { doc["metadata"].(map[string]any)["timestamp"] = "yesterday" },
		"unknown top field": func(doc map[string]any) { doc["custody"] = true },
		"workflow without taskTypes": func(doc map[string]any) {
			delete(doc["formulation"].([]any)[0].(map[string]any)["workflows"].([]any)[0].(map[string]any), "taskTypes")
		},
		"bad serial number": func(doc map[string]any) { doc["serialNumber"] = "urn:uuid:nope" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			mutate(doc)
			bad, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(bytes.NewReader(bad)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
	if err := Validate(strings.NewReader("{")); !errors.Is(err, ErrInvalid) {
		t.Errorf("truncated JSON: %v", err)
	}
}

// cyclonedxModuleDir is where the cyclonedx-go module of this build lives.
func cyclonedxModuleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("cyclonedx-go is not in the module cache (go mod download)")
	}
	return dir
}

// TestValidateAcceptsUpstreamExamples checks the harness against outside
// ground truth: the 1.6 JSON examples cyclonedx-go ships as valid
// (machine learning and formulation among them) pass [Validate].
func TestValidateAcceptsUpstreamExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(cyclonedxModuleDir(t), "testdata", "valid-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ SpecVersion string }
		if json.Unmarshal(raw, &head) != nil || head.SpecVersion != "1.6" {
			continue
		}
		n++
		if err := Validate(bytes.NewReader(raw)); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	if n < 20 {
		t.Fatalf("only %d upstream 1.6 examples found", n)
	}
}

// TestSchemaFilesMatchModule keeps the embedded schemas equal to the ones
// shipped in the cyclonedx-go module this build uses.
func TestSchemaFilesMatchModule(t *testing.T) {
	dir := cyclonedxModuleDir(t)
	for here, there := range map[string]string{
		"bom-1.6.schema.json": "bom-1.6.schema.json", "spdx.schema.json": "spdx.schema.json",
		"jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		a, err := schemaFS.ReadFile("schema/" + here)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "schema", there))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("schema/%s differs from %s", here, filepath.Join(dir, "schema", there))
		}
	}
}
