package contract

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Status is the outcome of one expectation.
type Status string

const (
	// StatusPass: the expectation holds.
	StatusPass Status = "pass"
	// StatusFail: the expectation does not hold.
	StatusFail Status = "fail"
	// StatusUnsupported: custody does not implement this expectation or one
	// of its keyword arguments; nothing was checked.
	StatusUnsupported Status = "unsupported"
	// StatusError: the expectation is invalid (bad kwargs, bad regex) or
	// could not be evaluated (a memory cap was reached).
	StatusError Status = "error"
)

// Example is one failing value.
type Example struct {
	Line  int64  `json:"line"`
	Value any    `json:"value"`
	Note  string `json:"note,omitempty"`
}

// Result is the outcome of one expectation over one input. Field names
// follow GE's validation results where they exist.
type Result struct {
	Type   string         `json:"expectation_type"`
	Kwargs map[string]any `json:"kwargs"`
	Source string         `json:"source,omitempty"`
	Status Status         `json:"status"`
	// Observed is GE's observed_value for aggregate expectations.
	Observed any `json:"observed_value,omitempty"`
	// ElementCount, MissingCount, UnexpectedCount and UnexpectedPercent are
	// set for column-map expectations (value by value).
	ElementCount      *int64    `json:"element_count,omitempty"`
	MissingCount      *int64    `json:"missing_count,omitempty"`
	UnexpectedCount   *int64    `json:"unexpected_count,omitempty"`
	UnexpectedPercent *float64  `json:"unexpected_percent,omitempty"`
	Examples          []Example `json:"examples,omitempty"`
	Detail            string    `json:"detail,omitempty"`
}

// checker evaluates one expectation over a stream of records.
type checker interface {
	// observe sees one well-formed record.
	observe(rec []Cell, line int64)
	// finish reports the result once all rows were seen.
	finish(rows int64, r *Result)
	// column is the index of the one column observe reads, -1 for none.
	// Checkers of the same column run on the same goroutine (Cell caches
	// its numeric value).
	column() int
	// cost is a rough relative cost per row, to balance goroutines.
	cost() int
}

// Limits bound the memory used by expectations that need state per value.
type Limits struct {
	// MaxExamples is the number of failing values kept per expectation.
	MaxExamples int
	// UniqueCap is the number of distinct values a uniqueness check holds
	// (8 bytes each, in a table at most 4/3 larger); past it the check
	// reports an error rather than an unsound answer.
	UniqueCap int
	// SampleCap is the number of values a quantile check holds: quantiles
	// are exact up to it, estimated from a uniform reservoir sample past it.
	SampleCap int
}

// DefaultLimits are used for zero fields of Limits.
var DefaultLimits = Limits{MaxExamples: 5, UniqueCap: 1 << 24, SampleCap: 1 << 20}

type buildEnv struct {
	cols   []string
	index  map[string]int
	limits Limits
	// loadRef loads a PSI reference profile named by "reference_path".
	loadRef func(path string) (map[string]any, error)
}

type builder func(env *buildEnv, kw *kwargs, r *Result) checker

// builders maps GE expectation types to their implementation.
var builders map[string]builder

func init() {
	builders = map[string]builder{
		"expect_column_to_exist":                                  buildColumnToExist,
		"expect_table_columns_to_match_ordered_list":              buildColumnsOrdered,
		"expect_table_columns_to_match_set":                       buildColumnsSet,
		"expect_table_column_count_to_equal":                      buildColumnCountEqual,
		"expect_table_row_count_to_be_between":                    buildRowCountBetween,
		"expect_table_row_count_to_equal":                         buildRowCountEqual,
		"expect_column_values_to_not_be_null":                     buildNotNull,
		"expect_column_values_to_be_null":                         buildNull,
		"expect_column_values_to_be_between":                      buildValuesBetween,
		"expect_column_values_to_be_unique":                       buildUnique,
		"expect_column_values_to_be_in_set":                       buildInSet(false),
		"expect_column_values_to_not_be_in_set":                   buildInSet(true),
		"expect_column_values_to_match_regex":                     buildRegex(false),
		"expect_column_values_to_not_match_regex":                 buildRegex(true),
		"expect_column_value_lengths_to_be_between":               buildLengthsBetween,
		"expect_column_value_lengths_to_equal":                    buildLengthsEqual,
		"expect_column_values_to_be_of_type":                      buildOfType,
		"expect_column_values_to_be_in_type_list":                 buildInTypeList,
		"expect_column_mean_to_be_between":                        buildAggregate(aggMean),
		"expect_column_stdev_to_be_between":                       buildAggregate(aggStdev),
		"expect_column_min_to_be_between":                         buildAggregate(aggMin),
		"expect_column_max_to_be_between":                         buildAggregate(aggMax),
		"expect_column_sum_to_be_between":                         buildAggregate(aggSum),
		"expect_column_median_to_be_between":                      buildMedian,
		"expect_column_quantile_values_to_be_between":             buildQuantiles,
		"expect_column_psi_to_be_less_than":                       buildPSI,
		"expect_column_unique_value_count_to_be_between":          buildDistinct(false),
		"expect_column_proportion_of_unique_values_to_be_between": buildDistinct(true),
		"expect_column_values_to_be_json_parseable":               buildJSONParseable,
		"expect_column_values_to_match_regex_list":                buildRegexList(false),
		"expect_column_values_to_not_match_regex_list":            buildRegexList(true),
	}
}

