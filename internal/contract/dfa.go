package contract

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
)

// byteDFA is a lazily built DFA for the regexes that only ever match ASCII
// bytes: no case folding, no "any character", no assertions other than ^ and
// $ at the text's ends. It answers the same question as regexp.Match (is
// there a match anywhere?) in one pass over the bytes, without backtracking
// or thread lists: the search is an NFA simulation whose state sets are
// cached as DFA states. Non-ASCII bytes match no instruction, so multi-byte
// and invalid UTF-8 behave as in package regexp (they cannot be part of a
// match). When the cache would exceed maxDFAStates, newByteDFA's caller
// falls back to package regexp.
type byteDFA struct {
	prog   *syntax.Prog
	states []dfaState
	// trans is every state's next array, flattened: trans[s<<8|c] is the
	// next state n's offset n<<8, or dfaFound when n has found a match, or
	// dfaUnknown. found is each state's match flag.
	trans []int32
	found []bool
	index map[string]int32
	start int32 // state at position 0
	full  bool  // state cap reached: stop building, use the fallback
	// empty is the answer for empty input (position 0 is both ends).
	empty bool
}

type dfaState struct {
	pcs      []uint32
	match    bool // a match has been found
	matchEnd bool // a match is found if the input ends here
}

const maxDFAStates = 2000

// newByteDFA returns nil when pattern is outside the supported subset.
func newByteDFA(pattern string) *byteDFA {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	for _, in := range prog.Inst {
		switch in.Op {
		case syntax.InstRune1, syntax.InstRune:
			if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
				return nil
			}
			for _, r := range in.Rune {
				if r >= 0x80 {
					return nil
				}
			}
		case syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			return nil
		case syntax.InstEmptyWidth:
			switch syntax.EmptyOp(in.Arg) {
			case syntax.EmptyBeginText, syntax.EmptyEndText:
			default:
				return nil
			}
		}
	}
	std, err := regexp.Compile(pattern)
	if err != nil {
		return nil
	}
	d := &byteDFA{prog: prog, index: map[string]int32{}, empty: std.Match(nil)}
	d.start = d.state(d.closure(nil, []uint32{uint32(prog.Start)}, true))
	return d
}

// closure adds to set the pcs reachable from pcs without consuming a byte.
// EndText assertions are kept in the set (checked when the input ends);
// BeginText is followed only at position 0.
func (d *byteDFA) closure(set []uint32, pcs []uint32, atBegin bool) []uint32 {
	stack := append([]uint32(nil), pcs...)
	seen := map[uint32]bool{}
	for _, pc := range set {
		seen[pc] = true
	}
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		in := &d.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg) == syntax.EmptyBeginText {
				if atBegin {
					stack = append(stack, in.Out)
				}
				continue
			}
			set = append(set, pc) // EndText
		case syntax.InstFail:
		default: // InstMatch, InstRune, InstRune1
			set = append(set, pc)
		}
	}
	slices.Sort(set)
	return slices.Compact(set)
}

// state interns a set of pcs; -1 when the cap is reached.
func (d *byteDFA) state(pcs []uint32) int32 {
	var b strings.Builder
	for _, pc := range pcs {
		b.WriteString(strconv.FormatUint(uint64(pc), 36))
		b.WriteByte(',')
	}
	key := b.String()
	if id, ok := d.index[key]; ok {
		return id
	}
	if len(d.states) >= maxDFAStates {
		d.full = true
		return -1
	}
	st := dfaState{pcs: pcs}
	for range 256 {
		d.trans = append(d.trans, dfaUnknown)
	}
	for _, pc := range pcs {
		in := &d.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			st.match = true
		case syntax.InstEmptyWidth: // EndText
			if d.reachesMatch(in.Out) {
				st.matchEnd = true
			}
		}
	}
	st.matchEnd = st.matchEnd || st.match
	id := int32(len(d.states))
	d.states = append(d.states, st)
	d.found = append(d.found, st.match)
	d.index[key] = id
	return id
}

// reachesMatch: can pc reach InstMatch at the end of the input (consuming
// nothing, BeginText false, EndText true)?
func (d *byteDFA) reachesMatch(pc uint32) bool {
	stack := []uint32{pc}
	seen := map[uint32]bool{}
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		in := &d.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			return true
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg) == syntax.EmptyEndText {
				stack = append(stack, in.Out)
			}
		}
	}
	return false
}

// step computes the transition of state s on byte c: the pcs that consume c,
// then (search semantics) a new attempt starting after c.
func (d *byteDFA) step(s int32, c byte) int32 {
	var outs []uint32
	if c < 0x80 {
		for _, pc := range d.states[s].pcs {
			in := &d.prog.Inst[pc]
			if (in.Op == syntax.InstRune1 || in.Op == syntax.InstRune) && in.MatchRune(rune(c)) {
				outs = append(outs, in.Out)
			}
		}
	}
	set := d.closure(nil, outs, false)
	set = d.closure(set, []uint32{uint32(d.prog.Start)}, false)
	return d.state(set)
}

// match reports whether b contains a match; ok is false when the state cap
// was hit and the caller must ask package regexp instead.
func (d *byteDFA) match(b []byte) (matched, ok bool) {
	if len(b) == 0 {
		return d.empty, true
	}
	if d.found[d.start] {
		return true, true
	}
	off := int(d.start) << 8
	trans := d.trans
	for _, c := range b {
		// e is the next state's offset in trans (its number times 256),
		// or dfaFound: one dependent load per byte.
		e := trans[off|int(c)]
		if e < 0 {
			if e == dfaFound {
				return true, true
			}
			if d.full {
				return false, false
			}
			n := d.step(int32(off>>8), c)
			if n < 0 {
				return false, false
			}
			e = n << 8
			if d.found[n] {
				e = dfaFound
			}
			d.trans[off|int(c)] = e
			trans = d.trans
			if e == dfaFound {
				return true, true
			}
		}
		off = int(e)
	}
	return d.states[off>>8].matchEnd, true
}

// Special entries of byteDFA.trans.
const (
	// dfaFound: the next state has found a match, whatever follows.
	dfaFound = -1
	// dfaUnknown: the transition is not computed yet.
	dfaUnknown = -2
)
