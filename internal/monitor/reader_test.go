package monitor

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// streamTable reads CSV text with the streaming reader.
func streamTable(t testing.TB, data []byte, names []string) (*Table, error) {
	t.Helper()
	src, err := NewCSVSource(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return ReadSource(context.Background(), src, names)
}

// sameTable compares two tables treating NaN as equal to NaN.
func sameTable(a, b *Table) bool {
	if a.Rows != b.Rows || len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		x, y := *a.Columns[i], *b.Columns[i]
		if x.Name != y.Name || x.Rows != y.Rows || x.Missing != y.Missing || x.numOK != y.numOK || x.dictOK != y.dictOK {
			return false
		}
		if len(x.num) != len(y.num) {
			return false
		}
		for k := range x.num {
			if x.num[k] != y.num[k] && !(math.IsNaN(x.num[k]) && math.IsNaN(y.num[k])) {
				return false
			}
		}
		if x.dictOK {
			// Codes may differ between readers; the decoded text may not.
			xc, xd := x.Text()
			yc, yd := y.Text()
			if len(xc) != len(yc) {
				return false
			}
			for k := range xc {
				xs, ys := "", ""
				if xc[k] >= 0 {
					xs = "v" + xd[xc[k]]
				}
				if yc[k] >= 0 {
					ys = "v" + yd[yc[k]]
				}
				if xs != ys {
					return false
				}
			}
		}
	}
	return true
}

func TestCSVReaderCells(t *testing.T) {
	in := "\ufeffa,b,c\r\n1,\"x,\"\"y\"\"\",NA\n\n2.5,\"multi\nline\",\n-inf,z\n"
	src, err := NewCSVSource(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(src.Columns(), []string{"a", "b", "c"}) {
		t.Fatalf("header %q", src.Columns())
	}
	want := [][]Cell{
		{{Text: "1"}, {Text: `x,"y"`}, {Text: "NA", Null: true}},
		{{Text: "2.5"}, {Text: "multi\nline"}, {Null: true}},
		{{Text: "-inf"}, {Text: "z"}, {Null: true}},
	}
	for i, w := range want {
		got, err := src.Next(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("row %d: %+v, want %+v", i, got, w)
		}
	}
	if _, err := src.Next(nil); err == nil {
		t.Fatal("no EOF")
	}
}

func TestCSVReaderErrors(t *testing.T) {
	for _, in := range []string{"a,b\n1,2,3\n", "a\n\"open\n", "a\nx\"y\n", "a\n\"q\"z\n"} {
		src, err := NewCSVSource(strings.NewReader(in))
		if err == nil {
			_, err = ReadSource(context.Background(), src, nil)
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%q: error %v, want a FormatError", in, err)
		}
	}
}

func TestBatchMatchesStreaming(t *testing.T) {
	var b strings.Builder
	b.WriteString("x,label,cat,sparse\n")
	for i := 0; i < 300000; i++ {
		switch i % 7 {
		case 0:
			b.WriteString(",1,red,\n")
		case 3:
			b.WriteString("inf,0,blue,7\r\n")
		default:
			b.WriteString(strings.Repeat("1", i%5+1) + ".25,0,green\n")
		}
	}
	data := []byte(b.String())
	want, err := streamTable(t, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 3, 8} {
		got, ok, err := parseCSVBatch(context.Background(), data, nil, nil, workers)
		if err != nil || !ok {
			t.Fatalf("workers %d: ok=%v err=%v", workers, ok, err)
		}
		if !sameTable(got, want) {
			t.Fatalf("workers %d: batch table differs from streaming", workers)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"1": true, "-2.5e3": true, "inf": true, "-Infinity": true, " 3 ": true, "1e999": true,
		"0x10": false, "1_000": false, "abc": false, "nan": false, "": false, "1.2.3": false,
	} {
		if _, ok := ParseNumber(s); ok != want {
			t.Errorf("ParseNumber(%q) ok=%v, want %v", s, ok, want)
		}
	}
}

func TestSortFloatsRadix(t *testing.T) {
	for _, n := range []int{0, 1, 100, 1 << 14, 100000} {
		x := make([]float64, n)
		for i := range x {
			switch i % 5 {
			case 0:
				x[i] = float64(i%97) - 48
			case 1:
				x[i] = -1e300 * float64(i%3)
			case 2:
				x[i] = math.Ldexp(float64(i), -1070)
			default:
				x[i] = math.Sin(float64(i)) * 1e6
			}
		}
		want := slices.Clone(x)
		slices.Sort(want)
		sortFloats(x)
		if !slices.Equal(x, want) {
			t.Fatalf("n=%d: radix sort differs from slices.Sort", n)
		}
	}
}

func TestParseDecimalMatchesParseFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := []string{"0", "-0", "1", "0.5", "-12.25", "123456789012345", "0.000000000000001", ".5", "5.", "-.5"}
	for i := 0; i < 100000; i++ {
		cases = append(cases, strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(12)-6)), 'f', r.IntN(16), 64))
	}
	for _, s := range cases {
		got, ok := parseDecimal([]byte(s))
		if !ok {
			continue
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseDecimal(%q) = %v, ParseFloat %v (%v)", s, got, want, err)
		}
	}
}

