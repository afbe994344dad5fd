// Package policy evaluates custody's policy-as-code gates with embedded OPA.
//
// A policy directory holds Rego v1 files. The policy for a decision D (one of
// Decisions) lives in package custody.D and defines
//
//	deny contains msg if { ... }   # a set of human-readable reasons
//	allow if count(deny) == 0
//
// Evaluate returns the reasons verbatim, sorted. It fails closed: a policy
// that is missing, undefined for the input, of the wrong type, erroring or too
// slow yields an error, never an allow. Files ending in _test.rego are unit
// tests (see Test) and are not loaded for evaluation. The input document is
// described in docs/policy.md.
package policy

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"
)

//go:embed defaults/*.rego
var defaultFS embed.FS

// Decisions are the gates a policy can decide, in lifecycle order.
var Decisions = []string{"register", "approve", "promote", "rollback", "deploy"}

// MaxInputSize caps the JSON size of an input document.
const MaxInputSize = 1 << 20

// DefaultTimeout bounds one evaluation when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

var (
	// ErrUnknownDecision is returned (wrapped; check with errors.Is) for a
	// decision not in Decisions.
	ErrUnknownDecision = errors.New("unknown decision")
	// ErrBadInput is returned (wrapped) for an input that is not a JSON
	// object or exceeds MaxInputSize.
	ErrBadInput = errors.New("bad policy input")
	// ErrUndefined is returned (wrapped) when a policy does not define
	// allow and deny as the convention requires: the gate fails closed.
	ErrUndefined = errors.New("policy undefined")
)

// Decision is the outcome of one evaluation.
type Decision struct {
	Allow bool     `json:"allow"`
	Deny  []string `json:"deny"`
}

// Options configure an Engine.
type Options struct {
	// Timeout bounds one evaluation (DefaultTimeout if zero).
	Timeout time.Duration
}

// Engine holds one prepared query per decision. It is safe for concurrent use.
type Engine struct {
	timeout time.Duration
	queries map[string]rego.PreparedEvalQuery
}

// Source is one policy file.
type Source struct {
	Name, Text string
}

// Defaults returns the embedded default policies and their tests.
func Defaults() []Source {
	srcs, err := readFS(defaultFS, "defaults")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	return srcs
}

// LoadDir reads every .rego file under dir, tests included.
func LoadDir(dir string) ([]Source, error) {
	srcs, err := readFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, fmt.Errorf("failed to load policies from %s: %w", dir, err)
	}
	for i := range srcs {
		srcs[i].Name = filepath.Join(dir, filepath.FromSlash(srcs[i].Name))
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("failed to load policies: no .rego files in %s", dir)
	}
	return srcs, nil
}

func readFS(fsys fs.FS, root string) ([]Source, error) {
	var srcs []Source
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		srcs = append(srcs, Source{Name: p, Text: string(b)})
		return nil
	})
	return srcs, err
}

func isTest(name string) bool { return strings.HasSuffix(name, "_test.rego") }

func parse(srcs []Source, tests bool) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module)
	for _, s := range srcs {
		if isTest(s.Name) && !tests {
			continue
		}
		m, err := ast.ParseModuleWithOpts(s.Name, s.Text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("failed to parse policy: %w", err)
		}
		mods[s.Name] = m
	}
	return mods, nil
}

// New compiles srcs (test files are skipped) and prepares one query per
// decision. A compile error in any file is an error.
func New(ctx context.Context, srcs []Source, opts Options) (*Engine, error) {
	mods, err := parse(srcs, false)
	if err != nil {
		return nil, err
	}
	e := &Engine{timeout: opts.Timeout, queries: make(map[string]rego.PreparedEvalQuery)}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	for _, d := range Decisions {
		args := []func(*rego.Rego){
			// deny must be defined; allow is false where undefined
			// (the convention's "allow if count(deny) == 0").
			rego.Query(fmt.Sprintf("deny := data.custody.%[1]s.deny; allow := object.get(data.custody.%[1]s, \"allow\", false)", d)),
			rego.SetRegoVersion(ast.RegoV1),
			rego.StrictBuiltinErrors(true),
		}
		for _, m := range mods {
			args = append(args, rego.ParsedModule(m))
		}
		pq, err := rego.New(args...).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to compile policies: %w", err)
		}
		e.queries[d] = pq
	}
	return e, nil
}

