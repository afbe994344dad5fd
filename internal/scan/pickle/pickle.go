// Package pickle analyses Python pickle streams without executing them.
//
// An [Analyzer] runs a symbolic version of the pickle virtual machine over a
// stream: it follows the stack, the marks and the memo closely enough to know
// which globals are imported (GLOBAL, STACK_GLOBAL with operands fetched from
// the memo, INST, EXT1/2/4) and which values are called (REDUCE, OBJ, INST,
// NEWOBJ, NEWOBJ_EX) or mutated (BUILD), and reports each as an [Event] the
// moment the real unpickler would act on it. Events seen before a truncation
// or an error are reported too: CPython's unpickler executes opcodes as it
// reads them, so a call before a bad byte has already run.
//
// The semantics follow CPython's C unpickler (Modules/_pickle.c), which is
// what pickle.load and torch.load use:
//
//   - FRAME (protocol 4+) only prefetches; opcodes are read linearly and may
//     straddle a frame boundary, which the pure-Python unpickler would reject.
//     A frame that claims more bytes than the stream holds is reported as a
//     truncation, after the events of the opcodes that precede the end.
//   - MARK sets a fence: no opcode pops below the latest mark.
//   - MEMOIZE stores at index len(memo), the number of entries set so far.
//   - STACK_GLOBAL requires two str operands; protocol 0-2 string opcodes
//     (STRING, BINSTRING, SHORT_BINSTRING) yield str too under Python 3.
//
// Values are tracked only as far as analysis needs them: strings up to
// [Limits.MaxKeep] bytes, small ints, tuples and dicts up to [Limits.MaxItems]
// items. Everything else is an opaque placeholder, so a pickle of millions of
// floats costs a pointer per live stack slot and nothing else.
//
// Resource limits ([Limits]) end the analysis with an error wrapping
// [ErrLimit]; they never panic and never invent events.
package pickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors; an analysis error is an [*Error] wrapping one of them.
var (
	ErrTruncated = errors.New("pickle data was truncated")
	ErrInvalid   = errors.New("invalid pickle")
	ErrLimit     = errors.New("resource limit exceeded")
)

// Error locates an analysis failure.
type Error struct {
	Offset int64  // stream offset of the failing opcode
	Op     string // its pickletools name, "" if not an opcode
	Err    error  // ErrTruncated, ErrInvalid or ErrLimit
	Detail string
}

