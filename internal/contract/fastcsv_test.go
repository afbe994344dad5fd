package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// checkAll runs exps over data three ways: sequentially, through the
// streaming pipeline and through the parallel CSV path, and returns the
// three reports as JSON.
func checkAll(t testing.TB, data string, opts CSVOptions, exps []Expectation, lim Limits) [3][]byte {
	var out [3][]byte
	for i, o := range []CheckOptions{{Workers: 1}, {Workers: 3, noFastCSV: true}, {Workers: 3}} {
		o.Limits = lim
		src, err := NewCSV(strings.NewReader(data), opts)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(t.Context(), src, exps, o)
		if err != nil {
			t.Fatal(err)
		}
		out[i], _ = json.Marshal(rep)
	}
	return out
}

var parallelExps = []Expectation{
	exp("expect_column_values_to_be_unique", "column", "id"),
	exp("expect_column_values_to_not_be_null", "column", "x"),
	exp("expect_column_values_to_be_between", "column", "x", "min_value", 1, "max_value", 7000),
	exp("expect_column_mean_to_be_between", "column", "x", "min_value", 0),
	exp("expect_column_stdev_to_be_between", "column", "x", "min_value", 0),
	exp("expect_column_quantile_values_to_be_between", "column", "x", "quantile_ranges", map[string]any{"quantiles": []any{0.1, 0.5, 0.9}, "value_ranges": []any{[]any{nil, nil}, []any{nil, nil}, []any{0, 10}}}),
	exp("expect_column_value_lengths_to_be_between", "column", "s", "max_value", 8),
	exp("expect_column_values_to_match_regex", "column", "s", "regex", "xx"),
	exp("expect_column_values_to_be_in_set", "column", "s", "value_set", []any{"a", "bb", "xx1"}),
	exp("expect_table_row_count_to_be_between", "min_value", 1),
	// package regexp with a memo (case folding: no byte DFA), a list of
	// regexes, a type test.
	exp("expect_column_values_to_match_regex", "column", "s", "regex", "(?i)^B"),
	exp("expect_column_values_to_not_match_regex_list", "column", "s", "regex_list", []any{"1$", "^a"}),
	exp("expect_column_values_to_be_of_type", "column", "x", "type_", "int"),
}

// TestParallelCSVMatchesSequential: the parallel path gives byte-identical
// reports, line numbers of failing examples included, across block
// boundaries, blank lines, CRLF, malformed rows, invalid UTF-8, long lines
// and a switch to the streaming reader at the first quote.
func TestParallelCSVMatchesSequential(t *testing.T) {
	defer func(n int) { csvBlockSize = n }(csvBlockSize)
	var b strings.Builder
	b.WriteString("id,x,s\n")
	for i := range 30000 {
		switch {
		case i%997 == 5:
			b.WriteString("\n") // blank line
		case i%1009 == 7:
			fmt.Fprintf(&b, "%d,%d\n", i, i) // ragged
		case i%4001 == 11:
			fmt.Fprintf(&b, "%d,%d,\xff\xfe\n", i, i) // invalid UTF-8
		case i%5003 == 13:
			fmt.Fprintf(&b, "%d,%d,%s\n", i, i, strings.Repeat("y", 300)) // longer than the cap below
		case i%7 == 0:
			fmt.Fprintf(&b, "%d,%d,xx%d\r\n", i%20000, i%8000, i%3)
		default:
			fmt.Fprintf(&b, "%d,%d,%s\n", i%25000, i%9000, "bb")
		}
	}
	plain := b.String()
	quoted := plain + "99999,5,\"multi\nline\"\n100000,6,\"a\"\"b\"\n" + plain[7:2000]
	// Subsets: only map checkers (no ordered goroutine), map checkers and
	// a row count (ordered, but reading no column), one ordered checker.
	subsets := map[string][]Expectation{
		"all":      parallelExps,
		"map":      {parallelExps[1], parallelExps[2], parallelExps[7]},
		"rowcount": {parallelExps[6], parallelExps[9]},
		"unique":   {parallelExps[0]},
	}
	for _, size := range []int{512 << 10, 4096, 100} {
		csvBlockSize = size
		for name, data := range map[string]string{"plain": plain, "quoted": quoted} {
			for sub, exps := range subsets {
				if sub == "all" {
					continue
				}
				out := checkAll(t, data, CSVOptions{MaxLineBytes: 200}, exps, Limits{SampleCap: 1000, MaxExamples: 7})
				if !bytes.Equal(out[0], out[1]) || !bytes.Equal(out[0], out[2]) {
					t.Fatalf("block %d, %s, %s: reports differ:\nsequential %s\npipeline   %s\nparallel   %s", size, name, sub, out[0], out[1], out[2])
				}
			}
			out := checkAll(t, data, CSVOptions{MaxLineBytes: 200}, subsets["all"], Limits{SampleCap: 1000, MaxExamples: 7})
			if !bytes.Equal(out[0], out[1]) || !bytes.Equal(out[0], out[2]) {
				t.Fatalf("block %d, %s: reports differ:\nsequential %s\npipeline   %s\nparallel   %s", size, name, out[0], out[1], out[2])
			}
			if !bytes.Contains(out[0], []byte(`"status":"fail"`)) || !bytes.Contains(out[0], []byte(`invalid UTF-8`)) || !bytes.Contains(out[0], []byte(`line longer than 200 bytes`)) {
				t.Fatalf("fixture does not exercise failures: %s", out[0])
			}
		}
	}
}

