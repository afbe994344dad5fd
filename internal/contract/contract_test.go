package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// fixture is the data every expectation test runs on. Line numbers count the
// header as line 1. Columns: id (unique ints), x (numbers, one null), s
// (strings), b (booleans).
const fixture = `id,x,s,b
1,1.5,apple,true
2,2.5,banana,false
3,,cherry,true
4,10,date,True
5,-3,elderberry,false
`

func check(t *testing.T, data string, e Expectation) Result {
	t.Helper()
	src, err := NewCSV(strings.NewReader(data), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(t.Context(), src, []Expectation{e}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("got %d results", len(rep.Results))
	}
	return rep.Results[1]
}

func exp(typ string, kv ...any) Expectation {
	kw := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		kw[kv[i].(string)] = normalize(kv[i+1])
	}
	return Expectation{Type: typ, Kwargs: kw}
}

// TestExpectations gives every supported expectation a passing and a failing
// case on the same fixture.
func TestExpectations(t *testing.T) {
	ref := map[string]any{"edges": []any{0.0, 5.0}, "fractions": []any{0.25, 0.5, 0.25}}
	skewed := map[string]any{"edges": []any{0.0, 5.0}, "fractions": []any{0.98, 0.01, 0.01}}
	tests := []struct {
		name string
		pass Expectation
		fail Expectation
	}{
		{"column exists", exp("expect_column_to_exist", "column", "x"), exp("expect_column_to_exist", "column", "nope")},
		{"column index", exp("expect_column_to_exist", "column", "x", "column_index", 1), exp("expect_column_to_exist", "column", "x", "column_index", 0)},
		{"ordered list", exp("expect_table_columns_to_match_ordered_list", "column_list", []any{"id", "x", "s", "b"}),
			exp("expect_table_columns_to_match_ordered_list", "column_list", []any{"x", "id", "s", "b"})},
		{"set", exp("expect_table_columns_to_match_set", "column_set", []any{"b", "s", "x", "id"}),
			exp("expect_table_columns_to_match_set", "column_set", []any{"b", "s", "x"})},
		{"set not exact", exp("expect_table_columns_to_match_set", "column_set", []any{"b", "s"}, "exact_match", false),
			exp("expect_table_columns_to_match_set", "column_set", []any{"b", "zz"}, "exact_match", false)},
		{"column count", exp("expect_table_column_count_to_equal", "value", 4), exp("expect_table_column_count_to_equal", "value", 5)},
		{"row count between", exp("expect_table_row_count_to_be_between", "min_value", 5, "max_value", 5),
			exp("expect_table_row_count_to_be_between", "min_value", 6, "max_value", nil)},
		{"row count equal", exp("expect_table_row_count_to_equal", "value", 5), exp("expect_table_row_count_to_equal", "value", 4)},
		{"not null", exp("expect_column_values_to_not_be_null", "column", "s"), exp("expect_column_values_to_not_be_null", "column", "x")},
		{"not null mostly", exp("expect_column_values_to_not_be_null", "column", "x", "mostly", 0.8), exp("expect_column_values_to_not_be_null", "column", "x", "mostly", 0.81)},
		{"null", exp("expect_column_values_to_be_null", "column", "x", "mostly", 0.2), exp("expect_column_values_to_be_null", "column", "x")},
		{"between", exp("expect_column_values_to_be_between", "column", "x", "min_value", -3, "max_value", 10),
			exp("expect_column_values_to_be_between", "column", "x", "min_value", -3, "max_value", 10, "strict_max", true)},
		{"between strict min", exp("expect_column_values_to_be_between", "column", "x", "min_value", -4, "strict_min", true),
			exp("expect_column_values_to_be_between", "column", "x", "min_value", -3, "strict_min", true)},
		{"between mostly", exp("expect_column_values_to_be_between", "column", "x", "min_value", 0, "mostly", 0.75),
			exp("expect_column_values_to_be_between", "column", "x", "min_value", 0, "mostly", 0.76)},
		{"between non-numeric", exp("expect_column_values_to_be_between", "column", "id", "max_value", 5),
			exp("expect_column_values_to_be_between", "column", "s", "max_value", 5)},
		{"unique", exp("expect_column_values_to_be_unique", "column", "id"), exp("expect_column_values_to_be_unique", "column", "b")},
		{"in set", exp("expect_column_values_to_be_in_set", "column", "s", "value_set", []any{"apple", "banana", "cherry", "date", "elderberry"}),
			exp("expect_column_values_to_be_in_set", "column", "s", "value_set", []any{"apple"})},
		{"in set numbers", exp("expect_column_values_to_be_in_set", "column", "id", "value_set", []any{1, 2, 3, 4, 5}),
			exp("expect_column_values_to_be_in_set", "column", "id", "value_set", []any{1, 2, 3, 4})},
		{"in set bools", exp("expect_column_values_to_be_in_set", "column", "b", "value_set", []any{true, false}),
			exp("expect_column_values_to_be_in_set", "column", "b", "value_set", []any{true})},
		{"not in set", exp("expect_column_values_to_not_be_in_set", "column", "s", "value_set", []any{"fig"}),
			exp("expect_column_values_to_not_be_in_set", "column", "s", "value_set", []any{"date"})},
		{"regex (search)", exp("expect_column_values_to_match_regex", "column", "s", "regex", "[aeiou]"),
			exp("expect_column_values_to_match_regex", "column", "s", "regex", "^[a-c]")},
		{"not regex", exp("expect_column_values_to_not_match_regex", "column", "s", "regex", "z"),
			exp("expect_column_values_to_not_match_regex", "column", "s", "regex", "rr")},
		{"lengths", exp("expect_column_value_lengths_to_be_between", "column", "s", "min_value", 4, "max_value", 10),
			exp("expect_column_value_lengths_to_be_between", "column", "s", "min_value", 5)},
		{"lengths equal", exp("expect_column_value_lengths_to_equal", "column", "id", "value", 1),
			exp("expect_column_value_lengths_to_equal", "column", "s", "value", 5)},
		{"type int", exp("expect_column_values_to_be_of_type", "column", "id", "type_", "int64"),
			exp("expect_column_values_to_be_of_type", "column", "x", "type_", "int")},
		{"type float", exp("expect_column_values_to_be_of_type", "column", "x", "type_", "float64"),
			exp("expect_column_values_to_be_of_type", "column", "s", "type_", "float")},
		{"type bool", exp("expect_column_values_to_be_of_type", "column", "b", "type_", "bool"),
			exp("expect_column_values_to_be_of_type", "column", "id", "type_", "bool")},
		{"type list", exp("expect_column_values_to_be_in_type_list", "column", "x", "type_list", []any{"int", "float"}),
			exp("expect_column_values_to_be_in_type_list", "column", "s", "type_list", []any{"int", "bool"})},
		// x = 1.5, 2.5, 10, -3: mean 2.75, sample stdev 5.3929 (pandas), min -3, max 10, sum 11.
		{"mean", exp("expect_column_mean_to_be_between", "column", "x", "min_value", 2.75, "max_value", 2.75),
			exp("expect_column_mean_to_be_between", "column", "x", "min_value", 2.75, "strict_min", true)},
		{"stdev", exp("expect_column_stdev_to_be_between", "column", "x", "min_value", 5.39, "max_value", 5.40),
			exp("expect_column_stdev_to_be_between", "column", "x", "max_value", 5)},
		{"min", exp("expect_column_min_to_be_between", "column", "x", "min_value", -3, "max_value", -3),
			exp("expect_column_min_to_be_between", "column", "x", "min_value", 0)},
		{"max", exp("expect_column_max_to_be_between", "column", "x", "max_value", 10),
			exp("expect_column_max_to_be_between", "column", "x", "max_value", 9)},
		{"sum", exp("expect_column_sum_to_be_between", "column", "x", "min_value", 11, "max_value", 11),
			exp("expect_column_sum_to_be_between", "column", "x", "min_value", 12)},
		{"mean non-numeric", exp("expect_column_mean_to_be_between", "column", "id", "min_value", 3, "max_value", 3),
			exp("expect_column_mean_to_be_between", "column", "s", "min_value", 0)},
		// sorted x: -3 1.5 2.5 10; pandas median (linear) 2.0; nearest:
		// q=0.5 -> h=1.5 -> index 2 (half to even) -> 2.5.
		{"median", exp("expect_column_median_to_be_between", "column", "x", "min_value", 2, "max_value", 2),
			exp("expect_column_median_to_be_between", "column", "x", "min_value", 2.1)},
		{"quantiles", exp("expect_column_quantile_values_to_be_between", "column", "x", "quantile_ranges",
			map[string]any{"quantiles": []any{0.0, 0.5, 1.0}, "value_ranges": []any{[]any{-3, -3}, []any{2.5, 2.5}, []any{nil, 10}}}),
			exp("expect_column_quantile_values_to_be_between", "column", "x", "quantile_ranges",
				map[string]any{"quantiles": []any{0.5}, "value_ranges": []any{[]any{1.5, 2.4}}})},
		{"quantiles linear", exp("expect_column_quantile_values_to_be_between", "column", "x", "allow_relative_error", "linear", "quantile_ranges",
			map[string]any{"quantiles": []any{0.5}, "value_ranges": []any{[]any{2, 2}}}),
			exp("expect_column_quantile_values_to_be_between", "column", "x", "allow_relative_error", "lower", "quantile_ranges",
				map[string]any{"quantiles": []any{0.5}, "value_ranges": []any{[]any{2, 2}}})},
		{"psi", exp("expect_column_psi_to_be_less_than", "column", "x", "threshold", 0.1, "reference", ref),
			exp("expect_column_psi_to_be_less_than", "column", "x", "threshold", 0.1, "reference", skewed)},
		{"psi categorical", exp("expect_column_psi_to_be_less_than", "column", "b", "threshold", 0.1,
			"reference", map[string]any{"categories": map[string]any{"true": 0.4, "false": 0.4}}),
			exp("expect_column_psi_to_be_less_than", "column", "b", "threshold", 0.1,
				"reference", map[string]any{"categories": map[string]any{"true": 0.9, "false": 0.1}})},
		{"unique count", exp("expect_column_unique_value_count_to_be_between", "column", "b", "min_value", 2, "max_value", 3),
			exp("expect_column_unique_value_count_to_be_between", "column", "id", "max_value", 4)},
		{"unique proportion", exp("expect_column_proportion_of_unique_values_to_be_between", "column", "b", "min_value", 0.6, "max_value", 0.6),
			exp("expect_column_proportion_of_unique_values_to_be_between", "column", "id", "max_value", 0.99)},
		{"json parseable", exp("expect_column_values_to_be_json_parseable", "column", "x"),
			exp("expect_column_values_to_be_json_parseable", "column", "s")},
		{"regex list any", exp("expect_column_values_to_match_regex_list", "column", "s", "regex_list", []any{"^[a-c]", "^[d-e]"}),
			exp("expect_column_values_to_match_regex_list", "column", "s", "regex_list", []any{"^[a-c]", "^d"})},
		{"regex list all", exp("expect_column_values_to_match_regex_list", "column", "s", "regex_list", []any{"e", "r"}, "match_on", "all", "mostly", 0.4),
			exp("expect_column_values_to_match_regex_list", "column", "s", "regex_list", []any{"e", "r"}, "match_on", "all")},
		{"not regex list", exp("expect_column_values_to_not_match_regex_list", "column", "s", "regex_list", []any{"z", "q"}),
			exp("expect_column_values_to_not_match_regex_list", "column", "s", "regex_list", []any{"z", "pp"})},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := check(t, fixture, tt.pass); r.Status != StatusPass {
				t.Errorf("pass case: %s %+v", r.Status, r)
			}
			if r := check(t, fixture, tt.fail); r.Status != StatusFail {
				t.Errorf("fail case: %s %+v", r.Status, r)
			}
		})
		covered[tt.pass.Type] = true
	}
	for _, typ := range SupportedTypes() {
		if !covered[typ] {
			t.Errorf("expectation %s has no pass/fail test", typ)
		}
	}
}