func (e *Error) Error() string {
	op := ""
	if e.Op != "" {
		op = " " + e.Op
	}
	return fmt.Sprintf("offset %d%s: %v: %s", e.Offset, op, e.Err, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// Limits bound the work and memory of one analysis.
type Limits struct {
	MaxStack   int   // live stack slots
	MaxMarks   int   // nested marks
	MaxMemo    int   // memo entries
	MaxLine    int   // bytes in a protocol 0 text argument
	MaxKeep    int   // longest string kept for import resolution
	MaxItems   int   // tuple/dict items tracked
	MaxOps     int64 // opcodes per stream
	MaxPickles int   // pickles stacked in one stream
	MaxNested  int   // nested pickles (joblib object arrays)
}

// DefaultLimits returns limits that fit any real checkpoint: 16M stack slots
// (a tuple of 16M floats), 16M memo entries, 2^32 opcodes.
func DefaultLimits() Limits {
	return Limits{
		MaxStack: 1 << 24, MaxMarks: 1 << 20, MaxMemo: 1 << 24, MaxLine: 1 << 20,
		MaxKeep: 4096, MaxItems: 64, MaxOps: 1 << 32, MaxPickles: 1 << 20, MaxNested: 4,
	}
}

// EventKind says what an [Event] is.
type EventKind int

const (
	// Import: find_class(Module, Name) via GLOBAL, STACK_GLOBAL or INST.
	Import EventKind = iota
	// Extension: EXT1/2/4 looks Code up in copyreg's extension registry,
	// which the analysis cannot see.
	Extension
	// ComputedImport: STACK_GLOBAL whose operands are not literal strings.
	ComputedImport
	// ComputedCall: a call whose callee is not an imported global.
	ComputedCall
	// BuildGlobal: BUILD sets state on an imported object (a module
	// attribute), mutating global state.
	BuildGlobal
)

func (k EventKind) String() string {
	return [...]string{"import", "extension", "computed-import", "computed-call", "build-global"}[k]
}

// Event is one security-relevant action of the stream.
type Event struct {
	Kind   EventKind
	Offset int64  // stream offset of the opcode
	Op     string // opcode name
	Module string // Import: module as written (before fix_imports)
	Name   string // Import: qualified name, may be dotted
	Code   int64  // Extension: the extension code
}

// Options configure an [Analyzer].
type Options struct {
	Limits Limits
	// OnEvent receives every event in stream order. Required.
	OnEvent func(Event)
	// Joblib enables joblib's inline arrays: after BUILD of a
	// joblib.numpy_pickle.NumpyArrayWrapper the array bytes (or, for object
	// arrays, a nested pickle) follow in the stream, as joblib.load reads them.
	Joblib bool
}

// Pickle describes one complete pickle of a stream.
type Pickle struct {
	Start, End int64 // offsets of the first opcode and one past STOP
	Protocol   int   // highest PROTO seen, 0 if none
	Ops        int64
	// LegacyTorchMagic: the pickle's value is PyTorch's legacy magic number
	// 0x1950a86a20f9469cfc6c (torch.save with _use_new_zipfile_serialization
	// =False writes it as the first of its stacked pickles).
	LegacyTorchMagic bool
	// Value summarises the pickle's value: ints, strings, globals and
	// tuples of them (two levels deep); everything else is ValueOther.
	Value Value
}

// ValueKind is the kind of a [Value].
type ValueKind int

const (
	ValueOther ValueKind = iota
	ValueInt
	ValueStr
	ValueGlobal
	ValueTuple
)

// Value is what the analysis knows of a pickled value.
type Value struct {
	Kind  ValueKind
	Int   int64
	Str   string // ValueStr content; ValueGlobal module
	Name  string // ValueGlobal name
	Items []Value
}

func summarize(v *value, depth int) Value {
	switch {
	case v.kind == vInt:
		return Value{Kind: ValueInt, Int: v.i}
	case v.kind == vStr && v.known:
		return Value{Kind: ValueStr, Str: v.s}
	case v.kind == vGlobal && !v.ext:
		return Value{Kind: ValueGlobal, Str: v.s, Name: v.name}
	case v.kind == vTuple && v.items != nil && depth < 2:
		t := Value{Kind: ValueTuple}
		for _, it := range v.items {
			t.Items = append(t.Items, summarize(it, depth+1))
		}
		return t
	}
	return Value{}
}

// ReadFull reads exactly len(b) raw bytes that follow the last pickle (a
// loader reading its own data between pickles).
func (a *Analyzer) ReadFull(b []byte) error {
	n, err := io.ReadFull(a.r, b)
	a.off += int64(n)
	if err != nil {
		return ErrTruncated
	}
	return nil
}

// Discard skips n raw bytes that follow the last pickle.
func (a *Analyzer) Discard(n uint64) error { return a.discard(n) }

// Analyzer reads pickles from a stream, one per [Analyzer.Next] call.
type Analyzer struct {
	r        *bufio.Reader
	off      int64
	opts     Options
	ops      int64
	npick    int
	nested   int
	scratch  []byte
	frameEnd int64
	trace    func(op byte) // tests: every opcode executed
}

// NewAnalyzer returns an analyzer reading r. Limits left zero take their
// default.
func NewAnalyzer(r io.Reader, opts Options) *Analyzer {
	d := DefaultLimits()
	l := &opts.Limits
	for _, p := range []struct{ v, d *int }{
		{&l.MaxStack, &d.MaxStack}, {&l.MaxMarks, &d.MaxMarks}, {&l.MaxMemo, &d.MaxMemo},
		{&l.MaxLine, &d.MaxLine}, {&l.MaxKeep, &d.MaxKeep}, {&l.MaxItems, &d.MaxItems},
		{&l.MaxPickles, &d.MaxPickles}, {&l.MaxNested, &d.MaxNested},
	} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if l.MaxOps <= 0 {
		l.MaxOps = d.MaxOps
	}
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Analyzer{r: br, opts: opts}
}

// Offset returns the number of bytes consumed so far.
func (a *Analyzer) Offset() int64 { return a.off }

// AtEOF reports whether the stream has no more bytes.
func (a *Analyzer) AtEOF() bool {
	_, err := a.r.Peek(1)
	return err != nil
}

// Peek returns up to n upcoming bytes without consuming them.
func (a *Analyzer) Peek(n int) []byte {
	b, _ := a.r.Peek(n)
	return b
}

// --- values ---

type vkind uint8

const (
	vOpaque vkind = iota
	vStr
	vBytes
	vInt
	vLong // big int, raw little-endian two's complement bytes in s
	vNone
	vBool
	vTuple
	vDict
	vList
	vGlobal
	vObj
	vFloat
)

type value struct {
	kind  vkind
	known bool   // vStr: s is the full content
	s     string // vStr content, vLong bytes, vGlobal module
	name  string // vGlobal name
	i     int64
	items []*value // vTuple items (nil if too many); vDict values
	keys  []string // vDict keys (str keys only)
	fn    *value   // vObj callee
	args  *value   // vObj arguments
	state *value   // vObj BUILD state
	ext   bool     // vGlobal from EXT: unresolved
}

var (
	opaque   = &value{kind: vOpaque}
	noneVal  = &value{kind: vNone}
	trueVal  = &value{kind: vBool, i: 1}
	falseVal = &value{kind: vBool}
	floatVal = &value{kind: vFloat}
)

// maybeStr reports whether v may be a str at run time: a literal string, or
// a value the analysis does not model (a call result, a global constant).
func maybeStr(v *value) bool {
	switch v.kind {
	case vStr, vOpaque, vObj, vGlobal:
		return true
	}
	return false
}

// legacyMagic is 0x1950a86a20f9469cfc6c as LONG1 little-endian bytes.
var legacyMagic = string([]byte{0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19})

// machine is the state of one pickle.
type machine struct {
	stack  []*value
	marks  []int
	memo   []*value
	sparse map[uint64]*value
	nmemo  int
	proto  int
}

func (m *machine) fence() int {
	if len(m.marks) == 0 {
		return 0
	}
	return m.marks[len(m.marks)-1]
}

// --- reading ---

func (a *Analyzer) fail(start int64, op byte, err error, format string, args ...any) error {
	return &Error{Offset: start, Op: OpName(op), Err: err, Detail: fmt.Sprintf(format, args...)}
}

func (a *Analyzer) readFull(n int) ([]byte, error) {
	if cap(a.scratch) < n {
		a.scratch = make([]byte, n)
	}
	b := a.scratch[:n]
	k, err := io.ReadFull(a.r, b)
	a.off += int64(k)
	if err != nil {
		return nil, ErrTruncated
	}
	return b, nil
}

func (a *Analyzer) discard(n uint64) error {
	for n > 0 {
		chunk := n
		if chunk > 1<<30 {
			chunk = 1 << 30
		}
		k, err := a.r.Discard(int(chunk))
		a.off += int64(k)
		n -= uint64(k)
		if err != nil {
			return ErrTruncated
		}
	}
	return nil
}

// readLine reads through '\n' and returns the line without it.
func (a *Analyzer) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := a.r.ReadSlice('\n')
		a.off += int64(len(frag))
		if len(line)+len(frag) > a.opts.Limits.MaxLine {
			return nil, ErrLimit
		}
		if err == nil {
			if line == nil {
				return frag[:len(frag)-1], nil
			}
			line = append(line, frag...)
			return line[:len(line)-1], nil
		}
		if err != bufio.ErrBufferFull {
			return nil, ErrTruncated
		}
		line = append(line, frag...)
	}
}

