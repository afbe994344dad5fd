package contract

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// mapChecker is a GE "column map" expectation: a condition on each value.
// Nulls are skipped (not counted as unexpected) except by the null checks,
// and success is GE's: with n the non-null count (all rows for the null
// checks) and u the unexpected count, vacuously true when n = 0, else
// (n-u)/n >= mostly.
type mapChecker struct {
	col        int
	mostly     float64
	maxEx      int
	nullCheck  int8 // 0 = skip nulls; 1 = nulls unexpected; -1 = non-nulls unexpected
	elements   int64
	missing    int64
	unexpected int64
	examples   []Example
	test       func(c *Cell) (ok bool, note string)
	// fork, when set, makes a test for a copy of the checker (see part):
	// test keeps state that only one goroutine may use. Without it the
	// copies share test, which must then be safe for concurrent use.
	fork   func() func(c *Cell) (ok bool, note string)
	weight int // relative cost per row (see checker.cost)
	// failErr, when set by test, turns the result into an error (a cap was hit).
	failErr string
}

func (m *mapChecker) column() int { return m.col }
func (m *mapChecker) cost() int   { return m.weight }

func (m *mapChecker) observe(rec []Cell, line int64) {
	m.elements++
	c := &rec[m.col]
	if c.Kind == KindNull {
		m.missing++
		if m.nullCheck == 1 {
			m.unexpect(c, line, "")
		}
		return
	}
	if m.nullCheck != 0 {
		if m.nullCheck == -1 {
			m.unexpect(c, line, "")
		}
		return
	}
	if ok, note := m.test(c); !ok {
		m.unexpect(c, line, note)
	}
}

func (m *mapChecker) unexpect(c *Cell, line int64, note string) {
	m.unexpected++
	if len(m.examples) < m.maxEx {
		m.examples = append(m.examples, Example{Line: line, Value: c.exampleValue(), Note: note})
	}
}

// part returns an empty copy of m that observes some of the rows on
// another goroutine; merge adds its findings to m. A value's verdict does
// not depend on the other values, so the counts of the parts add up and,
// merged in row order, the first maxEx examples of the parts are m's.
func (m *mapChecker) part() *mapChecker {
	p := &mapChecker{col: m.col, mostly: m.mostly, maxEx: m.maxEx, nullCheck: m.nullCheck, test: m.test, weight: m.weight}
	if m.fork != nil {
		p.test = m.fork()
	}
	return p
}

// merge adds p's counts and examples to m (p's rows follow m's) and
// empties p.
func (m *mapChecker) merge(p *mapChecker) {
	m.elements += p.elements
	m.missing += p.missing
	m.unexpected += p.unexpected
	for _, e := range p.examples {
		if len(m.examples) >= m.maxEx {
			break
		}
		m.examples = append(m.examples, e)
	}
	if m.failErr == "" {
		m.failErr = p.failErr
	}
	p.elements, p.missing, p.unexpected, p.examples, p.failErr = 0, 0, 0, p.examples[:0], ""
}

func (m *mapChecker) finish(rows int64, r *Result) {
	considered := m.elements - m.missing
	if m.nullCheck != 0 {
		considered = m.elements
	}
	r.ElementCount, r.MissingCount, r.UnexpectedCount = &m.elements, &m.missing, &m.unexpected
	r.UnexpectedPercent = pct(m.unexpected, considered)
	r.Examples = m.examples
	if m.failErr != "" {
		r.Status, r.Detail = StatusError, m.failErr
		return
	}
	r.Status = StatusPass
	if considered > 0 && float64(considered-m.unexpected)/float64(considered) < m.mostly {
		r.Status = StatusFail
	}
}

func newMap(env *buildEnv, kw *kwargs, r *Result) *mapChecker {
	col := env.column(kw, r)
	m := &mapChecker{col: col, mostly: kw.mostly(), maxEx: env.limits.MaxExamples, weight: 1}
	if col < 0 {
		return nil
	}
	return m
}

func buildNotNull(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	if m == nil || kw.err != nil {
		return nil
	}
	m.nullCheck = 1
	return m
}

func buildNull(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	if m == nil || kw.err != nil {
		return nil
	}
	m.nullCheck = -1
	return m
}

func buildValuesBetween(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	rg := readRange(kw, true)
	if m == nil || kw.err != nil {
		return nil
	}
	m.test = func(c *Cell) (bool, string) {
		f, ok := c.Float()
		if !ok {
			return false, "not a number"
		}
		return rg.contains(f), ""
	}
	return m
}

