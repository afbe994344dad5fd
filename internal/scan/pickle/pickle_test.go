package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

func analyze(t testing.TB, data []byte, lim Limits) ([]Event, Summary, error) {
	t.Helper()
	var evs []Event
	s, err := AnalyzeStream(bytes.NewReader(data), Options{Limits: lim, OnEvent: func(e Event) { evs = append(evs, e) }, Joblib: true})
	return evs, s, err
}

func su(s string) []byte { return append([]byte{opSHORT_BINUNI, byte(len(s))}, s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// floats returns a protocol-2 pickle of a list of n floats, batched by
// APPENDS as pickle.dumps writes it, or a tuple if tuple is set.
func floats(n int, tuple bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{opPROTO, 4})
	if !tuple {
		b.WriteByte(opEMPTY_LIST)
		b.WriteByte(opMEMOIZE)
	}
	var f [9]byte
	f[0] = opBINFLOAT
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			if i > 0 && !tuple {
				b.WriteByte(opAPPENDS)
			}
			if !tuple || i == 0 {
				b.WriteByte(opMARK)
			}
		}
		binary.BigEndian.PutUint64(f[1:], math.Float64bits(float64(i)))
		b.Write(f[:])
	}
	if tuple {
		b.WriteByte(opTUPLE)
	} else {
		b.WriteByte(opAPPENDS)
	}
	b.WriteByte(opSTOP)
	return b.Bytes()
}

func TestMillionsOfFloatsAreBenign(t *testing.T) {
	for _, tuple := range []bool{false, true} {
		data := floats(2_000_000, tuple)
		evs, s, err := analyze(t, data, Limits{})
		if err != nil || len(evs) != 0 || s.Pickles != 1 {
			t.Errorf("tuple=%v: err %v, events %v, pickles %d", tuple, err, evs, s.Pickles)
		}
	}
}

func TestLimitsGiveErrLimitNotPanics(t *testing.T) {
	cases := map[string]struct {
		data []byte
		lim  Limits
	}{
		"stack":  {floats(5000, true), Limits{MaxStack: 1000}},
		"marks":  {bytes.Repeat([]byte{opMARK}, 100), Limits{MaxMarks: 10}},
		"memo":   {cat([]byte{opNONE, opLONG_BINPUT}, []byte{0xff, 0xff, 0xff, 0x7f}, []byte{opMEMOIZE, opMEMOIZE, opSTOP}), Limits{MaxMemo: 2}},
		"line":   {cat([]byte("S'"), bytes.Repeat([]byte("a"), 2<<20)), Limits{}},
		"ops":    {bytes.Repeat([]byte{opNONE, opPOP}, 100), Limits{MaxOps: 50}},
		"pickle": {bytes.Repeat([]byte{opNONE, opSTOP}, 100), Limits{MaxPickles: 10}},
	}
	for name, c := range cases {
		_, _, err := analyze(t, c.data, c.lim)
		if !errors.Is(err, ErrLimit) {
			t.Errorf("%s: err %v, want ErrLimit", name, err)
		}
	}
}