// readString reads n bytes as a string value of kind k, keeping the content
// if it is short enough.
func (a *Analyzer) readString(n uint64, k vkind, checkUTF8 bool) (*value, error) {
	if n > uint64(a.opts.Limits.MaxKeep) {
		if err := a.discard(n); err != nil {
			return nil, err
		}
		return &value{kind: k}, nil
	}
	b, err := a.readFull(int(n))
	if err != nil {
		return nil, err
	}
	if checkUTF8 && !utf8.Valid(b) {
		return nil, ErrInvalid
	}
	return &value{kind: k, known: true, s: string(b)}, nil
}

// Next analyses the next pickle of the stream, through its STOP opcode. It
// returns io.EOF, and no events, if the stream is at its end. Any other error
// is an [*Error]; the events of opcodes before the failure have been
// delivered.
func (a *Analyzer) Next() (Pickle, error) {
	if a.AtEOF() {
		return Pickle{}, io.EOF
	}
	a.npick++
	if a.npick > a.opts.Limits.MaxPickles {
		return Pickle{}, &Error{Offset: a.off, Err: ErrLimit, Detail: "too many stacked pickles"}
	}
	return a.run()
}

func (a *Analyzer) run() (Pickle, error) {
	m := &machine{}
	p := Pickle{Start: a.off}
	lim := &a.opts.Limits
	emit := a.opts.OnEvent
	for {
		start := a.off
		op, err := a.r.ReadByte()
		if err != nil {
			if a.frameEnd > a.off {
				return p, a.fail(start, 0, ErrTruncated, "stream ends inside a FRAME of %d more bytes", a.frameEnd-a.off)
			}
			return p, a.fail(start, 0, ErrTruncated, "stream ends without STOP")
		}
		a.off++
		a.ops++
		p.Ops++
		if a.trace != nil {
			a.trace(op)
		}
		if a.ops > lim.MaxOps {
			return p, a.fail(start, op, ErrLimit, "more than %d opcodes", lim.MaxOps)
		}
		// failE turns a read error into a located one.
		failE := func(err error) error {
			switch err {
			case ErrLimit:
				return a.fail(start, op, ErrLimit, "argument longer than %d bytes", lim.MaxLine)
			case ErrInvalid:
				return a.fail(start, op, ErrInvalid, "invalid argument")
			}
			return a.fail(start, op, ErrTruncated, "argument cut short")
		}
		push := func(v *value) error {
			if len(m.stack) >= lim.MaxStack {
				return a.fail(start, op, ErrLimit, "stack deeper than %d", lim.MaxStack)
			}
			m.stack = append(m.stack, v)
			return nil
		}
		pop := func() (*value, error) {
			if len(m.stack) <= m.fence() {
				return nil, a.fail(start, op, ErrInvalid, "unpickling stack underflow")
			}
			v := m.stack[len(m.stack)-1]
			m.stack[len(m.stack)-1] = nil
			m.stack = m.stack[:len(m.stack)-1]
			return v, nil
		}
		top := func() (*value, error) {
			if len(m.stack) <= m.fence() {
				return nil, a.fail(start, op, ErrInvalid, "unpickling stack underflow")
			}
			return m.stack[len(m.stack)-1], nil
		}
		popMark := func() ([]*value, error) {
			if len(m.marks) == 0 {
				return nil, a.fail(start, op, ErrInvalid, "could not find MARK")
			}
			k := m.marks[len(m.marks)-1]
			m.marks = m.marks[:len(m.marks)-1]
			items := m.stack[k:]
			m.stack = m.stack[:k]
			return items, nil
		}
		// belowMark returns the value just below the current mark's items
		// (the list/dict/set of APPENDS/SETITEMS/ADDITEMS). As in
		// _pickle.c do_append, it may lie below an enclosing mark.
		belowMark := func() (*value, error) {
			if len(m.marks) == 0 {
				return nil, a.fail(start, op, ErrInvalid, "could not find MARK")
			}
			k := m.marks[len(m.marks)-1]
			if k < 1 {
				return nil, a.fail(start, op, ErrInvalid, "unpickling stack underflow")
			}
			return m.stack[k-1], nil
		}
		memoPut := func(idx uint64, v *value) error {
			// Dense indices (what picklers write) live in a slice; a
			// far-away index goes to a map, so one LONG_BINPUT cannot make
			// the analysis allocate a huge slice.
			fresh := false
			if idx < uint64(len(m.memo)) {
				fresh = m.memo[idx] == nil
			} else {
				_, ok := m.sparse[idx]
				fresh = !ok
			}
			if fresh {
				if m.nmemo >= lim.MaxMemo {
					return a.fail(start, op, ErrLimit, "more than %d memo entries", lim.MaxMemo)
				}
				m.nmemo++
			}
			if idx < uint64(len(m.memo)) {
				m.memo[idx] = v
				return nil
			}
			if idx < uint64(2*len(m.memo)+1024) {
				n := 2*len(m.memo) + 1024
				nm := make([]*value, n)
				copy(nm, m.memo)
				for k, sv := range m.sparse {
					if k < uint64(n) {
						nm[k] = sv
						delete(m.sparse, k)
					}
				}
				m.memo = nm
				m.memo[idx] = v
				return nil
			}
			if m.sparse == nil {
				m.sparse = map[uint64]*value{}
			}
			m.sparse[idx] = v
			return nil
		}
		memoGet := func(idx uint64) error {
			if idx < uint64(len(m.memo)) && m.memo[idx] != nil {
				return push(m.memo[idx])
			}
			if v, ok := m.sparse[idx]; ok {
				return push(v)
			}
			return a.fail(start, op, ErrInvalid, "memo value not found at index %d", idx)
		}
		call := func(fn *value, args *value) *value {
			if fn.kind != vGlobal {
				emit(Event{Kind: ComputedCall, Offset: start, Op: OpName(op)})
			}
			return &value{kind: vObj, fn: fn, args: args}
		}
		importGlobal := func(module, name string) (*value, error) {
			// Python's importer resolves only identifier paths: any other
			// name fails to import, and unpickling stops there.
			if !dottedIdent(module) || !dottedIdent(name) {
				return nil, a.fail(start, op, ErrInvalid, "%q.%q is not an importable name", module, name)
			}
			emit(Event{Kind: Import, Offset: start, Op: OpName(op), Module: module, Name: name})
			return &value{kind: vGlobal, s: module, name: name}, nil
		}

		switch op {
		case opMARK:
			if len(m.marks) >= lim.MaxMarks {
				return p, a.fail(start, op, ErrLimit, "more than %d marks", lim.MaxMarks)
			}
			m.marks = append(m.marks, len(m.stack))
		case opSTOP:
			v, err := pop()
			if err != nil {
				return p, err
			}
			p.End = a.off
			p.Protocol = m.proto
			p.LegacyTorchMagic = v.kind == vLong && v.s == legacyMagic
			p.Value = summarize(v, 0)
			return p, nil
		case opPOP:
			if len(m.stack) > m.fence() {
				_, _ = pop()
			} else if len(m.marks) > 0 {
				m.marks = m.marks[:len(m.marks)-1]
			} else {
				return p, a.fail(start, op, ErrInvalid, "unpickling stack underflow")
			}
		case opPOP_MARK:
			if _, err := popMark(); err != nil {
				return p, err
			}
		case opDUP:
			v, err := top()
			if err != nil {
				return p, err
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opFLOAT:
			if _, err := a.readLine(); err != nil {
				return p, failE(err)
			}
			if err := push(floatVal); err != nil {
				return p, err
			}
		case opINT, opLONG:
			line, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			s := string(bytes.TrimSpace(line))
			if op == opLONG {
				s = trimL(s)
			}
			v := opaque
			if op == opINT && (s == "00" || s == "01") {
				v = falseVal
				if s == "01" {
					v = trueVal
				}
			} else if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				v = &value{kind: vInt, i: i}
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opBININT, opBININT1, opBININT2:
			n := map[byte]int{opBININT: 4, opBININT1: 1, opBININT2: 2}[op]
			b, err := a.readFull(n)
			if err != nil {
				return p, failE(err)
			}
			var i int64
			switch n {
			case 1:
				i = int64(b[0])
			case 2:
				i = int64(binary.LittleEndian.Uint16(b))
			default:
				i = int64(int32(binary.LittleEndian.Uint32(b)))
			}
			if err := push(&value{kind: vInt, i: i}); err != nil {
				return p, err
			}
		case opBINFLOAT:
			if _, err := a.readFull(8); err != nil {
				return p, failE(err)
			}
			if err := push(floatVal); err != nil {
				return p, err
			}
		case opLONG1, opLONG4:
			var n int64
			if op == opLONG1 {
				b, err := a.readFull(1)
				if err != nil {
					return p, failE(err)
				}
				n = int64(b[0])
			} else {
				b, err := a.readFull(4)
				if err != nil {
					return p, failE(err)
				}
				n = int64(int32(binary.LittleEndian.Uint32(b)))
				if n < 0 {
					return p, a.fail(start, op, ErrInvalid, "LONG pickle has negative byte count")
				}
			}
			v, err := a.readString(uint64(n), vLong, false)
			if err != nil {
				return p, failE(err)
			}
			if v.known && n <= 8 {
				var u uint64
				for i := len(v.s) - 1; i >= 0; i-- {
					u = u<<8 | uint64(v.s[i])
				}
				if n > 0 && n < 8 && v.s[n-1]&0x80 != 0 {
					u |= ^uint64(0) << (8 * uint(n))
				}
				v = &value{kind: vInt, i: int64(u), s: v.s}
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opNONE:
			if err := push(noneVal); err != nil {
				return p, err
			}
		case opNEWTRUE, opNEWFALSE:
			v := trueVal
			if op == opNEWFALSE {
				v = falseVal
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opPERSID:
			if _, err := a.readLine(); err != nil {
				return p, failE(err)
			}
			if err := push(opaque); err != nil {
				return p, err
			}
		case opBINPERSID:
			if _, err := pop(); err != nil {
				return p, err
			}
			if err := push(opaque); err != nil {
				return p, err
			}
		case opREDUCE:
			args, err := pop()
			if err != nil {
				return p, err
			}
			fn, err := pop()
			if err != nil {
				return p, err
			}
			if err := push(call(fn, args)); err != nil {
				return p, err
			}
		case opSTRING:
			line, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			s, ok := unquote(line)
			if !ok {
				return p, a.fail(start, op, ErrInvalid, "the STRING opcode argument must be quoted")
			}
			v := &value{kind: vStr}
			if len(s) <= lim.MaxKeep {
				v.known, v.s = true, s
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opBINSTRING, opSHORT_BINSTR, opBINBYTES, opSHORT_BINBYTES, opBINUNICODE, opSHORT_BINUNI,
			opBINUNICODE8, opBINBYTES8, opBYTEARRAY8:
			var n uint64
			switch op {
			case opSHORT_BINSTR, opSHORT_BINBYTES, opSHORT_BINUNI:
				b, err := a.readFull(1)
				if err != nil {
					return p, failE(err)
				}
				n = uint64(b[0])
			case opBINSTRING:
				b, err := a.readFull(4)
				if err != nil {
					return p, failE(err)
				}
				sn := int32(binary.LittleEndian.Uint32(b))
				if sn < 0 {
					return p, a.fail(start, op, ErrInvalid, "BINSTRING pickle has negative byte count")
				}
				n = uint64(sn)
			case opBINBYTES, opBINUNICODE:
				b, err := a.readFull(4)
				if err != nil {
					return p, failE(err)
				}
				n = uint64(binary.LittleEndian.Uint32(b))
			default:
				b, err := a.readFull(8)
				if err != nil {
					return p, failE(err)
				}
				n = binary.LittleEndian.Uint64(b)
				if n > math.MaxInt64 {
					return p, a.fail(start, op, ErrInvalid, "byte count %d exceeds the maximum", n)
				}
			}
			k := vStr
			switch op {
			case opBINBYTES, opSHORT_BINBYTES, opBINBYTES8, opBYTEARRAY8:
				k = vBytes
			}
			utf := op == opBINUNICODE || op == opSHORT_BINUNI || op == opBINUNICODE8
			v, err := a.readString(n, k, utf)
			if err != nil {
				return p, failE(err)
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opUNICODE:
			line, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			v := &value{kind: vStr}
			if s, ok := rawUnicodeEscape(line); ok && len(s) <= lim.MaxKeep {
				v.known, v.s = true, s
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opAPPEND:
			if _, err := pop(); err != nil {
				return p, err
			}
			if _, err := top(); err != nil {
				return p, err
			}
		case opAPPENDS, opSETITEMS, opADDITEMS:
			target, err := belowMark()
			if err != nil {
				return p, err
			}
			items, err := popMark()
			if err != nil {
				return p, err
			}
			if op == opSETITEMS {
				if len(items)%2 != 0 {
					return p, a.fail(start, op, ErrInvalid, "odd number of items for SETITEMS")
				}
				for i := 0; i < len(items); i += 2 {
					setItem(target, items[i], items[i+1], lim.MaxItems)
				}
			}
		case opBUILD:
			state, err := pop()
			if err != nil {
				return p, err
			}
			obj, err := top()
			if err != nil {
				return p, err
			}
			switch obj.kind {
			case vGlobal:
				emit(Event{Kind: BuildGlobal, Offset: start, Op: OpName(op), Module: obj.s, Name: obj.name})
			case vObj:
				obj.state = state
				if a.opts.Joblib && wrapperInstance(obj) {
					if err := a.joblibArray(start, state); err != nil {
						return p, err
					}
				}
			}
		case opGLOBAL:
			mod, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			module := string(mod)
			name, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			if !utf8.ValidString(module) || !utf8.Valid(name) {
				return p, a.fail(start, op, ErrInvalid, "GLOBAL name is not UTF-8")
			}
			v, err := importGlobal(module, string(name))
			if err != nil {
				return p, err
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opSTACK_GLOBAL:
			name, err := pop()
			if err != nil {
				return p, err
			}
			mod, err := pop()
			if err != nil {
				return p, err
			}
			if !maybeStr(name) || !maybeStr(mod) {
				return p, a.fail(start, op, ErrInvalid, "STACK_GLOBAL requires str")
			}
			if !name.known || !mod.known {
				emit(Event{Kind: ComputedImport, Offset: start, Op: OpName(op)})
				if err := push(&value{kind: vGlobal, ext: true}); err != nil {
					return p, err
				}
				break
			}
			v, err := importGlobal(mod.s, name.s)
			if err != nil {
				return p, err
			}
			if err := push(v); err != nil {
				return p, err
			}
		case opDICT:
			items, err := popMark()
			if err != nil {
				return p, err
			}
			if len(items)%2 != 0 {
				return p, a.fail(start, op, ErrInvalid, "odd number of items for DICT")
			}
			d := &value{kind: vDict}
			for i := 0; i < len(items); i += 2 {
				setItem(d, items[i], items[i+1], lim.MaxItems)
			}
			if err := push(d); err != nil {
				return p, err
			}
		case opEMPTY_DICT:
			if err := push(&value{kind: vDict}); err != nil {
				return p, err
			}
		case opEMPTY_LIST, opEMPTY_SET:
			if err := push(&value{kind: vList}); err != nil {
				return p, err
			}
		case opEMPTY_TUPLE:
			if err := push(&value{kind: vTuple, items: []*value{}}); err != nil {
				return p, err
			}
		case opGET, opBINGET, opLONG_BINGET, opPUT, opBINPUT, opLONG_BINPUT:
			var idx uint64
			switch op {
			case opGET, opPUT:
				line, err := a.readLine()
				if err != nil {
					return p, failE(err)
				}
				i, perr := strconv.ParseInt(string(bytes.TrimSpace(line)), 10, 64)
				if perr != nil {
					return p, a.fail(start, op, ErrInvalid, "bad memo index %q", line)
				}
				if i < 0 {
					return p, a.fail(start, op, ErrInvalid, "negative memo index")
				}
				idx = uint64(i)
			case opBINGET, opBINPUT:
				b, err := a.readFull(1)
				if err != nil {
					return p, failE(err)
				}
				idx = uint64(b[0])
			default:
				b, err := a.readFull(4)
				if err != nil {
					return p, failE(err)
				}
				idx = uint64(binary.LittleEndian.Uint32(b))
			}
			switch op {
			case opGET, opBINGET, opLONG_BINGET:
				if err := memoGet(idx); err != nil {
					return p, err
				}
			default:
				v, err := top()
				if err != nil {
					return p, err
				}
				if err := memoPut(idx, v); err != nil {
					return p, err
				}
			}
		case opMEMOIZE:
			v, err := top()
			if err != nil {
				return p, err
			}
			if err := memoPut(uint64(m.nmemo), v); err != nil {
				return p, err
			}
		case opINST:
			mod, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			module := string(mod)
			name, err := a.readLine()
			if err != nil {
				return p, failE(err)
			}
			if !utf8.ValidString(module) || !utf8.Valid(name) {
				return p, a.fail(start, op, ErrInvalid, "INST name is not UTF-8")
			}
			items, err := popMark()
			if err != nil {
				return p, err
			}
			cls, err := importGlobal(module, string(name))
			if err != nil {
				return p, err
			}
			if err := push(call(cls, tuple(items, lim.MaxItems))); err != nil {
				return p, err
			}
		case opOBJ:
			items, err := popMark()
			if err != nil {
				return p, err
			}
			if len(items) < 1 {
				return p, a.fail(start, op, ErrInvalid, "OBJ without a class")
			}
			if err := push(call(items[0], tuple(items[1:], lim.MaxItems))); err != nil {
				return p, err
			}
		case opLIST, opFROZENSET:
			if _, err := popMark(); err != nil {
				return p, err
			}
			if err := push(&value{kind: vList}); err != nil {
				return p, err
			}
		case opTUPLE:
			items, err := popMark()
			if err != nil {
				return p, err
			}
			if err := push(tuple(items, lim.MaxItems)); err != nil {
				return p, err
			}
		case opTUPLE1, opTUPLE2, opTUPLE3:
			n := int(op-opTUPLE1) + 1
			if len(m.stack)-n < m.fence() {
				return p, a.fail(start, op, ErrInvalid, "unpickling stack underflow")
			}
			items := m.stack[len(m.stack)-n:]
			t := tuple(items, lim.MaxItems)
			m.stack = m.stack[:len(m.stack)-n]
			if err := push(t); err != nil {
				return p, err
			}
		case opSETITEM:
			v, err := pop()
			if err != nil {
				return p, err
			}
			k, err := pop()
			if err != nil {
				return p, err
			}
			d, err := top()
			if err != nil {
				return p, err
			}
			setItem(d, k, v, lim.MaxItems)
		case opPROTO:
			b, err := a.readFull(1)
			if err != nil {
				return p, failE(err)
			}
			if b[0] > 5 {
				return p, a.fail(start, op, ErrInvalid, "unsupported pickle protocol: %d", b[0])
			}
			if int(b[0]) > m.proto {
				m.proto = int(b[0])
			}
		case opNEWOBJ, opNEWOBJ_EX:
			if op == opNEWOBJ_EX {
				if _, err := pop(); err != nil { // kwargs
					return p, err
				}
			}
			args, err := pop()
			if err != nil {
				return p, err
			}
			cls, err := pop()
			if err != nil {
				return p, err
			}
			if err := push(call(cls, args)); err != nil {
				return p, err
			}
		case opEXT1, opEXT2, opEXT4:
			n := map[byte]int{opEXT1: 1, opEXT2: 2, opEXT4: 4}[op]
			b, err := a.readFull(n)
			if err != nil {
				return p, failE(err)
			}
			var code int64
			switch n {
			case 1:
				code = int64(b[0])
			case 2:
				code = int64(binary.LittleEndian.Uint16(b))
			default:
				code = int64(int32(binary.LittleEndian.Uint32(b)))
			}
			if code <= 0 {
				return p, a.fail(start, op, ErrInvalid, "EXT specifies code <= 0")
			}
			emit(Event{Kind: Extension, Offset: start, Op: OpName(op), Code: code})
			if err := push(&value{kind: vGlobal, ext: true}); err != nil {
				return p, err
			}
		case opFRAME:
			b, err := a.readFull(8)
			if err != nil {
				return p, failE(err)
			}
			n := binary.LittleEndian.Uint64(b)
			if n > math.MaxInt64 {
				return p, a.fail(start, op, ErrInvalid, "FRAME length exceeds system's maximum")
			}
			a.frameEnd = a.off + int64(n)
		case opNEXT_BUFFER:
			if err := push(opaque); err != nil {
				return p, err
			}
		case opREADONLY_BUF:
			if _, err := top(); err != nil {
				return p, err
			}
		default:
			return p, a.fail(start, op, ErrInvalid, "invalid load key 0x%02x", op)
		}
	}
}

func trimL(s string) string {
	if len(s) > 0 && (s[len(s)-1] == 'L' || s[len(s)-1] == 'l') {
		return s[:len(s)-1]
	}
	return s
}

func tuple(items []*value, max int) *value {
	t := &value{kind: vTuple, i: int64(len(items))}
	if len(items) <= max {
		t.items = append([]*value{}, items...)
	}
	return t
}

func setItem(d, k, v *value, max int) {
	if d.kind != vDict || k.kind != vStr || !k.known {
		return
	}
	for i, key := range d.keys {
		if key == k.s {
			d.items[i] = v
			return
		}
	}
	if len(d.keys) < max {
		d.keys = append(d.keys, k.s)
		d.items = append(d.items, v)
	}
}

func (v *value) get(key string) (*value, bool) {
	if v == nil || v.kind != vDict {
		return nil, false
	}
	for i, k := range v.keys {
		if k == key {
			return v.items[i], true
		}
	}
	return nil, false
}

// unquote decodes a protocol 0 STRING argument: a Python bytes repr in
// single or double quotes.
func unquote(line []byte) (string, bool) {
	if len(line) < 2 {
		return "", false
	}
	q := line[0]
	if (q != '\'' && q != '"') || line[len(line)-1] != q {
		return "", false
	}
	body := line[1 : len(line)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	var out []byte
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' || i+1 == len(body) {
			out = append(out, c)
			continue
		}
		i++
		switch e := body[i]; e {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case '\\', '\'', '"':
			out = append(out, e)
		case '\n':
		case 'x':
			if i+2 < len(body)+0 && i+2 <= len(body)-1 {
				if v, err := strconv.ParseUint(string(body[i+1:i+3]), 16, 8); err == nil {
					out = append(out, byte(v))
					i += 2
					continue
				}
			}
			return "", false
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(body) && j < i+3 && body[j] >= '0' && body[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(string(body[i:j]), 8, 16)
			out = append(out, byte(v))
			i = j - 1
		default:
			out = append(out, '\\', e)
		}
	}
	return string(out), true
}

// rawUnicodeEscape decodes Python's raw-unicode-escape codec: \uXXXX and
// \UXXXXXXXX escapes, every other byte is Latin-1.
func rawUnicodeEscape(b []byte) (string, bool) {
	var out []rune
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) && (b[i+1] == 'u' || b[i+1] == 'U') {
			n := 4
			if b[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(b) {
				return "", false
			}
			v, err := strconv.ParseUint(string(b[i+2:i+2+n]), 16, 32)
			if err != nil || v > utf8.MaxRune {
				return "", false
			}
			out = append(out, rune(v))
			i += 1 + n
			continue
		}
		out = append(out, rune(b[i]))
	}
	return string(out), true
}

// dottedIdent reports whether s is a dot-separated path of Python
// identifiers (ASCII letters, digits, underscore, or any non-ASCII letter;
// not starting with a digit).
func dottedIdent(s string) bool {
	if s == "" {
		return false
	}
	start := true
	for _, r := range s {
		switch {
		case r == '.':
			if start {
				return false
			}
			start = true
			continue
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case r >= '0' && r <= '9':
			if start {
				return false
			}
		case r > 0x7f && unicode.IsLetter(r) || r > 0x7f && !start && (unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)):
		default:
			return false
		}
		start = false
	}
	return !start
}