// SupportedTypes lists the expectation types custody implements, sorted.
func SupportedTypes() []string {
	out := make([]string, 0, len(builders))
	for k := range builders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// constChecker is an expectation decided before reading any row.
type constChecker struct{}

func (constChecker) observe([]Cell, int64) {}
func (constChecker) column() int           { return -1 }
func (constChecker) finish(int64, *Result) {}
func pct(n, d int64) *float64 {
	p := 0.0
	if d > 0 {
		p = 100 * float64(n) / float64(d)
	}
	return &p
}

// column resolves the "column" kwarg; -1 (and a failed result) when the
// data has no such column.
func (env *buildEnv) column(kw *kwargs, r *Result) int {
	name := kw.str("column", true)
	if kw.err != nil {
		return -1
	}
	i, ok := env.index[name]
	if !ok {
		r.Status = StatusFail
		r.Detail = fmt.Sprintf("column %q not found", name)
		return -1
	}
	return i
}

func buildColumnToExist(env *buildEnv, kw *kwargs, r *Result) checker {
	name := kw.str("column", true)
	idx := kw.num("column_index")
	if kw.err != nil {
		return nil
	}
	i, ok := env.index[name]
	switch {
	case !ok:
		r.Status, r.Detail = StatusFail, fmt.Sprintf("column %q not found", name)
	case idx != nil && float64(i) != *idx:
		r.Status, r.Detail = StatusFail, fmt.Sprintf("column %q is at index %d, want %v", name, i, *idx)
	default:
		r.Status = StatusPass
	}
	r.Observed = env.cols
	return constChecker{}
}

func stringList(kw *kwargs, name string) []string {
	l := kw.list(name, true)
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, ok := v.(string)
		if !ok {
			kw.fail("%q must be a list of strings", name)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func buildColumnsOrdered(env *buildEnv, kw *kwargs, r *Result) checker {
	want := stringList(kw, "column_list")
	if kw.err != nil {
		return nil
	}
	r.Observed = env.cols
	r.Status = StatusPass
	if !slices.Equal(want, env.cols) {
		r.Status = StatusFail
		var diffs []string
		for i := 0; i < max(len(want), len(env.cols)); i++ {
			var w, g string
			if i < len(want) {
				w = want[i]
			}
			if i < len(env.cols) {
				g = env.cols[i]
			}
			if w != g {
				diffs = append(diffs, fmt.Sprintf("index %d: expected %q, found %q", i, w, g))
			}
		}
		r.Detail = strings.Join(diffs, "; ")
	}
	return constChecker{}
}

func buildColumnsSet(env *buildEnv, kw *kwargs, r *Result) checker {
	want := stringList(kw, "column_set")
	exact := true
	if kw.has("exact_match") {
		exact = kw.boolean("exact_match")
	}
	kw.used["exact_match"] = true
	if kw.err != nil {
		return nil
	}
	var missing, extra []string
	for _, w := range want {
		if _, ok := env.index[w]; !ok {
			missing = append(missing, w)
		}
	}
	ws := map[string]bool{}
	for _, w := range want {
		ws[w] = true
	}
	for _, c := range env.cols {
		if !ws[c] {
			extra = append(extra, c)
		}
	}
	r.Observed = env.cols
	r.Status = StatusPass
	var why []string
	if len(missing) > 0 {
		why = append(why, fmt.Sprintf("missing %q", missing))
	}
	if exact && len(extra) > 0 {
		why = append(why, fmt.Sprintf("unexpected %q", extra))
	}
	if len(why) > 0 {
		r.Status, r.Detail = StatusFail, strings.Join(why, "; ")
	}
	return constChecker{}
}

func buildColumnCountEqual(env *buildEnv, kw *kwargs, r *Result) checker {
	v := kw.num("value")
	if v == nil {
		kw.fail(`missing "value"`)
	}
	if kw.err != nil {
		return nil
	}
	r.Observed = len(env.cols)
	r.Status = StatusPass
	if float64(len(env.cols)) != *v {
		r.Status = StatusFail
	}
	return constChecker{}
}

// rng is an inclusive (or strict) numeric range with optional ends, as GE's
// min_value/max_value/strict_min/strict_max.
type rng struct {
	min, max             *float64
	strictMin, strictMax bool
}

func readRange(kw *kwargs, needOne bool) rng {
	r := rng{min: kw.num("min_value"), max: kw.num("max_value"), strictMin: kw.boolean("strict_min"), strictMax: kw.boolean("strict_max")}
	if needOne && r.min == nil && r.max == nil && kw.err == nil {
		kw.fail(`"min_value" and "max_value" cannot both be null`)
	}
	return r
}

func (r *rng) contains(f float64) bool {
	if math.IsNaN(f) {
		return false
	}
	if r.min != nil && (f < *r.min || (r.strictMin && f == *r.min)) {
		return false
	}
	if r.max != nil && (f > *r.max || (r.strictMax && f == *r.max)) {
		return false
	}
	return true
}

type rowCountChecker struct{ r rng }

func (c *rowCountChecker) observe([]Cell, int64) {}
func (c *rowCountChecker) column() int           { return -1 }
func (c *rowCountChecker) finish(rows int64, r *Result) {
	r.Observed = rows
	r.Status = StatusPass
	if !c.r.contains(float64(rows)) {
		r.Status = StatusFail
	}
}

func buildRowCountBetween(_ *buildEnv, kw *kwargs, _ *Result) checker {
	rg := readRange(kw, false)
	if kw.err != nil {
		return nil
	}
	return &rowCountChecker{r: rg}
}

func buildRowCountEqual(_ *buildEnv, kw *kwargs, _ *Result) checker {
	v := kw.num("value")
	if v == nil {
		kw.fail(`missing "value"`)
	}
	if kw.err != nil {
		return nil
	}
	return &rowCountChecker{r: rng{min: v, max: v}}
}

func (constChecker) cost() int     { return 0 }
func (*rowCountChecker) cost() int { return 0 }
