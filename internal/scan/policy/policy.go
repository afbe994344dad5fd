// Package policy decides whether an import named by a pickle is allowed,
// known-dangerous or unknown.
//
// # Patterns
//
// A pattern is one of
//
//	module.name   exact: the global's full dotted path (module + "." + name)
//	module.*      the module and all its submodules, any plain (undotted) name
//	*.name        deny only: that name in any module (re-exports of os.system)
//
// # Precedence
//
// Deny always wins: a global matched by any deny pattern (built-in or from a
// policy file) is [Denied] even when an allow pattern, exact or wildcard, also
// matches. Dotted names (protocol 4 qualnames such as "os.system" under module
// "pathlib") are resolved by attribute traversal in Python, so every suffix of
// the path is checked against the denylist, a dunder component ("__globals__",
// "__builtins__") is always denied, and only an exact allow entry can allow a
// dotted name: "sklearn.*" never allows "sklearn" + "utils.os.system".
// Everything neither allowed nor denied is [Unknown] (default deny).
package policy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

//go:embed builtin.json
var builtinJSON []byte

// Class is the policy's decision for one global.
type Class int

const (
	Unknown Class = iota // neither allowed nor denied
	Allowed              // on the allowlist
	Denied               // on the denylist (or structurally dangerous)
)

func (c Class) String() string {
	switch c {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	}
	return "unknown"
}

// Entry is one pattern with where it comes from.
type Entry struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
}

// Decision is the result of [Policy.Check].
type Decision struct {
	Class Class
	Entry Entry // the matching entry; zero for Unknown
}

// Policy holds the allow and deny patterns. The zero value denies nothing
// and allows nothing; use [Default] or [Load].
type Policy struct {
	allowExact, denyExact map[string]Entry
	allowMod, denyMod     map[string]Entry // "mod" for pattern "mod.*"
	denyAnyName           map[string]Entry // "name" for pattern "*.name"
	sources               map[string]string
}

type fileFormat struct {
	Comment string            `json:"comment,omitempty"`
	Sources map[string]string `json:"sources,omitempty"`
	Allow   []json.RawMessage `json:"allow"`
	Deny    []json.RawMessage `json:"deny"`
}

// ErrBadPolicy is returned (wrapped) by [Load] and [Parse] for an invalid
// policy file; check with errors.Is.
var ErrBadPolicy = errors.New("invalid policy")

// Default returns the built-in policy (internal/scan/policy/builtin.json).
func Default() *Policy {
	p := &Policy{
		allowExact: map[string]Entry{}, denyExact: map[string]Entry{},
		allowMod: map[string]Entry{}, denyMod: map[string]Entry{},
		denyAnyName: map[string]Entry{}, sources: map[string]string{},
	}
	if err := p.merge(builtinJSON, "builtin"); err != nil {
		panic("policy: built-in policy is invalid: " + err.Error())
	}
	return p
}

// Load returns the built-in policy extended by the policy file at path.
func Load(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read policy: %w", err)
	}
	return Parse(b, path)
}

// Parse returns the built-in policy extended by the JSON policy document b:
//
//	{"allow": ["sklearn.*", "xgboost.core.Booster"], "deny": ["mylib.unsafe_load"]}
//
// Entries may also be objects {"name": ..., "source": ..., "reason": ...}.
// Unknown fields are an error.
func Parse(b []byte, origin string) (*Policy, error) {
	p := Default()
	if err := p.merge(b, origin); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPolicy, origin, err)
	}
	return p, nil
}

func (p *Policy) merge(b []byte, origin string) error {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	for k, v := range f.Sources {
		p.sources[k] = v
	}
	add := func(raw json.RawMessage, deny bool) error {
		var e Entry
		if len(raw) > 0 && raw[0] == '"' {
			if err := json.Unmarshal(raw, &e.Name); err != nil {
				return err
			}
		} else {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(&e); err != nil {
				return err
			}
		}
		if e.Source == "" {
			e.Source = origin
		} else if full, ok := p.sources[e.Source]; ok {
			e.Source = full
		}
		return p.add(e, deny)
	}
	for _, r := range f.Allow {
		if err := add(r, false); err != nil {
			return err
		}
	}
	for _, r := range f.Deny {
		if err := add(r, true); err != nil {
			return err
		}
	}
	return nil
}