func buildLengthsBetween(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	rg := readRange(kw, true)
	if m == nil || kw.err != nil {
		return nil
	}
	m.test = func(c *Cell) (bool, string) {
		n := c.RuneLen()
		if rg.contains(float64(n)) {
			return true, ""
		}
		return false, fmt.Sprintf("length %d", n)
	}
	return m
}

func buildLengthsEqual(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	v := kw.num("value")
	if v == nil {
		kw.fail(`missing "value"`)
	}
	if m == nil || kw.err != nil {
		return nil
	}
	want := *v
	m.test = func(c *Cell) (bool, string) {
		n := c.RuneLen()
		if float64(n) == want {
			return true, ""
		}
		return false, fmt.Sprintf("length %d", n)
	}
	return m
}

// valueSet matches values against a GE value_set: strings match text and
// string values; numbers match numeric values and text that parses to an
// equal number; booleans match boolean values.
type valueSet struct {
	strs map[string]struct{}
	// small lists strs when there are few: a scan with a length check
	// beats hashing for short sets.
	small []string
	nums  map[float64]struct{}
	bools [2]bool
}

func newValueSet(kw *kwargs) *valueSet {
	l := kw.list("value_set", true)
	s := &valueSet{strs: map[string]struct{}{}, nums: map[float64]struct{}{}}
	for _, v := range l {
		switch x := v.(type) {
		case string:
			s.strs[x] = struct{}{}
		case float64:
			s.nums[x] = struct{}{}
		case bool:
			if x {
				s.bools[1] = true
			} else {
				s.bools[0] = true
			}
		case nil:
		default:
			kw.fail(`"value_set" may hold only strings, numbers and booleans`)
		}
	}
	if len(s.strs) <= 16 {
		for k := range s.strs {
			s.small = append(s.small, k)
		}
		slices.Sort(s.small)
	}
	return s
}

// hasStr reports whether b is one of the set's strings.
func (s *valueSet) hasString(b []byte) bool {
	if s.small != nil || len(s.strs) == 0 {
		for _, m := range s.small {
			if len(m) == len(b) && m == bstr(b) {
				return true
			}
		}
		return false
	}
	_, ok := s.strs[bstr(b)]
	return ok
}