func TestObservedValues(t *testing.T) {
	r := check(t, fixture, exp("expect_column_stdev_to_be_between", "column", "x", "min_value", 0))
	// pandas 1.5.3: pd.Series([1.5, 2.5, 10, -3]).std() == 5.392896562454479
	if got := r.Observed.(float64); math.Abs(got-5.392896562454479) > 1e-12 {
		t.Errorf("stdev = %v", got)
	}
	r = check(t, fixture, exp("expect_column_values_to_be_between", "column", "x", "min_value", 0))
	if *r.UnexpectedCount != 1 || *r.MissingCount != 1 || *r.ElementCount != 5 || len(r.Examples) != 1 || r.Examples[0].Line != 6 {
		t.Errorf("between: %+v %+v", r, r.Examples)
	}
	if p := *r.UnexpectedPercent; p != 25 {
		t.Errorf("unexpected_percent = %v, want 25 (of non-null values)", p)
	}
	r = check(t, "v\n1\n2\n1\n1\n3\n2\n", exp("expect_column_values_to_be_unique", "column", "v"))
	// pandas duplicated(keep=False): 1,2,1,1,2 are unexpected: 5.
	if *r.UnexpectedCount != 5 {
		t.Errorf("unique: unexpected %d, want 5", *r.UnexpectedCount)
	}
	if len(r.Examples) != 3 || r.Examples[0].Line != 4 || r.Examples[1].Line != 5 || r.Examples[2].Line != 7 {
		t.Errorf("unique examples: %+v", r.Examples)
	}
}

