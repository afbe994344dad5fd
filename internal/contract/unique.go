package contract

import (
	"fmt"
	"hash/maphash"
	"sort"
)

// uniqueChecker is expect_column_values_to_be_unique. GE marks every
// occurrence of a repeated value unexpected (pandas duplicated(keep=False)).
// custody streams, so it keeps a set of 63-bit hashes of the values seen
// (maphash; text compared byte for byte, typed numbers by value) with one
// flag bit per entry recording that the value was already repeated: the
// second occurrence adds 2 to the count (itself and the first), later ones 1.
// Examples show the later occurrences (the first one's line is not kept),
// the earliest lines first.
//
// For cache locality the set is split into 256 partitions by the hash's top
// byte, and values are buffered per partition and inserted 256 at a time,
// so that each burst of inserts touches one small table; the answer is the
// same as inserting them one by one.
//
// Two distinct values collide with probability about n²/2⁶⁵ for n distinct
// values, which can only report a false duplicate, never hide one. Past
// Limits.UniqueCap distinct values the check stops and reports an error.
type uniqueChecker struct {
	*mapChecker
	seed     maphash.Seed
	limit    int
	distinct int
	full     bool
	parts    [256]uniquePart
	dense    denseInts
}

// denseInts holds the canonical non-negative decimal integers below
// denseMax ("0", or digits without a leading zero: text whose bytes
// determine the number and back) as two bit sets, seen and repeated.
// Integer keys such as row IDs are the common case of a unique column;
// checking them costs two bits per possible value and no hashing. Any other
// text goes to the hash set; the two never hold the same bytes.
type denseInts struct {
	seen, rep []uint64
}

// denseMax bounds the values denseInts holds: 2 × 2²⁸ bits = 64 MiB.
const denseMax = 1 << 28

// canonicalUint parses b when it is a canonical decimal below denseMax.
func canonicalUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 9 || b[0] == '0' && len(b) > 1 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v < denseMax
}

// add records v and returns how many times it had been seen: 0, 1, or 2
// for two or more (as hashSet.add).
func (d *denseInts) add(v uint64) int {
	w, bit := v>>6, uint64(1)<<(v&63)
	if w >= uint64(len(d.seen)) {
		n := max(1024, len(d.seen))
		for uint64(n) <= w {
			n *= 2
		}
		d.seen = append(d.seen, make([]uint64, n-len(d.seen))...)
		d.rep = append(d.rep, make([]uint64, n-len(d.rep))...)
	}
	switch {
	case d.seen[w]&bit == 0:
		d.seen[w] |= bit
		return 0
	case d.rep[w]&bit == 0:
		d.rep[w] |= bit
		return 1
	}
	return 2
}

type uniquePart struct {
	set   hashSet
	pend  []pendingValue
	arena []byte
}

type pendingValue struct {
	h    uint64
	line int64
	num  float64
	off  int32
	n    int32
	kind Kind
}

const uniqueFlush = 256

func buildUnique(env *buildEnv, kw *kwargs, r *Result) checker {
	m := newMap(env, kw, r)
	if m == nil || kw.err != nil {
		return nil
	}
	m.weight = 3
	u := &uniqueChecker{mapChecker: m, seed: maphash.MakeSeed(), limit: env.limits.UniqueCap}
	for i := range u.parts {
		u.parts[i].set.slots = make([]uint64, 64)
	}
	return u
}

func (u *uniqueChecker) observe(rec []Cell, line int64) {
	u.elements++
	c := &rec[u.col]
	if c.Kind == KindNull {
		u.missing++
		return
	}
	if u.full {
		return
	}
	if c.Kind == KindText {
		if v, ok := canonicalUint(c.Raw); ok {
			u.count(u.dense.add(v), c, line)
			return
		}
	}
	h := valueHash(u.seed, c)
	p := &u.parts[h>>56]
	pv := pendingValue{h: h, line: line, off: int32(len(p.arena)), n: int32(len(c.Raw)), kind: c.Kind}
	if c.Kind == KindInt || c.Kind == KindFloat {
		pv.num, _ = c.Float()
	}
	p.arena = append(p.arena, c.Raw...)
	p.pend = append(p.pend, pv)
	if len(p.pend) == uniqueFlush || len(p.arena) > 1<<16 {
		u.flush(p)
	}
}

func (u *uniqueChecker) flush(p *uniquePart) {
	for _, pv := range p.pend {
		if u.full {
			break
		}
		before := p.set.n
		prior := p.set.add(pv.h)
		u.distinct += p.set.n - before
		switch prior {
		case 0:
			if u.distinct > u.limit {
				u.full = true
				u.failErr = fmt.Sprintf("more than %d distinct values: uniqueness not checked (raise the unique cap)", u.limit)
			}
			continue
		case 1:
			u.unexpected += 2
			u.example(p, pv, "repeated value (first occurrence also counted)")
		default:
			u.unexpected++
			u.example(p, pv, "repeated value")
		}
	}
	p.pend = p.pend[:0]
	p.arena = p.arena[:0]
}

// count is flush's accounting for one value seen prior times before.
func (u *uniqueChecker) count(prior int, c *Cell, line int64) {
	switch prior {
	case 0:
		u.distinct++
		if u.distinct > u.limit {
			u.full = true
			u.failErr = fmt.Sprintf("more than %d distinct values: uniqueness not checked (raise the unique cap)", u.limit)
		}
	case 1:
		u.unexpected += 2
		u.addExample(Example{Line: line, Value: c.exampleValue(), Note: "repeated value (first occurrence also counted)"})
	default:
		u.unexpected++
		u.addExample(Example{Line: line, Value: c.exampleValue(), Note: "repeated value"})
	}
}

// addExample keeps the maxEx earliest failing lines, in line order.
func (u *uniqueChecker) addExample(e Example) {
	if u.maxEx == 0 || (len(u.examples) == u.maxEx && e.Line >= u.examples[len(u.examples)-1].Line) {
		return
	}
	i := sort.Search(len(u.examples), func(i int) bool { return u.examples[i].Line > e.Line })
	u.examples = append(u.examples, Example{})
	copy(u.examples[i+1:], u.examples[i:])
	u.examples[i] = e
	if len(u.examples) > u.maxEx {
		u.examples = u.examples[:u.maxEx]
	}
}

// example keeps the maxEx earliest failing lines, in line order.
func (u *uniqueChecker) example(p *uniquePart, pv pendingValue, note string) {
	if u.maxEx == 0 || (len(u.examples) == u.maxEx && pv.line >= u.examples[len(u.examples)-1].Line) {
		return
	}
	c := Cell{Kind: pv.kind, Raw: p.arena[pv.off : pv.off+pv.n]}
	if pv.kind == KindInt || pv.kind == KindFloat {
		c.num, c.numState = pv.num, 1
	}
	u.addExample(Example{Line: pv.line, Value: c.exampleValue(), Note: note})
}

func (u *uniqueChecker) finish(rows int64, r *Result) {
	for i := range u.parts {
		u.flush(&u.parts[i])
	}
	u.mapChecker.finish(rows, r)
}