func (s *valueSet) has(c *Cell) bool {
	switch c.Kind {
	case KindText:
		if s.hasString(c.Raw) {
			return true
		}
		if len(s.nums) > 0 {
			if f, ok := c.Float(); ok {
				_, ok := s.nums[f]
				return ok
			}
		}
		if s.bools[0] || s.bools[1] {
			if b, ok := c.Bool(); ok {
				return s.bools[btoi(b)]
			}
		}
	case KindString, KindOther:
		return s.hasString(c.Raw)
	case KindInt, KindFloat:
		f, _ := c.Float()
		_, ok := s.nums[f]
		return ok
	case KindBool:
		b, _ := c.Bool()
		return s.bools[btoi(b)]
	}
	return false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func buildInSet(negate bool) builder {
	return func(env *buildEnv, kw *kwargs, r *Result) checker {
		m := newMap(env, kw, r)
		s := newValueSet(kw)
		kw.boolean("parse_strings_as_datetimes") // accepted only when false
		if kw.m["parse_strings_as_datetimes"] == true {
			kw.fail(`"parse_strings_as_datetimes" is not supported`)
		}
		if m == nil || kw.err != nil {
			return nil
		}
		m.test = func(c *Cell) (bool, string) { return s.has(c) != negate, "" }
		return m
	}
}

// buildRegex: GE's pandas implementation is column.astype(str).str.contains
// (regex): a search, not a full match. The syntax is Go's RE2. Patterns
// that only match ASCII run on a lazily built byte DFA (dfa.go, fuzzed
// against package regexp); others on package regexp.
func buildRegex(negate bool) builder {
	return func(env *buildEnv, kw *kwargs, r *Result) checker {
		m := newMap(env, kw, r)
		pat := kw.str("regex", true)
		if kw.err != nil {
			return nil
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			kw.fail("invalid regex (Go RE2 syntax): %v", err)
			return nil
		}
		if m == nil {
			return nil
		}
		if d := newByteDFA(pat); d != nil {
			m.weight = 2
			dfaTest := func(d *byteDFA) func(c *Cell) (bool, string) {
				return func(c *Cell) (bool, string) {
					ok, done := d.match(c.Raw)
					if !done {
						ok = re.Match(c.Raw)
					}
					return ok != negate, ""
				}
			}
			m.test = dfaTest(d)
			// The DFA is built as it runs: each copy of the checker gets
			// its own.
			m.fork = func() func(c *Cell) (bool, string) { return dfaTest(newByteDFA(pat)) }
			return m
		}
		m.weight = 4
		// Categorical columns repeat a few values: remember the answer for
		// up to regexMemoSize distinct short values (bounded memory).
		// Once the cache is full, it is dropped if it mostly misses. Each
		// copy of the checker gets its own cache.
		memoTest := func() func(c *Cell) (bool, string) {
			memo := map[string]bool{}
			var lookups, hits int
			return func(c *Cell) (bool, string) {
				if memo != nil && len(c.Raw) <= 64 {
					lookups++
					if ok, hit := memo[bstr(c.Raw)]; hit {
						hits++
						return ok != negate, ""
					}
					if lookups >= 4*regexMemoSize && hits < lookups/2 {
						memo = nil
					}
				}
				ok := re.Match(c.Raw)
				if memo != nil && len(c.Raw) <= 64 && len(memo) < regexMemoSize {
					memo[string(c.Raw)] = ok
				}
				return ok != negate, ""
			}
		}
		m.test = memoTest()
		m.fork = memoTest
		return m
	}
}

// regexMemoSize bounds the per-expectation cache of regex answers.
const regexMemoSize = 4096

// typeTest returns the per-value test for a GE type name, nil if unknown.
// Names are those of pandas/numpy dtypes and Python types as GE accepts
// them, plus custody's contract types.
func typeTest(name string) func(c *Cell) bool {
	switch strings.ToLower(name) {
	case "int", "int8", "int16", "int32", "int64", "integer", "bigint", "smallint", "long", "uint8", "uint16", "uint32", "uint64", "int64dtype":
		return (*Cell).IsInt
	case "float", "float16", "float32", "float64", "double", "number", "numeric", "real", "decimal":
		return (*Cell).IsFloat
	case "str", "string", "object", "varchar", "text", "stringdtype":
		return (*Cell).IsString
	case "bool", "boolean", "bool_", "booleandtype":
		return func(c *Cell) bool { _, ok := c.Bool(); return ok }
	}
	return nil
}

func buildOfType(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	name := kw.str("type_", true)
	if kw.err != nil {
		return nil
	}
	t := typeTest(name)
	if t == nil {
		kw.fail("unknown type %q", name)
		return nil
	}
	if m == nil {
		return nil
	}
	note := "not " + name
	m.test = func(c *Cell) (bool, string) { return t(c), note }
	return m
}

func buildInTypeList(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	names := stringList(kw, "type_list")
	if kw.err != nil {
		return nil
	}
	var tests []func(*Cell) bool
	for _, n := range names {
		t := typeTest(n)
		if t == nil {
			kw.fail("unknown type %q", n)
			return nil
		}
		tests = append(tests, t)
	}
	if m == nil {
		return nil
	}
	note := "none of " + strings.Join(names, ", ")
	m.test = func(c *Cell) (bool, string) {
		for _, t := range tests {
			if t(c) {
				return true, ""
			}
		}
		return false, note
	}
	return m
}

// hashSet is an open-addressing set of 63-bit hashes; the top bit of a slot
// flags a value seen more than once. Slot 0 means empty (a zero hash is
// stored as 1).
type hashSet struct {
	slots []uint64
	n     int
}

func newHashSet() *hashSet { return &hashSet{slots: make([]uint64, 1<<10)} }

const dupBit = 1 << 63

// add inserts h and returns how many times it had been seen before: 0, 1 or
// 2 (meaning two or more).
func (s *hashSet) add(h uint64) int {
	h &^= dupBit
	if h == 0 {
		h = 1
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		v := s.slots[i]
		switch {
		case v == 0:
			s.slots[i] = h
			s.n++
			return 0
		case v&^dupBit == h:
			if v&dupBit != 0 {
				return 2
			}
			s.slots[i] = v | dupBit
			return 1
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, v := range old {
		if v == 0 {
			continue
		}
		i := (v &^ dupBit) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = v
	}
}