// TestQuantilesMatchPandas: values from pandas 1.5.3,
// Series([-1, 5.5, 7, 10, 12, 25]).quantile([.5, .25, .1, .9, .75],
// interpolation="nearest") == [7.0, 5.5, -1.0, 12.0, 12.0] and
// Series([1, 2, 3, 4]).quantile([.5, .25, .75, 1/6], "nearest") == [3, 2, 3, 1].
func TestQuantilesMatchPandas(t *testing.T) {
	a := []float64{-1, 5.5, 7, 10, 12, 25}
	for i, q := range []float64{.5, .25, .1, .9, .75} {
		if got, want := quantile(a, q, "nearest"), []float64{7, 5.5, -1, 12, 12}[i]; got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	b := []float64{1, 2, 3, 4}
	for i, q := range []float64{.5, .25, .75, 1.0 / 6} {
		if got, want := quantile(b, q, "nearest"), []float64{3, 2, 3, 1}[i]; got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if got := quantile(b, .5, "linear"); got != 2.5 {
		t.Errorf("linear median = %v", got)
	}
}

func TestSamplerPastCap(t *testing.T) {
	s := newSampler(1000)
	for i := range 100000 {
		s.add(float64(i))
	}
	if s.exact() || len(s.vals) != 1000 {
		t.Fatalf("sampler: exact=%v len=%d", s.exact(), len(s.vals))
	}
	vals := append([]float64(nil), s.vals...)
	q := quantileSorted(vals, 0.5)
	// Rank error bound for k=1000 is ~0.085; the median must be within it.
	if eps := s.rankErrorBound(); math.Abs(q/100000-0.5) > eps {
		t.Fatalf("median %v outside the bound %v", q, eps)
	}
}

func quantileSorted(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return quantile(s, q, "nearest")
}

func TestUniqueCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("v\n")
	for i := range 100 {
		b.WriteString(strings.Repeat("x", i%7+1))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString("\n")
	}
	src, _ := NewCSV(strings.NewReader(b.String()), CSVOptions{})
	rep, err := Check(t.Context(), src, []Expectation{exp("expect_column_values_to_be_unique", "column", "v")}, CheckOptions{Limits: Limits{UniqueCap: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[1]; r.Status != StatusError || !strings.Contains(r.Detail, "distinct values") {
		t.Fatalf("cap: %+v", r)
	}
}

func TestHashSet(t *testing.T) {
	s := newHashSet()
	for i := uint64(1); i <= 5000; i++ {
		if s.add(i*0x9e3779b97f4a7c15) != 0 {
			t.Fatalf("%d seen before", i)
		}
	}
	k := uint64(7)
	k *= 0x9e3779b97f4a7c15
	if s.add(k) != 1 || s.add(k) != 2 || s.add(0) != 0 || s.add(0) != 1 {
		t.Fatal("repeat counts wrong")
	}
}

func TestStatusesForBadExpectations(t *testing.T) {
	for _, tt := range []struct {
		e    Expectation
		want Status
	}{
		{exp("expect_column_kl_divergence_to_be_less_than", "column", "x"), StatusUnsupported},
		{exp("expect_column_values_to_not_be_null", "column", "x", "row_condition", "x>1"), StatusUnsupported},
		{exp("expect_column_values_to_not_be_null", "column", "x", "frobnicate", 1), StatusUnsupported},
		{exp("expect_column_values_to_not_be_null", "column", "x", "result_format", "COMPLETE", "catch_exceptions", true), StatusFail},
		{exp("expect_column_values_to_match_regex", "column", "s", "regex", "("), StatusError},
		{exp("expect_column_values_to_be_between", "column", "x"), StatusError},
		{exp("expect_column_values_to_be_between", "column", "x", "min_value", "a"), StatusError},
		{exp("expect_column_values_to_not_be_null"), StatusError},
		{exp("expect_column_values_to_not_be_null", "column", "x", "mostly", 2), StatusError},
		{exp("expect_column_values_to_be_of_type", "column", "x", "type_", "datetime64"), StatusError},
		{exp("expect_column_quantile_values_to_be_between", "column", "x", "quantile_ranges", map[string]any{"quantiles": []any{0.5}, "value_ranges": []any{}}), StatusError},
		{exp("expect_column_psi_to_be_less_than", "column", "x", "threshold", 0.1, "reference", map[string]any{"edges": []any{1.0}, "fractions": []any{0.5, 0.6}}), StatusError},
	} {
		if r := check(t, fixture, tt.e); r.Status != tt.want {
			t.Errorf("%s %v: status %s (%s), want %s", tt.e.Type, tt.e.Kwargs, r.Status, r.Detail, tt.want)
		}
	}
	if got := Outcome([]Result{{Status: StatusPass}, {Status: StatusUnsupported}}); got != "incomplete" {
		t.Errorf("Outcome = %s", got)
	}
	if got := Outcome([]Result{{Status: StatusError}, {Status: StatusFail}}); got != "fail" {
		t.Errorf("Outcome = %s", got)
	}
}

func readAll(t *testing.T, src Source) (rows [][]string, errs []*RowError) {
	t.Helper()
	rec := make([]Cell, len(src.Columns()))
	for {
		_, err := src.Next(rec)
		if err == io.EOF {
			return
		}
		var re *RowError
		if errors.As(err, &re) {
			errs = append(errs, re)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(rec))
		for i, c := range rec {
			if c.Kind == KindNull {
				row[i] = "<null>"
			} else {
				row[i] = string(c.Raw)
			}
		}
		rows = append(rows, row)
	}
}

func TestCSVBadInput(t *testing.T) {
	data := "\xef\xbb\xbfa,b\n1,2\n\n3\n4,5,6\n\"x\ny\",\"q\"\"\"\n\xff,1\n" + strings.Repeat("z", 100) + ",1\n\"unterminated,1\n"
	src, err := NewCSV(strings.NewReader(data), CSVOptions{MaxLineBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	if cols := src.Columns(); len(cols) != 2 || cols[0] != "a" {
		t.Fatalf("columns %q", cols)
	}
	rows, errs := readAll(t, src)
	want := [][]string{{"1", "2"}, {"x\ny", "q\""}}
	if len(rows) != 2 || rows[0][0] != want[0][0] || rows[1][0] != want[1][0] || rows[1][1] != want[1][1] {
		t.Fatalf("rows %q", rows)
	}
	wantLines := []int64{4, 5, 8, 9, 10}
	wantMsg := []string{"1 fields", "3 fields", "invalid UTF-8", "longer than 64", "unterminated"}
	if len(errs) != len(wantLines) {
		t.Fatalf("errors %v", errs)
	}
	for i, e := range errs {
		if e.Line != wantLines[i] || !strings.Contains(e.Msg, wantMsg[i]) {
			t.Errorf("error %d: %v, want line %d %q", i, e, wantLines[i], wantMsg[i])
		}
	}
	for _, bad := range []string{"", "\n\n", "a,a\n", "\xff\n"} {
		if _, err := NewCSV(strings.NewReader(bad), CSVOptions{}); !errors.Is(err, ErrFormat) {
			t.Errorf("NewCSV(%q) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestCSVNullValuesAndDelimiter(t *testing.T) {
	src, err := NewCSV(strings.NewReader("a;b\nNA;\n"), CSVOptions{Comma: ';', NullValues: []string{"NA"}})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := readAll(t, src)
	if len(rows) != 1 || rows[0][0] != "<null>" || rows[0][1] != "" {
		t.Fatalf("rows %q", rows)
	}
}

func TestJSONL(t *testing.T) {
	data := "not json\n{\"id\": 1, \"x\": 1.5, \"s\": \"a\", \"n\": null, \"o\": {\"k\": 1}}\n\n{\"x\": 2, \"id\": 2, \"extra\": true}\n[1]\n{\"id\": 3, \"id\": 4}\n{\"id\": \"3\", \"x\": 1e400}\n{\"id\": 1} trailing\n"
	src, err := NewJSONL(strings.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(src.Columns(), ","); got != "id,x,s,n,o" {
		t.Fatalf("columns %s", got)
	}
	rows, errs := readAll(t, src)
	if len(rows) != 3 || rows[0][4] != `{"k": 1}` || rows[1][2] != "<null>" || rows[2][0] != "3" {
		t.Fatalf("rows %q", rows)
	}
	var lines []int64
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if len(lines) != 4 || lines[0] != 1 || lines[1] != 5 || lines[2] != 6 || lines[3] != 8 {
		t.Fatalf("errors %v", errs)
	}
	// Types: JSON strings are not integers, even when they look like one.
	src, _ = NewJSONL(strings.NewReader(data), 0)
	rep, err := Check(t.Context(), src, []Expectation{exp("expect_column_values_to_be_of_type", "column", "id", "type_", "int")}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[1]
	if r.Status != StatusFail || *r.UnexpectedCount != 1 || r.Examples[0].Line != 7 {
		t.Fatalf("type check: %+v", r)
	}
	if rep.MalformedRows != 4 || rep.Results[0].Status != StatusFail {
		t.Fatalf("well-formed: %+v", rep.Results[0])
	}
}

type pqRow struct {
	ID   int64    `parquet:"id"`
	X    *float64 `parquet:"x,optional"`
	S    string   `parquet:"s"`
	Flag bool     `parquet:"flag"`
}

func TestParquet(t *testing.T) {
	var buf bytes.Buffer
	f := func(v float64) *float64 { return &v }
	rows := []pqRow{{1, f(1.5), "apple", true}, {2, nil, "banana", false}, {2, f(-3), "cherry", true}}
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	src, err := NewParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(src.Columns(), ","); got != "id,x,s,flag" {
		t.Fatalf("columns %s", got)
	}
	rep, err := Check(t.Context(), src, []Expectation{
		exp("expect_column_values_to_be_unique", "column", "id"),
		exp("expect_column_values_to_not_be_null", "column", "x"),
		exp("expect_column_values_to_be_of_type", "column", "id", "type_", "int64"),
		exp("expect_column_values_to_be_of_type", "column", "flag", "type_", "bool"),
		exp("expect_column_mean_to_be_between", "column", "x", "min_value", -0.75, "max_value", -0.75),
		exp("expect_column_values_to_be_in_set", "column", "s", "value_set", []any{"apple", "banana", "cherry"}),
	}, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{StatusPass, StatusFail, StatusFail, StatusPass, StatusPass, StatusPass, StatusPass}
	for i, r := range rep.Results {
		if r.Status != want[i] {
			t.Errorf("%s: %s, want %s (%+v)", r.Type, r.Status, want[i], r)
		}
	}
	if ex := rep.Results[1].Examples; len(ex) != 1 || ex[0].Line != 3 {
		t.Errorf("unique example %+v", ex)
	}
	if _, err := NewParquet(bytes.NewReader([]byte("PAR1 not really")), 15); !errors.Is(err, ErrFormat) {
		t.Errorf("bad parquet: %v", err)
	}
}

func TestParseContract(t *testing.T) {
	y := `custody_contract: 1
name: t
format: csv
csv: {delimiter: ";", null_values: ["", NA]}
max_examples: 3
columns:
  - {name: id, type: integer, not_null: true, unique: true, min: 0}
  - name: x
    quantiles: {"0.5": [0, 1], "0.9": [null, 2]}
    psi: {threshold: 0.2, reference_path: ref.json}
ordered: false
row_count: {min: 1}
expectations:
  - expectation_type: expect_column_values_to_not_be_null
    kwargs: {column: x, mostly: 0.9}
  - type: expect_column_mean_to_be_between
    kwargs: {column: x, min_value: 1}
  - expect_column_values_to_be_unique: {column: x}
`
	c, err := ParseContract(strings.NewReader(y), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range c.Expectations {
		types = append(types, e.Type)
	}
	want := "expect_table_columns_to_match_set expect_column_values_to_be_of_type expect_column_values_to_not_be_null expect_column_values_to_be_unique expect_column_values_to_be_between expect_column_quantile_values_to_be_between expect_column_psi_to_be_less_than expect_table_row_count_to_be_between expect_column_values_to_not_be_null expect_column_mean_to_be_between expect_column_values_to_be_unique"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("types\n got %s\nwant %s", got, want)
	}
	if c.CSV.Comma != ';' || len(c.CSV.NullValues) != 2 || c.MaxExamples != 3 {
		t.Fatalf("options %+v", c)
	}
	q := c.Expectations[5].Kwargs["quantile_ranges"].(map[string]any)
	if b, _ := json.Marshal(q); string(b) != `{"quantiles":[0.5,0.9],"value_ranges":[[0,1],[null,2]]}` {
		t.Fatalf("quantile_ranges %s", b)
	}
	for _, bad := range []string{
		"", "name: x\n", "custody_contract: 2\ncolumns: [{name: a}]\n", "custody_contract: 1\n",
		"custody_contract: 1\ncolumns: [{name: a, nul: true}]\n", "custody_contract: 1\ncolumns: [{type: int}]\n",
		"custody_contract: 1\nformat: xml\ncolumns: [{name: a}]\n", "custody_contract: 1\nexpectations: [3]\n",
		"custody_contract: 1\nexpectations: [{kwargs: {}}]\n", "custody_contract: 1\ncsv: {delimiter: ab}\ncolumns: [{name: a}]\n",
	} {
		if _, err := ParseContract(strings.NewReader(bad), "bad.yaml"); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseContract(%q) = %v, want ErrSpec", bad, err)
		}
	}
}

// TestParseSuite reads suites written by hand from GX's documented format:
// 0.x ("expectation_suite_name", "expectation_type") and 1.x ("name", "type").
func TestParseSuite(t *testing.T) {
	v0 := `{"expectation_suite_name": "trips.warning", "data_asset_type": "Dataset", "meta": {"great_expectations_version": "0.18.8"},
 "expectations": [
  {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}, "meta": {}},
  {"expectation_type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10, "strict_min": true, "mostly": 0.95}, "meta": {"notes": "n"}}
 ]}`
	s, err := ParseSuite(strings.NewReader(v0), "s.json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "trips.warning" || len(s.Expectations) != 2 || s.Expectations[1].Kwargs["mostly"] != 0.95 {
		t.Fatalf("%+v", s)
	}
	v1 := `{"name": "trips", "id": "0b0c", "meta": {}, "notes": null,
 "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": null}, "meta": {}, "id": "a1", "severity": "critical"}]}`
	s, err = ParseSuite(strings.NewReader(v1), "s.json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "trips" || s.Expectations[0].Type != "expect_table_row_count_to_be_between" || s.Expectations[0].Kwargs["max_value"] != nil {
		t.Fatalf("%+v", s)
	}
	for _, bad := range []string{"", "[]", `{"expectations": {}}`, `{"expectations": [1]}`, `{"expectations": [{"type": 1}]}`,
		`{"expectations": [{"type": "a", "expectation_type": "b"}]}`, `{"expectations": [{"type": "a", "kwargs": []}]}`,
		`{"expectations": []} {}`, `{"expectations": [{"type": "a", "bogus": 1}]}`} {
		if _, err := ParseSuite(strings.NewReader(bad), "bad.json"); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseSuite(%q) = %v, want ErrSpec", bad, err)
		}
	}
}

// TestPipelineMatchesSequential: the multi-goroutine pipeline gives the same
// report, byte for byte, as the single-goroutine loop, over several batches.
func TestPipelineMatchesSequential(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,x,s\n")
	for i := range 3*batchRows + 17 {
		switch {
		case i%997 == 0:
			b.WriteString("bad row\n")
		case i%101 == 0:
			b.WriteString(",oops,\n")
		default:
			b.WriteString(strings.Repeat("1", i%3+1) + "," + strings.Repeat("7", i%5) + ".5,s" + strings.Repeat("x", i%11) + "\n")
		}
	}
	exps := []Expectation{
		exp("expect_column_values_to_be_unique", "column", "id"),
		exp("expect_column_values_to_not_be_null", "column", "x"),
		exp("expect_column_values_to_be_between", "column", "x", "min_value", 1, "max_value", 7000),
		exp("expect_column_mean_to_be_between", "column", "x", "min_value", 0),
		exp("expect_column_quantile_values_to_be_between", "column", "x", "quantile_ranges", map[string]any{"quantiles": []any{0.1, 0.9}, "value_ranges": []any{[]any{nil, nil}, []any{0, 10}}}),
		exp("expect_column_value_lengths_to_be_between", "column", "s", "max_value", 8),
		exp("expect_column_values_to_match_regex", "column", "s", "regex", "xx"),
		exp("expect_table_row_count_to_be_between", "min_value", 1),
	}
	var out [2][]byte
	for i, w := range []int{1, 3} {
		src, err := NewCSV(strings.NewReader(b.String()), CSVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(t.Context(), src, exps, CheckOptions{Workers: w, Limits: Limits{SampleCap: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		out[i], _ = json.Marshal(rep)
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatalf("pipeline differs:\nsequential %s\npipeline   %s", out[0], out[1])
	}
	if !bytes.Contains(out[0], []byte(`"status":"fail"`)) || !bytes.Contains(out[0], []byte(`"malformed_rows":7`)) {
		t.Fatalf("fixture does not exercise failures: %s", out[0])
	}
}

// FuzzFastFloat: the fast path agrees with strconv.ParseFloat whenever it
// accepts its input.
func FuzzFastFloat(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.5", "123.456", "9007199254740991", "9007199254740993", ".5", "5.", "-.", ".", "+1", "0.1234567890123456789012", "00012.50", "+", "-", "", "+."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastFloat([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("fastFloat(%q) = %v, strconv rejects it: %v", s, got, err)
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("fastFloat(%q) = %v, strconv %v", s, got, want)
		}
	})
}

// TestProfileRoundTrip: a column checked against its own profile has PSI 0;
// against a shifted copy it fails.
func TestProfileRoundTrip(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("v,c\n")
	b.WriteString("v,c\n")
	for i := range 1000 {
		fmt.Fprintf(&a, "%d,%c\n", i%100, 'a'+rune(i%3))
		fmt.Fprintf(&b, "%d,%c\n", 50+i%100, 'a')
	}
	open := func(s string) func() (Source, error) {
		return func() (Source, error) { return NewCSV(strings.NewReader(s), CSVOptions{}) }
	}
	p, err := BuildProfile(t.Context(), open(a.String()), ProfileOptions{Column: "v", Bins: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Edges) != 3 || len(p.Fractions) != 4 || p.Count != 1000 {
		t.Fatalf("profile %+v", p)
	}
	for _, f := range p.Fractions {
		if math.Abs(f-0.25) > 0.011 {
			t.Fatalf("fractions %v", p.Fractions)
		}
	}
	cp, err := BuildProfile(t.Context(), open(a.String()), ProfileOptions{Column: "c", Categorical: true})
	if err != nil || len(cp.Categories) != 3 {
		t.Fatalf("categorical %+v %v", cp, err)
	}
	var ref, cref map[string]any
	for _, x := range []struct {
		p   *Profile
		dst *map[string]any
	}{{p, &ref}, {cp, &cref}} {
		raw, _ := json.Marshal(x.p)
		if err := json.Unmarshal(raw, x.dst); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		data string
		want Status
	}{{a.String(), StatusPass}, {b.String(), StatusFail}} {
		src, _ := NewCSV(strings.NewReader(tt.data), CSVOptions{})
		rep, err := Check(t.Context(), src, []Expectation{
			exp("expect_column_psi_to_be_less_than", "column", "v", "threshold", 0.1, "reference", ref),
			exp("expect_column_psi_to_be_less_than", "column", "c", "threshold", 0.1, "reference", cref),
		}, CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results[1:] {
			if r.Status != tt.want {
				t.Errorf("%v: %s (%v), want %s", r.Kwargs["column"], r.Status, r.Observed, tt.want)
			}
		}
	}
	if _, err := BuildProfile(t.Context(), open("v\nx\n"), ProfileOptions{Column: "v"}); err == nil {
		t.Error("non-numeric profile accepted")
	}
	if _, err := BuildProfile(t.Context(), open("v\n1\n"), ProfileOptions{Column: "w"}); err == nil {
		t.Error("missing column accepted")
	}
}

// TestPipelineWideTable: batches hold fewer rows when there are many
// columns; results still match the sequential loop.
func TestPipelineWideTable(t *testing.T) {
	const cols, rows = 5000, 40
	var b strings.Builder
	for c := range cols {
		if c > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "c%d", c)
	}
	b.WriteByte('\n')
	for r := range rows {
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", r*c%7)
		}
		b.WriteByte('\n')
	}
	exps := []Expectation{
		exp("expect_column_values_to_be_between", "column", "c4999", "max_value", 5),
		exp("expect_column_values_to_be_unique", "column", "c1"),
		exp("expect_column_mean_to_be_between", "column", "c3", "min_value", 0),
	}
	var out [2][]byte
	for i, w := range []int{1, 2} {
		src, err := NewCSV(strings.NewReader(b.String()), CSVOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(t.Context(), src, exps, CheckOptions{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != rows {
			t.Fatalf("rows = %d", rep.Rows)
		}
		out[i], _ = json.Marshal(rep.Results)
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatalf("pipeline differs:\n%s\n%s", out[0], out[1])
	}
}

// TestUniqueManyPartitions: duplicates spread over partitions and flushes
// are all counted, and the examples are the earliest repeated lines.
func TestUniqueManyPartitions(t *testing.T) {
	var b strings.Builder
	b.WriteString("v\n")
	// Values 0..19999; value k*1000 (k = 1..9) appears again at the end, and
	// value 7 three times in all. Line of data row i is i+2.
	for i := range 20000 {
		fmt.Fprintf(&b, "%d\n", i)
	}
	var dupLines []int64
	for k := 9; k >= 1; k-- {
		fmt.Fprintf(&b, "%d\n", k*1000)
		dupLines = append(dupLines, int64(20000+len(dupLines)+2))
	}
	b.WriteString("7\n7\n")
	dupLines = append(dupLines, int64(20000+9+2), int64(20000+10+2))
	for _, w := range []int{1, 2} {
		src, _ := NewCSV(strings.NewReader(b.String()), CSVOptions{})
		rep, err := Check(t.Context(), src, []Expectation{exp("expect_column_values_to_be_unique", "column", "v")}, CheckOptions{Workers: w, Limits: Limits{MaxExamples: 4}})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[1]
		// 9 values twice (18) + value 7 three times (3).
		if r.Status != StatusFail || *r.UnexpectedCount != 21 {
			t.Fatalf("workers %d: %+v", w, r)
		}
		if len(r.Examples) != 4 {
			t.Fatalf("examples %+v", r.Examples)
		}
		for i, e := range r.Examples {
			if e.Line != dupLines[i] {
				t.Fatalf("example %d at line %d, want %d (%+v)", i, e.Line, dupLines[i], r.Examples)
			}
		}
	}
}
