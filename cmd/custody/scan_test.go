package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// scanTestdata is internal/scan/testdata, located from this file.
func scanTestdata(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "internal", "scan", "testdata")
}

func init() {
	// scanfixtures DIR... copies internal/scan/testdata/DIR into $WORK/DIR.
	scriptCmds["scanfixtures"] = func(ts *testscript.TestScript, neg bool, args []string) {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "..", "..", "internal", "scan", "testdata")
		for _, d := range args {
			entries, err := os.ReadDir(filepath.Join(src, d))
			ts.Check(err)
			ts.Check(os.MkdirAll(ts.MkAbs(d), 0o755))
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(src, d, e.Name()))
				ts.Check(err)
				ts.Check(os.WriteFile(filepath.Join(ts.MkAbs(d), e.Name()), b, 0o644))
			}
		}
	}
}

func runScanCode(t *testing.T, opts scanOptions, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	if opts.Format == "" {
		opts.Format = "text"
	}
	return exitCode(runScan(t.Context(), &opts, args)), out.String()
}

func TestScanExitCodes(t *testing.T) {
	td := scanTestdata(t)
	benign := filepath.Join(td, "benign")
	evil := filepath.Join(td, "malicious")
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"allow": ["sklearn.*", "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every benign file but TorchScript, whose code is never analysed.
	var analysable []string
	entries, err := os.ReadDir(benign)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "torchscript_linear.pt" {
			analysable = append(analysable, filepath.Join(benign, e.Name()))
		}
	}
	badPolicy := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badPolicy, []byte(`{"allow": ["*.x"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts scanOptions
		args []string
		want int
	}{
		{"safe file", scanOptions{}, []string{filepath.Join(benign, "torch_state_dict.pt")}, 0},
		{"benign dir, default policy", scanOptions{}, []string{benign}, 1},
		{"benign files, allowing policy", scanOptions{Policy: policy}, analysable, 0},
		{"TorchScript, allowing policy", scanOptions{Policy: policy}, []string{filepath.Join(benign, "torchscript_linear.pt")}, 1},
		{"dangerous", scanOptions{}, []string{filepath.Join(evil, "inst.pkl")}, 1},
		{"malformed", scanOptions{}, []string{filepath.Join(evil, "gguf_truncated.gguf")}, 1},
		{"unknown", scanOptions{}, []string{filepath.Join(evil, "ext1.pkl")}, 1},
		{"missing file", scanOptions{}, []string{filepath.Join(benign, "array.npy"), "/nonexistent/x"}, 2},
		{"no args", scanOptions{}, nil, 2},
		{"bad format", scanOptions{Format: "xml"}, []string{benign}, 2},
		{"bad policy", scanOptions{Policy: badPolicy}, []string{benign}, 2},
		{"missing policy", scanOptions{Policy: "/nonexistent/p.json"}, []string{benign}, 2},
	}
	for _, c := range cases {
		if got, out := runScanCode(t, c.opts, c.args...); got != c.want {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, got, c.want, out)
		}
	}
}

// TestScanReportsEveryFile: one bad file among many does not stop the scan.
func TestScanReportsEveryFile(t *testing.T) {
	td := scanTestdata(t)
	code, out := runScanCode(t, scanOptions{Format: "json"}, filepath.Join(td, "benign"), filepath.Join(td, "malicious"))
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Files []struct {
			Path     string            `json:"path"`
			Verdict  string            `json:"verdict"`
			Findings []json.RawMessage `json:"findings"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	nb, _ := os.ReadDir(filepath.Join(td, "benign"))
	nm, _ := os.ReadDir(filepath.Join(td, "malicious"))
	if len(doc.Files) != len(nb)+len(nm) {
		t.Fatalf("%d files reported, want %d", len(doc.Files), len(nb)+len(nm))
	}
	for _, f := range doc.Files {
		if f.Findings == nil {
			t.Errorf("%s: findings is null, want a list", f.Path)
		}
		if filepath.Base(filepath.Dir(f.Path)) == "malicious" && f.Verdict == "safe" {
			t.Errorf("%s: safe", f.Path)
		}
	}
}

func TestPrintableEscapesControls(t *testing.T) {
	if got := printable("a\x1b[31mb\u0085c\n"); got != `a\x1b[31mb\x85c\x0a` {
		t.Errorf("got %q", got)
	}
}