func validDotted(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if !ValidIdentifier(part) {
			return false
		}
	}
	return true
}

func (p *Policy) add(e Entry, deny bool) error {
	n := e.Name
	switch {
	case strings.HasPrefix(n, "*."):
		name := n[2:]
		if !deny {
			return fmt.Errorf("pattern %q: '*.name' is only valid in deny", n)
		}
		if !ValidIdentifier(name) {
			return fmt.Errorf("pattern %q: bad name", n)
		}
		p.denyAnyName[name] = e
	case strings.HasSuffix(n, ".*"):
		mod := n[:len(n)-2]
		if !validDotted(mod) {
			return fmt.Errorf("pattern %q: bad module", n)
		}
		if deny {
			p.denyMod[mod] = e
		} else {
			p.allowMod[mod] = e
		}
	default:
		if !validDotted(n) || !strings.Contains(n, ".") {
			return fmt.Errorf("pattern %q: want module.name, module.* or *.name", n)
		}
		if deny {
			p.denyExact[n] = e
		} else {
			p.allowExact[n] = e
		}
	}
	return nil
}

// ValidIdentifier reports whether s is a Python identifier (ASCII letters,
// digits and underscore, or any non-ASCII rune, not starting with a digit).
// Python's importer cannot resolve a module or attribute path containing
// anything else, so such names never reach code.
func ValidIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9':
			if i == 0 {
				return false
			}
		case r > 0x7f && r != 0xfffd:
		default:
			return false
		}
	}
	return true
}

// compat maps Python 2 module names that the unpickler rewrites (fix_imports,
// Lib/_compat_pickle.py) to their Python 3 names. Applied whatever the
// protocol: a wrong mapping can only make a name stricter, never laxer.
var compat = map[string]string{
	"__builtin__": "builtins",
	"copy_reg":    "copyreg",
	"exceptions":  "builtins",
	"cPickle":     "pickle",
	"commands":    "subprocess",
	"urllib2":     "urllib.request",
	"httplib":     "http.client",
	"Tkinter":     "tkinter",
	"cStringIO":   "io",
	"StringIO":    "io",
}

// Normalize applies the unpickler's Python 2 name mapping.
func Normalize(module string) string {
	if m, ok := compat[module]; ok {
		return m
	}
	return module
}

// Check classifies the global module.name as pickle's find_class would
// resolve it (module imported, then name looked up attribute by attribute).
func (p *Policy) Check(module, name string) Decision {
	module = Normalize(module)
	full := module + "." + name
	modParts := strings.Split(module, ".")
	nameParts := strings.Split(name, ".")
	parts := append(append([]string{}, modParts...), nameParts...)
	for _, np := range nameParts {
		if len(np) > 4 && strings.HasPrefix(np, "__") && strings.HasSuffix(np, "__") && len(nameParts) > 1 {
			return Decision{Class: Denied, Entry: Entry{Name: full, Source: "custody", Reason: "attribute traversal through dunder " + np}}
		}
	}
	// Candidate paths: the full path, then every path starting at a name
	// component (what attribute traversal through a module can reach).
	starts := []int{0}
	for i := len(modParts); i < len(parts)-1; i++ {
		starts = append(starts, i)
	}
	for _, s := range starts {
		cand := parts[s:]
		path := strings.Join(cand, ".")
		if e, ok := p.denyExact[path]; ok {
			return Decision{Class: Denied, Entry: e}
		}
		for k := len(cand) - 1; k >= 1; k-- {
			if e, ok := p.denyMod[strings.Join(cand[:k], ".")]; ok {
				return Decision{Class: Denied, Entry: e}
			}
		}
	}
	for _, np := range nameParts {
		if e, ok := p.denyAnyName[np]; ok {
			return Decision{Class: Denied, Entry: e}
		}
	}
	if e, ok := p.allowExact[full]; ok {
		return Decision{Class: Allowed, Entry: e}
	}
	if len(nameParts) == 1 {
		for k := len(modParts); k >= 1; k-- {
			if e, ok := p.allowMod[strings.Join(modParts[:k], ".")]; ok {
				return Decision{Class: Allowed, Entry: e}
			}
		}
	}
	return Decision{Class: Unknown}
}