func TestEventsBeforeTruncationAreDelivered(t *testing.T) {
	data := cat([]byte("cos\nsystem\n(S'id'\ntR"), []byte{opBINUNICODE, 9, 0})
	evs, _, err := analyze(t, data, Limits{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v, want ErrTruncated", err)
	}
	if len(evs) != 1 || evs[0].Module != "os" || evs[0].Name != "system" || evs[0].Offset != 0 {
		t.Fatalf("events %+v", evs)
	}
}

// TestFrameFollowsCUnpickler: opcodes may straddle a frame's end (the C
// unpickler only prefetches), so the import after it is seen.
func TestFrameFollowsCUnpickler(t *testing.T) {
	body := cat(su("os"), su("system"))
	frame := make([]byte, 9)
	frame[0] = opFRAME
	binary.LittleEndian.PutUint64(frame[1:], uint64(len(body)-3)) // ends inside "system"
	data := cat([]byte{opPROTO, 4}, frame, body, []byte{opSTACK_GLOBAL, opSTOP})
	evs, _, err := analyze(t, data, Limits{})
	if err != nil || len(evs) != 1 || evs[0].Name != "system" {
		t.Fatalf("err %v events %+v", err, evs)
	}
}

func TestStackGlobalFromMemo(t *testing.T) {
	// Memoised with MEMOIZE (index = entries so far, not the highest index),
	// BINPUT and PUT, popped, fetched back.
	data := cat([]byte{opPROTO, 4, opNONE, opBINPUT, 5, opPOP}, su("nt"), []byte{opMEMOIZE, opPOP}, su("system"),
		[]byte("p9\n0"), []byte{opBINGET, 1}, []byte("g9\n"), []byte{opSTACK_GLOBAL, opSTOP})
	evs, _, err := analyze(t, data, Limits{})
	if err != nil || len(evs) != 1 || evs[0].Module != "nt" || evs[0].Name != "system" {
		t.Fatalf("err %v events %+v", err, evs)
	}
}

func TestNonIdentifierImportsFail(t *testing.T) {
	for _, data := range []string{"cos \nsystem\n.", "cos\nsystem\r\n.", "c1os\nsystem\n.", "cos.\nsystem\n.", "c\nsystem\n."} {
		evs, _, err := analyze(t, []byte(data), Limits{})
		if !errors.Is(err, ErrInvalid) || len(evs) != 0 {
			t.Errorf("%q: err %v events %+v", data, err, evs)
		}
	}
	evs, _, err := analyze(t, []byte("cnumpy.core.multiarray\n_reconstruct\n.cmódulo\nfunción\n."), Limits{})
	if err != nil || len(evs) != 2 {
		t.Errorf("valid names: err %v events %+v", err, evs)
	}
}

func TestStackGlobalRejectsNonStr(t *testing.T) {
	data := []byte{opPROTO, 4, opNONE, opNONE, opSTACK_GLOBAL, opSTOP}
	if _, _, err := analyze(t, data, Limits{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want ErrInvalid", err)
	}
}

func TestMarkIsAFence(t *testing.T) {
	// REDUCE cannot pop below the mark: CPython fails with a stack
	// underflow before calling anything.
	data := []byte("cos\nsystem\nS'id'\n(R.")
	evs, _, err := analyze(t, data, Limits{})
	if !errors.Is(err, ErrInvalid) || len(evs) != 1 {
		t.Fatalf("err %v events %+v", err, evs)
	}
}

// TestAppendsBelowEnclosingMark: the list of APPENDS may sit below an
// enclosing mark (_pickle.c do_append checks only x > 0), so analysis goes on
// to the import after it.
func TestAppendsBelowEnclosingMark(t *testing.T) {
	data := []byte("](((NeN0000cos\nsystem\n.")
	data = bytes.ReplaceAll(data, []byte("0000"), []byte("1"))
	evs, _, err := analyze(t, data, Limits{})
	if err != nil || len(evs) != 1 || evs[0].Name != "system" {
		t.Fatalf("err %v events %+v", err, evs)
	}
}

func TestStackedAndTrailing(t *testing.T) {
	_, s, err := analyze(t, []byte("N.N.N."), Limits{})
	if err != nil || s.Pickles != 3 {
		t.Fatalf("stacked: %v %d", err, s.Pickles)
	}
	_, s, err = analyze(t, []byte("N.\x00garbage"), Limits{})
	if err != nil || !s.Trailing || s.Consumed != 2 {
		t.Fatalf("trailing: %v %+v", err, s)
	}
	// Trailing bytes that start with an opcode are another pickle.
	_, _, err = analyze(t, []byte("N.N"), Limits{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("trailing opcode: %v", err)
	}
	_, _, err = analyze(t, nil, Limits{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("empty: %v", err)
	}
}

func TestLegacyTorchStopsAfterFivePickles(t *testing.T) {
	magic := cat([]byte{opPROTO, 2, opLONG1, 10}, []byte(legacyMagic), []byte{opSTOP})
	data := cat(magic, []byte("N.N.N.N."), []byte{0x00, 0xff, 0x13}) // raw storage bytes
	_, s, err := analyze(t, data, Limits{})
	if err != nil || !s.LegacyTorch || s.Pickles != 5 {
		t.Fatalf("err %v summary %+v", err, s)
	}
}

// TestEveryOpcode runs one stream that uses every opcode of protocols 0-5.
func TestEveryOpcode(t *testing.T) {
	u32 := func(n int) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, uint32(n)); return b }
	u64 := func(n int) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, uint64(n)); return b }
	data := cat(
		[]byte{opPROTO, 5, opFRAME}, u64(4),
		[]byte{opMARK},
		[]byte("F1.5\nI7\nI01\nL12L\n"), []byte{opBININT}, u32(5), []byte{opBININT1, 1, opBININT2, 1, 2},
		[]byte{opNONE, opNEWTRUE, opNEWFALSE, opLONG1, 1, 1, opLONG4}, u32(1), []byte{2},
		[]byte("S'a\\x41'\n"), []byte{opBINSTRING}, u32(1), []byte("b"), []byte{opSHORT_BINSTR, 1, 'c'},
		[]byte("Vd\\u0041\n"), []byte{opBINUNICODE}, u32(1), []byte("e"), su("f"), []byte{opBINUNICODE8}, u64(1), []byte("g"),
		[]byte{opBINBYTES}, u32(1), []byte("h"), []byte{opSHORT_BINBYTES, 1, 'i', opBINBYTES8}, u64(1), []byte("j"),
		[]byte{opBYTEARRAY8}, u64(1), []byte("k"), []byte{opREADONLY_BUF},
		[]byte{opBINFLOAT}, u64(0),
		[]byte{opTUPLE},
		[]byte{opEMPTY_LIST, opMARK, opNONE, opAPPENDS, opNONE, opAPPEND},
		[]byte{opPOP, opMARK, opNONE, opLIST, opPOP},
		[]byte{opEMPTY_DICT, opMARK, opNONE, opNONE, opSETITEMS, opNONE, opNONE, opSETITEM, opPOP},
		[]byte{opMARK, opNONE, opNONE, opDICT, opPOP},
		[]byte{opEMPTY_SET, opMARK, opNONE, opADDITEMS, opPOP, opMARK, opNONE, opFROZENSET, opPOP},
		[]byte{opEMPTY_TUPLE, opTUPLE1, opTUPLE1, opPOP},
		[]byte{opNONE, opNONE, opTUPLE2, opNONE, opNONE, opNONE, opTUPLE3, opPOP, opPOP},
		[]byte{opNONE, opDUP, opPOP, opPOP, opMARK, opNONE, opPOP_MARK, opMARK, opPOP},
		[]byte("cbuiltins\nset\n"), []byte{opEMPTY_TUPLE, opREDUCE, opNONE, opBUILD, opPOP},
		[]byte("(ibuiltins\nset\n0"), []byte("(cbuiltins\nset\no0"),
		su("builtins"), su("set"), []byte{opSTACK_GLOBAL, opEMPTY_TUPLE, opNEWOBJ, opPOP},
		su("builtins"), su("set"), []byte{opSTACK_GLOBAL, opEMPTY_TUPLE, opEMPTY_DICT, opNEWOBJ_EX, opPOP},
		[]byte{opEXT1, 1, opPOP, opEXT2, 1, 0, opPOP, opEXT4}, u32(1), []byte{opPOP},
		[]byte("Pid\n"), []byte{opBINPERSID, opPOP, opNEXT_BUFFER, opPOP},
		[]byte{opNONE, opMEMOIZE, opBINPUT, 1, opLONG_BINPUT}, u32(2), []byte("p3\n"), []byte{opPOP},
		[]byte{opBINGET, 1, opLONG_BINGET}, u32(2), []byte("g3\n"), []byte{opPOP, opPOP, opPOP},
		[]byte{opSTOP},
	)
	seen := map[byte]bool{}
	a := NewAnalyzer(bytes.NewReader(data), Options{OnEvent: func(Event) {}})
	a.trace = func(op byte) { seen[op] = true }
	if _, err := a.Next(); err != nil {
		t.Fatal(err)
	}
	if !a.AtEOF() {
		t.Error("stream not consumed to the end")
	}
	for op, name := range opNames {
		if !seen[op] {
			t.Errorf("opcode %s not exercised", name)
		}
	}
}