func TestFiniteSortedRadix(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 4095, 4096, 300000} {
		x := make([]float64, n)
		for i := range x {
			switch r.IntN(12) {
			case 0:
				x[i] = math.NaN()
			case 1:
				x[i] = math.Inf(1 - 2*r.IntN(2))
			case 2:
				x[i] = math.Copysign(0, float64(1-2*r.IntN(2)))
			case 3:
				x[i] = math.Float64frombits(r.Uint64N(1<<52)) * float64(1-2*r.IntN(2)) // subnormal
			case 4:
				x[i] = float64(r.IntN(5)) // ties
			case 5:
				x[i] = math.Float64frombits(r.Uint64()&^(0x7ff<<52) | uint64(r.IntN(2046)+1)<<52) // any exponent
			default:
				x[i] = r.NormFloat64()*2 + 10
			}
		}
		var want []float64
		for _, v := range x {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				want = append(want, v)
			}
		}
		slices.Sort(want)
		got := finiteSorted(x)
		if len(got) != len(want) {
			t.Fatalf("n=%d: %d values, want %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] { // -0 == +0: their order is free
				t.Fatalf("n=%d: [%d] = %v, want %v", n, i, got[i], want[i])
			}
		}
	}
}

// A numeric column keeps its dictionary without per-row codes until two
// texts share a number or a text is not a number; the texts read back are
// the same either way, with both readers.
func TestLazyCodes(t *testing.T) {
	for _, rows := range [][]string{
		{"1", "0", "1", "", "0"},
		{"1", "0", "1.0", "1", "0"},            // "1.0" after "1"
		{"0", "-0", "0", "-0"},                 // different bits: still lazy
		{"inf", "1", "Infinity", "NA", "inf"},  // two spellings of +Inf
		{"1", "2", "x", "1", "", "2"},          // text after numbers
		{"1", "NAN", "2", "nan", "1"},          // "NAN" is text, "nan" missing
		{"5", "5.00", "5.0", "5", "5.00", "5"}, // three texts, one number
	} {
		var b strings.Builder
		b.WriteString("v,w\n")
		for i := 0; i < 70000; i++ {
			b.WriteString(rows[i%len(rows)] + ",a\n")
		}
		data := []byte(b.String())
		want := make([]string, 70000)
		for i := range want {
			if s := rows[i%len(rows)]; !IsNA(s) {
				want[i] = "v" + s
			}
		}
		check := func(name string, tab *Table) {
			t.Helper()
			codes, dict := tab.Columns[0].Text()
			if len(codes) != len(want) {
				t.Fatalf("%v %s: %d codes", rows, name, len(codes))
			}
			for i, k := range codes {
				got := ""
				if k >= 0 {
					got = "v" + dict[k]
				}
				if got != want[i] {
					t.Fatalf("%v %s: row %d %q, want %q", rows, name, i, got, want[i])
				}
			}
		}
		st, err := streamTable(t, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		check("streaming", st)
		for _, w := range []int{1, 2, 3} {
			bt, ok, err := parseCSVBatch(context.Background(), data, nil, nil, w)
			if err != nil || !ok {
				t.Fatalf("%v: batch ok=%v err=%v", rows, ok, err)
			}
			check("batch", bt)
			if !sameTable(bt, st) {
				t.Fatalf("%v: batch (%d workers) differs from streaming", rows, w)
			}
		}
	}
}

func TestScanDecimalMatchesParseFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	cases := []string{"0", "-0", "1e5", "1E-5", "-2.5e+3", "12345678", "123456789", "0.12345678", "1234567890123456789",
		"9007199254740992", "9007199254740993", "1e22", "1e23", "1e-22", "1e-23", "0e999", "5e", "5e+", "1.e1", ".5e1",
		"00000000000000000001", "1.000000000000000000"}
	for i := 0; i < 200000; i++ {
		v := r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		switch i % 3 {
		case 0:
			cases = append(cases, strconv.FormatFloat(v, 'g', 1+r.IntN(17), 64))
		case 1:
			cases = append(cases, strconv.FormatFloat(v, 'f', r.IntN(20), 64))
		default:
			cases = append(cases, strconv.FormatFloat(v, 'e', r.IntN(18), 64))
		}
	}
	for _, s := range cases {
		checkScanDecimal(t, s)
	}
}

// checkScanDecimal: what scanDecimal accepts as a whole field is exactly
// strconv.ParseFloat's float64, bit for bit.
func checkScanDecimal(t *testing.T, s string) {
	t.Helper()
	for _, tail := range []string{"", ",", "\n", "x"} {
		data := []byte(s + tail)
		got, end, ok := scanDecimal(data, 0)
		if !ok || end != len(s) {
			continue
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("scanDecimal(%q) = %v, ParseFloat %v (%v)", data, got, want, err)
		}
	}
}

func FuzzScanDecimal(f *testing.F) {
	for _, s := range []string{"0.73105858", "-12.5e-3", "123456789012345678", "1e22", ".5", "5.", "-", "1e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkScanDecimal(t, s)
	})
}