// FuzzParallelCSV: for any input, the parallel path and the sequential
// reader give the same report, for several delimiters (the parallel path
// finds them eight bytes at a time; '-' is ','^1, the byte a loose zero-byte
// test would confuse with ',' after a ',', and the seeds put ',' next to
// '-', '\xac' and '\xad').
func FuzzParallelCSV(f *testing.F) {
	defer func(n int) { csvBlockSize = n }(csvBlockSize)
	f.Add("id,x,s\n1,2,a\n\n2,3,bb\r\n3,x,\n4,5\n", 16, byte(0))
	f.Add("id,x,s\n1,2,\"a\nb\"\n2,2,c\n", 8, byte(1))
	f.Add("id,x,s\n1,1,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n2,2,\xff\n", 32, byte(2))
	f.Add("id,x,s\n1,-2,-a\n2,-3,-,\n3,\xac,\xad\n4,-5,-\r\n", 5, byte(0))
	f.Fuzz(func(t *testing.T, data string, block int, sepIdx byte) {
		csvBlockSize = 1 + (block&0xffff)%4096
		seps := ",;\t-"
		sep := seps[int(sepIdx)%len(seps)]
		head := strings.ReplaceAll("id,x,s\n", ",", string(rune(sep)))
		data = strings.ReplaceAll(data, ",", string(rune(sep)))
		out := checkAll(t, head+data, CSVOptions{Comma: sep, MaxLineBytes: 24}, parallelExps, Limits{SampleCap: 50, MaxExamples: 3})
		if !bytes.Equal(out[0], out[2]) || !bytes.Equal(out[0], out[1]) {
			t.Fatalf("reports differ:\nsequential %s\npipeline   %s\nparallel   %s", out[0], out[1], out[2])
		}
	})
}

// FuzzSelectRanks: the selected order statistics are the sorted values at
// those ranks.
func FuzzSelectRanks(f *testing.F) {
	f.Add([]byte{3, 1, 2, 2, 9, 0, 0, 7, 5, 5, 5, 1, 200, 3, 4, 8, 6, 2, 2, 1, 0}, uint16(3), uint16(10))
	f.Fuzz(func(t *testing.T, raw []byte, k1, k2 uint16) {
		if len(raw) == 0 {
			return
		}
		v := make([]float64, len(raw)*3)
		for i := range v {
			v[i] = float64(int(raw[i%len(raw)])*(i%7) - 100)
		}
		want := slices.Clone(v)
		slices.Sort(want)
		ks := []int{int(k1) % len(v), int(k2) % len(v), len(v) / 2, 0, len(v) - 1}
		selectRanks(v, ks)
		for _, k := range ks {
			if v[k] != want[k] {
				t.Fatalf("rank %d: %v, want %v", k, v[k], want[k])
			}
		}
	})
}

// TestUniqueDenseAndHashed: canonical integers (bit sets) and other text
// (hash set) are both compared byte for byte: "5" and "05" differ.
func TestUniqueDenseAndHashed(t *testing.T) {
	vals := []string{"5", "05", "5", "-5", "-5", "300000000", "300000000", " 5", "0", "00", "0", "5", "268435455", "268435455", "268435456"}
	var b strings.Builder
	b.WriteString("v\n")
	for _, v := range vals {
		fmt.Fprintf(&b, "%s\n", v)
	}
	count := map[string]int{}
	for _, v := range vals {
		count[v]++
	}
	var want int64
	for _, n := range count {
		if n > 1 {
			want += int64(n)
		}
	}
	out := checkAll(t, b.String(), CSVOptions{}, []Expectation{exp("expect_column_values_to_be_unique", "column", "v")}, Limits{MaxExamples: 20})
	if !bytes.Equal(out[0], out[2]) || !bytes.Equal(out[0], out[1]) {
		t.Fatalf("reports differ:\n%s\n%s\n%s", out[0], out[1], out[2])
	}
	var rep Report
	json.Unmarshal(out[0], &rep)
	if r := rep.Results[1]; *r.UnexpectedCount != want || len(r.Examples) != int(want)-len([]string{"5", "-5", "300000000", "0", "268435455"}) {
		t.Fatalf("unexpected %d (want %d), examples %+v", *r.UnexpectedCount, want, r.Examples)
	}
}

func FuzzIsASCII(f *testing.F) {
	f.Add([]byte("plain ascii text, longer than thirty-two bytes\n"))
	f.Add([]byte("caf\xc3\xa9"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := true
		for _, c := range b {
			want = want && c < 0x80
		}
		if isASCII(b) != want {
			t.Fatalf("isASCII(%q) = %v", b, !want)
		}
	})
}