func TestReaderErrorIsTruncation(t *testing.T) {
	r := io.MultiReader(strings.NewReader("cos\nsys"), &errReader{})
	var evs []Event
	_, err := AnalyzeStream(r, Options{OnEvent: func(e Event) { evs = append(evs, e) }})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err %v", err)
	}
}

type errReader struct{}

func (*errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestJoblibWrapperViaReconstructor: an array wrapper made by
// copyreg._reconstructor is still followed by raw array bytes for joblib.
func TestJoblibWrapperViaReconstructor(t *testing.T) {
	data := cat([]byte("ccopyreg\n_reconstructor\n(cjoblib.numpy_pickle\nNumpyArrayWrapper\ncbuiltins\nobject\nNtR"),
		[]byte("}("), su("shape"), []byte{opBININT1, 2, opTUPLE1}, su("dtype"), []byte("cnumpy\ndtype\n"), su("u1"),
		[]byte{opNEWFALSE, opNEWTRUE, opTUPLE3, opREDUCE, opSETITEMS, opBUILD},
		[]byte{0x00, 0xff}, // two raw array bytes, not opcodes
		[]byte{opSTOP})
	if _, s, err := analyze(t, data, Limits{}); err != nil || s.Pickles != 1 {
		t.Fatalf("err %v summary %+v", err, s)
	}
}