// NewDefault returns an Engine with the embedded default policies.
func NewDefault(ctx context.Context) (*Engine, error) {
	return New(ctx, Defaults(), Options{})
}

// Evaluate decides decision for input: a JSON document ([]byte or
// json.RawMessage) or any value that marshals to a JSON object. Deny
// reasons are returned verbatim and sorted; Allow is true only if the policy
// says allow and gives no reason to deny.
func (e *Engine) Evaluate(ctx context.Context, decision string, input any) (Decision, error) {
	pq, ok := e.queries[decision]
	if !ok {
		return Decision{}, fmt.Errorf("%w %q (want one of %s)", ErrUnknownDecision, decision, strings.Join(Decisions, ", "))
	}
	var raw []byte
	switch v := input.(type) {
	case []byte:
		raw = v
	case json.RawMessage:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		raw = b
	}
	if len(raw) > MaxInputSize {
		return Decision{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadInput, len(raw), MaxInputSize)
	}
	var doc any
	if err := util.UnmarshalJSON(raw, &doc); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return Decision{}, fmt.Errorf("%w: not a JSON object", ErrBadInput)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := pq.Eval(ctx, rego.EvalInput(doc))
	if err != nil {
		return Decision{}, fmt.Errorf("failed to evaluate %s policy: %w", decision, err)
	}
	if len(rs) != 1 {
		return Decision{}, fmt.Errorf("%w: data.custody.%s must define deny (%d results)", ErrUndefined, decision, len(rs))
	}
	allow, ok := rs[0].Bindings["allow"].(bool)
	if !ok {
		return Decision{}, fmt.Errorf("%w: data.custody.%s.allow is not a boolean", ErrUndefined, decision)
	}
	set, ok := rs[0].Bindings["deny"].([]any)
	if !ok {
		return Decision{}, fmt.Errorf("%w: data.custody.%s.deny is not a set of strings", ErrUndefined, decision)
	}
	d := Decision{Deny: make([]string, 0, len(set))}
	for _, r := range set {
		s, ok := r.(string)
		if !ok {
			return Decision{}, fmt.Errorf("%w: data.custody.%s.deny holds a non-string %v", ErrUndefined, decision, r)
		}
		d.Deny = append(d.Deny, s)
	}
	sort.Strings(d.Deny)
	if !allow && len(d.Deny) == 0 {
		return Decision{}, fmt.Errorf("%w: data.custody.%s neither allows nor gives a reason to deny", ErrUndefined, decision)
	}
	d.Allow = allow && len(d.Deny) == 0
	return d, nil
}

// Decide is [Engine.Evaluate] in the shape of the registry's policy gate
// (registry.Gate): allow, the reasons to deny, or an error (which the
// caller must treat as a refusal).
func (e *Engine) Decide(ctx context.Context, decision string, input map[string]any) (bool, []string, error) {
	d, err := e.Evaluate(ctx, decision, input)
	if err != nil {
		return false, nil, err
	}
	return d.Allow, d.Deny, nil
}

// TestResult is the outcome of one Rego unit test.
type TestResult struct {
	Name    string // package.rule, e.g. data.custody.promote.test_unsigned
	Pass    bool
	Message string // failure or error detail, empty on pass
}

// Test runs the Rego unit tests (rules named test_*) in srcs.
func Test(ctx context.Context, srcs []Source) ([]TestResult, error) {
	mods, err := parse(srcs, true)
	if err != nil {
		return nil, err
	}
	ch, err := tester.NewRunner().SetDefaultRegoVersion(ast.RegoV1).SetModules(mods).SetTimeout(time.Minute).RunTests(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to run policy tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Name: r.Package + "." + r.Name, Pass: r.Pass()}
		if r.Error != nil {
			tr.Message = r.Error.Error()
		} else if !tr.Pass {
			tr.Message = "test rule undefined or false"
			if out := strings.TrimSpace(string(r.Output)); out != "" {
				tr.Message += "; printed: " + out
			}
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
