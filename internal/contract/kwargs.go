package contract

import (
	"fmt"
	"math"
	"sort"
)

// kwargs reads an expectation's keyword arguments and remembers which ones
// were used, so that unknown ones are reported instead of ignored.
type kwargs struct {
	m    map[string]any
	used map[string]bool
	err  error
}

// ignoredKwargs change only how GE renders or reports a result, never
// whether it succeeds.
var ignoredKwargs = []string{"result_format", "catch_exceptions", "include_config", "meta"}

func newKwargs(m map[string]any) *kwargs {
	k := &kwargs{m: m, used: map[string]bool{}}
	for _, n := range ignoredKwargs {
		k.used[n] = true
	}
	return k
}

func (k *kwargs) fail(format string, args ...any) {
	if k.err == nil {
		k.err = fmt.Errorf(format, args...)
	}
}

func (k *kwargs) has(name string) bool {
	v, ok := k.m[name]
	return ok && v != nil
}

func (k *kwargs) str(name string, required bool) string {
	k.used[name] = true
	v, ok := k.m[name]
	if !ok || v == nil {
		if required {
			k.fail("missing %q", name)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		k.fail("%q must be a string", name)
	}
	return s
}

// num returns an optional number (nil when absent or null).
func (k *kwargs) num(name string) *float64 {
	k.used[name] = true
	v, ok := k.m[name]
	if !ok || v == nil {
		return nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) {
		k.fail("%q must be a number", name)
		return nil
	}
	return &f
}

func (k *kwargs) boolean(name string) bool {
	k.used[name] = true
	v, ok := k.m[name]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		k.fail("%q must be true or false", name)
	}
	return b
}

func (k *kwargs) list(name string, required bool) []any {
	k.used[name] = true
	v, ok := k.m[name]
	if !ok || v == nil {
		if required {
			k.fail("missing %q", name)
		}
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		k.fail("%q must be a list", name)
	}
	return l
}

func (k *kwargs) object(name string) map[string]any {
	k.used[name] = true
	v, ok := k.m[name]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		k.fail("%q must be an object", name)
	}
	return m
}

// mostly returns the "mostly" fraction, 1 when absent.
func (k *kwargs) mostly() float64 {
	p := k.num("mostly")
	if p == nil {
		return 1
	}
	if *p < 0 || *p > 1 {
		k.fail(`"mostly" must be between 0 and 1`)
	}
	return *p
}

// unknown lists the keyword arguments that were never read, sorted.
func (k *kwargs) unknown() []string {
	var out []string
	for n := range k.m {
		if !k.used[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
