package contract

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCSV: the reader never panics, every record is either well formed or a
// RowError, and when encoding/csv (strict RFC 4180) reads the whole input
// without error, with every record as wide as the header and valid UTF-8,
// both readers return the same fields.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "a,b\r\n\"x\r\ny\",\"q\"\"\"\r\n", "a\n\n\n1\n", "\xef\xbb\xbfa,b\n1,2,3\n",
		"a,b\n\"1\",\n,\"\"\n", "a\n\"unterminated\n", "a,b\n1\"2,3\n", "a,b\n\"1\"x,2\n", "a\n" + strings.Repeat("x", 70) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewCSV(bytes.NewReader(data), CSVOptions{NullValues: []string{}, MaxLineBytes: 64})
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("NewCSV error does not wrap ErrFormat: %v", err)
			}
			return
		}
		cols := src.Columns()
		rec := make([]Cell, len(cols))
		var got [][]string
		lastLine := int64(1)
		for {
			line, err := src.Next(rec)
			if err == io.EOF {
				break
			}
			if line < lastLine {
				t.Fatalf("line numbers went back: %d after %d", line, lastLine)
			}
			lastLine = line
			var re *RowError
			if errors.As(err, &re) {
				got = append(got, nil)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(rec))
			for i := range rec {
				row[i] = string(rec[i].Raw)
			}
			got = append(got, row)
		}
		if !utf8.Valid(data) || bytes.Contains(data, []byte("\r")) || len(data) > 60 {
			return // encoding/csv differs on \r and has no line cap
		}
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		want, err := r.ReadAll()
		if err != nil || len(want) == 0 {
			return
		}
		want[0][0] = strings.TrimPrefix(want[0][0], "\ufeff")
		for _, w := range want[1:] {
			if len(w) != len(cols) {
				return
			}
		}
		if len(got) != len(want)-1 {
			t.Fatalf("records: got %q, encoding/csv %q", got, want[1:])
		}
		for i := range got {
			if strings.Join(got[i], "\x00") != strings.Join(want[i+1], "\x00") {
				t.Fatalf("record %d: got %q, encoding/csv %q", i, got[i], want[i+1])
			}
		}
	})
}

// FuzzJSONL: no panic; every non-blank line is one record or one RowError.
func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		"{\"a\": 1}\n{\"a\": \"x\"}\n", "x\n{\"a\": null, \"b\": [1]}\n\n{\"b\": 2}\n", "{\"a\":1,\"a\":2}\n{}\n",
		"{\"a\": 1e999}\n", "[]\n{\"a\":1}garbage\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewJSONL(bytes.NewReader(data), 64)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("NewJSONL error does not wrap ErrFormat: %v", err)
			}
			return
		}
		rec := make([]Cell, len(src.Columns()))
		n := 0
		for {
			_, err := src.Next(rec)
			if err == io.EOF {
				break
			}
			var re *RowError
			if err != nil && !errors.As(err, &re) {
				t.Fatal(err)
			}
			n++
		}
		// Each record or error consumes at least one line.
		if lines := bytes.Count(data, []byte("\n")) + 1; n > lines {
			t.Fatalf("%d records/errors from %d lines", n, lines)
		}
	})
}

const fuzzData = "id,x,s,b\n1,1.5,apple,true\n2,,banana,false\n2,-3,cherry,x\n"

func runFuzzChecks(t *testing.T, exps []Expectation) {
	src, err := NewCSV(strings.NewReader(fuzzData), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(t.Context(), src, exps, CheckOptions{Limits: Limits{UniqueCap: 2, SampleCap: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(exps)+1 {
		t.Fatalf("%d results for %d expectations", len(rep.Results), len(exps))
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusPass, StatusFail, StatusUnsupported, StatusError:
		default:
			t.Fatalf("%s: status %q", r.Type, r.Status)
		}
	}
}

// FuzzParseContract: no panic; errors wrap ErrSpec; an accepted contract
// runs on a small table and every result has a valid status.
func FuzzParseContract(f *testing.F) {
	f.Add([]byte("custody_contract: 1\ncolumns:\n  - {name: id, type: integer, not_null: true, unique: true, min: 0, max: 9}\n  - {name: s, in_set: [apple], regex: '^a', length: {min: 1}}\n  - {name: x, mean: {min: 0}, stdev: {max: 9}, quantiles: {'0.5': [0, 1]}, psi: {threshold: 0.2, reference: {edges: [0], fractions: [0.5, 0.5]}}}\nrow_count: {min: 1}\n"))
	f.Add([]byte("custody_contract: 1\nexpectations:\n  - expect_column_values_to_be_between: {column: x, min_value: 0, mostly: 0.5}\n  - {type: expect_column_quantile_values_to_be_between, kwargs: {column: x, quantile_ranges: {quantiles: [0.1], value_ranges: [[null, 1]]}}}\n"))
	f.Add([]byte("custody_contract: 1\nexpectations: [{expectation_type: expect_column_psi_to_be_less_than, kwargs: {column: b, threshold: 1, reference: {categories: {true: 0.5}}}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseContract(bytes.NewReader(data), "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error does not wrap ErrSpec: %v", err)
			}
			return
		}
		runFuzzChecks(t, c.Expectations)
	})
}

// FuzzParseSuite: as FuzzParseContract, for GE suite JSON.
func FuzzParseSuite(f *testing.F) {
	f.Add([]byte(`{"expectation_suite_name": "s", "expectations": [{"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.5}}]}`))
	f.Add([]byte(`{"name": "s", "expectations": [{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["apple", 1, true, null]}}, {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}]}`))
	f.Add([]byte(`{"expectations": [{"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "(a|b"}}, {"type": "expect_column_median_to_be_between", "kwargs": {"column": "x", "min_value": 1e308}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSuite(bytes.NewReader(data), "fuzz.json")
		if err != nil {
			if !errors.Is(err, ErrSpec) {
				t.Fatalf("error does not wrap ErrSpec: %v", err)
			}
			return
		}
		runFuzzChecks(t, s.Expectations)
	})
}

// FuzzRegexDFA: whenever the byte DFA accepts a pattern, it agrees with
// regexp.Match on every input.
func FuzzRegexDFA(f *testing.F) {
	for _, s := range [][2]string{
		{`^[a-z]+[0-9]+@[a-z]+\.[a-z]+$`, "ana12@mail.org"}, {`^[A-Z]{2}$`, "DE"}, {`^[A-Z]{2}$`, "DEU"},
		{`$^`, ""}, {`^$`, "é"}, {`$`, "x"}, {`a|b*`, ""}, {`x+y`, "xxxxz xy"}, {`(?i)k`, "\u212a"},
		{`^\d{3}-\d{4}$`, "555-1234\n"}, {`a.c`, "abc"}, {`[^a]`, "é"}, {`\bfoo\b`, "a foo"}, {`(ab)*c$`, "ababc"},
		{`^`, ""}, {`a$b`, "ab"}, {`[\x00-\x7f]+`, "\xff\x00"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, pattern string, input []byte) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		d := newByteDFA(pattern)
		if d == nil {
			return
		}
		got, ok := d.match(input)
		if !ok {
			return
		}
		if want := re.Match(input); got != want {
			t.Fatalf("DFA(%q).match(%q) = %v, regexp says %v", pattern, input, got, want)
		}
		// A second run uses the cached transitions.
		if again, _ := d.match(input); again != got {
			t.Fatalf("DFA(%q) not deterministic on %q", pattern, input)
		}
	})
}
