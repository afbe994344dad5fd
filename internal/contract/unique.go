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

// example keeps the maxEx earliest failing lines, in line order.
func (u *uniqueChecker) example(p *uniquePart, pv pendingValue, note string) {
	if u.maxEx == 0 || (len(u.examples) == u.maxEx && pv.line >= u.examples[len(u.examples)-1].Line) {
		return
	}
	c := Cell{Kind: pv.kind, Raw: p.arena[pv.off : pv.off+pv.n]}
	if pv.kind == KindInt || pv.kind == KindFloat {
		c.num, c.numState = pv.num, 1
	}
	e := Example{Line: pv.line, Value: c.exampleValue(), Note: note}
	i := sort.Search(len(u.examples), func(i int) bool { return u.examples[i].Line > pv.line })
	u.examples = append(u.examples, Example{})
	copy(u.examples[i+1:], u.examples[i:])
	u.examples[i] = e
	if len(u.examples) > u.maxEx {
		u.examples = u.examples[:u.maxEx]
	}
}

func (u *uniqueChecker) finish(rows int64, r *Result) {
	for i := range u.parts {
		u.flush(&u.parts[i])
	}
	u.mapChecker.finish(rows, r)
}
