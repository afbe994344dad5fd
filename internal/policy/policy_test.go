package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const goodInput = `{
  "version": {
    "digest": "sha256:88eaddfe1f4c7f1f59dd7b69ec68696897f48f92e00e4f49b564818268b33e80",
    "publisher": "alice",
    "signatures": [{"key_id": "SHA256:abc", "signer": "alice", "trusted": true}],
    "scan": {"verdict": "safe"},
    "contracts": [{"name": "train", "passed": true}],
    "metrics": {"accuracy": 0.93},
    "approvals": [{"approver": "bob"}],
    "promotions": [{"alias": "production"}]
  },
  "actor": {"token_id": "tok1", "subject": "bob", "role": "approver"},
  "config": {"min_metrics": {"accuracy": 0.9}}
}`

// mutate returns goodInput with f applied to its decoded form.
func mutate(t *testing.T, f func(v map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(goodInput), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func version(m map[string]any) map[string]any { return m["version"].(map[string]any) }

func TestDefaultsAllowCompliant(t *testing.T) {
	e, err := NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Decisions {
		got, err := e.Evaluate(t.Context(), d, []byte(goodInput))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if !got.Allow || len(got.Deny) != 0 {
			t.Errorf("%s: got %+v, want allow", d, got)
		}
	}
}

func TestDefaultsDeny(t *testing.T) {
	e, err := NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		decision string
		mutate   func(map[string]any)
		want     []string
	}{
		{"untrusted", "register", func(m map[string]any) {
			version(m)["signatures"] = []any{map[string]any{"key_id": "k", "trusted": false}}
		}, []string{"version is not signed by a trusted key"}},
		{"unsigned and no digest", "register", func(m map[string]any) {
			delete(version(m), "signatures")
			delete(version(m), "digest")
		}, []string{"version has no digest", "version is not signed by a trusted key"}},
		{"scan dangerous", "promote", func(m map[string]any) {
			version(m)["scan"] = map[string]any{"verdict": "dangerous"}
		}, []string{`scan verdict is "dangerous" (want "safe")`}},
		{"self approval", "approve", func(m map[string]any) {
			m["actor"].(map[string]any)["subject"] = "alice"
		}, []string{`actor "alice" is the publisher and may not approve it (two-person rule)`}},
		{"publisher-only approval", "promote", func(m map[string]any) {
			version(m)["approvals"] = []any{map[string]any{"approver": "alice"}}
		}, []string{`no approval by anyone other than the publisher "alice" (two-person rule)`}},
		{"metric low", "promote", func(m map[string]any) {
			version(m)["metrics"] = map[string]any{"accuracy": 0.5}
		}, []string{"metric accuracy = 0.5 is below the minimum 0.9"}},
		{"deploy unpromoted unapproved", "deploy", func(m map[string]any) {
			delete(version(m), "promotions")
			delete(version(m), "approvals")
		}, []string{
			`no approval by anyone other than the publisher "alice" (two-person rule)`,
			"version has not been promoted to any alias",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.Evaluate(t.Context(), tt.decision, mutate(t, tt.mutate))
			if err != nil {
				t.Fatal(err)
			}
			if got.Allow || !slices.Equal(got.Deny, tt.want) {
				t.Errorf("got %+v, want deny %q", got, tt.want)
			}
		})
	}
}

func writePolicy(t *testing.T, text string) []Source {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

func TestFailClosed(t *testing.T) {
	tests := []struct {
		name, policy string
		want         error
	}{
		{"no policy for decision", "package custody.register\nallow := true\ndeny := set()\n", ErrUndefined},
		{"allow undefined", "package custody.promote\ndeny contains \"x\" if false\nallow if input.nope\n", ErrUndefined},
		{"deny not strings", "package custody.promote\ndeny contains 1 if true\nallow := true\n", ErrUndefined},
		{"allow not boolean", "package custody.promote\ndeny := set()\nallow := \"yes\"\n", ErrUndefined},
		{"runtime error", "package custody.promote\ndeny := set()\nallow if to_number(\"x\") > 0\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(t.Context(), writePolicy(t, tt.policy), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Evaluate(t.Context(), "promote", []byte(goodInput))
			if err == nil {
				t.Fatalf("got %+v, want an error", got)
			}
			if got.Allow {
				t.Errorf("allowed on error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAllowIgnoredWithReasons(t *testing.T) {
	e, err := New(t.Context(), writePolicy(t, "package custody.promote\ndeny contains \"no\" if true\nallow := true\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Evaluate(t.Context(), "promote", []byte(goodInput))
	if err != nil {
		t.Fatal(err)
	}
	if got.Allow || !slices.Equal(got.Deny, []string{"no"}) {
		t.Errorf("got %+v, want deny [no]", got)
	}
}

func TestCompileError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package custody.promote\nallow if {"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), srcs, Options{}); err == nil {
		t.Fatal("broken policy compiled")
	}
}

func TestBadInput(t *testing.T) {
	e, err := NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxInputSize+1)
	for _, in := range [][]byte{[]byte(`[1]`), []byte(`{`), big} {
		if _, err := e.Evaluate(t.Context(), "promote", in); !errors.Is(err, ErrBadInput) {
			t.Errorf("input %.10q: got %v, want ErrBadInput", in, err)
		}
	}
	if _, err := e.Evaluate(t.Context(), "delete", []byte(goodInput)); !errors.Is(err, ErrUnknownDecision) {
		t.Errorf("got %v, want ErrUnknownDecision", err)
	}
}

func TestTimeout(t *testing.T) {
	// A policy that does a lot of work: the deadline must stop it.
	e, err := New(t.Context(), writePolicy(t, `package custody.promote
deny := set()
allow if count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0
`), Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := e.Evaluate(t.Context(), "promote", []byte(goodInput))
	if err == nil || got.Allow {
		t.Fatalf("got %+v, %v; want a timeout error", got, err)
	}
	t.Logf("error: %v", err)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("evaluation took %v despite a 50ms timeout", d)
	}
}

func TestRegoUnitTests(t *testing.T) {
	res, err := Test(t.Context(), Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 10 {
		t.Fatalf("ran %d Rego tests, want the default suite", len(res))
	}
	for _, r := range res {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Message)
		}
	}
}

func TestRegoTestFailureReported(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"p.rego":      "package custody.promote\n\ndeny := set()\n\nallow := true\n",
		"p_test.rego": "package custody.p_test\n\nimport data.custody.promote\n\ntest_ok if promote.allow\n\ntest_wrong if not promote.allow\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Test(t.Context(), srcs)
	if err != nil {
		t.Fatal(err)
	}
	want := []TestResult{
		{Name: "data.custody.p_test.test_ok", Pass: true},
		{Name: "data.custody.p_test.test_wrong", Pass: false, Message: "test rule undefined or false"},
	}
	if !slices.Equal(res, want) {
		t.Errorf("got %+v, want %+v", res, want)
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	e, err := NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			d, err := e.Evaluate(t.Context(), "promote", []byte(goodInput))
			if err == nil && !d.Allow {
				err = errors.New("denied a compliant input")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
