package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrSpec is returned (wrapped; check with errors.Is) when a contract or an
// expectation suite is not valid.
var ErrSpec = errors.New("invalid contract")

// MaxSpecBytes caps the size of a contract or suite file.
const MaxSpecBytes = 8 << 20

// Expectation is one expectation in Great Expectations' terms: its type
// (e.g. "expect_column_values_to_not_be_null") and keyword arguments. Values
// in Kwargs are JSON-like: nil, bool, float64, string, []any, map[string]any.
type Expectation struct {
	Type   string         `json:"expectation_type"`
	Kwargs map[string]any `json:"kwargs"`
	// Source says where the expectation came from ("contract.yaml:
	// columns[2].unique", "suite.json: expectations[4]").
	Source string `json:"source,omitempty"`
}

// Contract is a parsed data contract: how to read the data and which
// expectations to check. See docs/data.md for the file format.
type Contract struct {
	Name         string
	Format       string // "", "csv", "jsonl", "parquet"
	CSV          CSVOptions
	MaxExamples  int
	Expectations []Expectation
}

type rawColumn struct {
	Name     string         `yaml:"name"`
	Type     string         `yaml:"type"`
	NotNull  bool           `yaml:"not_null"`
	Unique   bool           `yaml:"unique"`
	Min      *float64       `yaml:"min"`
	Max      *float64       `yaml:"max"`
	InSet    []any          `yaml:"in_set"`
	Regex    *string        `yaml:"regex"`
	Length   *rawRange      `yaml:"length"`
	Mean     *rawRange      `yaml:"mean"`
	Stdev    *rawRange      `yaml:"stdev"`
	Quantile map[string]any `yaml:"quantiles"`
	PSI      map[string]any `yaml:"psi"`
}

type rawRange struct {
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
}

type rawContract struct {
	Version     *int   `yaml:"custody_contract"`
	Name        string `yaml:"name"`
	Format      string `yaml:"format"`
	MaxExamples *int   `yaml:"max_examples"`
	CSV         struct {
		Delimiter  string    `yaml:"delimiter"`
		NullValues *[]string `yaml:"null_values"`
	} `yaml:"csv"`
	Columns      []rawColumn `yaml:"columns"`
	Ordered      *bool       `yaml:"ordered"`
	RowCount     *rawRange   `yaml:"row_count"`
	Expectations []yaml.Node `yaml:"expectations"`
}

// ParseContract reads a contract YAML document. Unknown keys are errors, so
// a misspelt expectation never passes silently.
func ParseContract(r io.Reader, name string) (*Contract, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrSpec, name, MaxSpecBytes)
	}
	var raw rawContract
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSpec, name, err)
	}
	if raw.Version == nil || *raw.Version != 1 {
		return nil, fmt.Errorf("%w: %s: want \"custody_contract: 1\"", ErrSpec, name)
	}
	c := &Contract{Name: raw.Name, Format: raw.Format, MaxExamples: 5}
	switch c.Format {
	case "", "csv", "jsonl", "parquet":
	default:
		return nil, fmt.Errorf("%w: %s: format %q (want csv, jsonl or parquet)", ErrSpec, name, c.Format)
	}
	if raw.MaxExamples != nil {
		if *raw.MaxExamples < 0 || *raw.MaxExamples > 1000 {
			return nil, fmt.Errorf("%w: %s: max_examples must be in 0..1000", ErrSpec, name)
		}
		c.MaxExamples = *raw.MaxExamples
	}
	switch len(raw.CSV.Delimiter) {
	case 0:
	case 1:
		c.CSV.Comma = raw.CSV.Delimiter[0]
		if c.CSV.Comma == '"' || c.CSV.Comma == '\n' || c.CSV.Comma == '\r' {
			return nil, fmt.Errorf("%w: %s: invalid csv.delimiter", ErrSpec, name)
		}
	default:
		if raw.CSV.Delimiter == `\t` {
			c.CSV.Comma = '\t'
		} else {
			return nil, fmt.Errorf("%w: %s: csv.delimiter must be one byte", ErrSpec, name)
		}
	}
	if raw.CSV.NullValues != nil {
		c.CSV.NullValues = append([]string{}, *raw.CSV.NullValues...)
	}
	add := func(src, typ string, kw map[string]any) {
		c.Expectations = append(c.Expectations, Expectation{Type: typ, Kwargs: kw, Source: fmt.Sprintf("%s: %s", name, src)})
	}
	if len(raw.Columns) > 0 {
		names := make([]any, len(raw.Columns))
		for i, col := range raw.Columns {
			if col.Name == "" {
				return nil, fmt.Errorf("%w: %s: columns[%d] has no name", ErrSpec, name, i)
			}
			names[i] = col.Name
		}
		if raw.Ordered == nil || *raw.Ordered {
			add("columns", "expect_table_columns_to_match_ordered_list", map[string]any{"column_list": names})
		} else {
			add("columns", "expect_table_columns_to_match_set", map[string]any{"column_set": names, "exact_match": true})
		}
		for i, col := range raw.Columns {
			where := func(k string) string { return fmt.Sprintf("columns[%d].%s", i, k) }
			kw := func(extra ...any) map[string]any {
				m := map[string]any{"column": col.Name}
				for j := 0; j+1 < len(extra); j += 2 {
					if extra[j+1] != nil {
						m[extra[j].(string)] = extra[j+1]
					}
				}
				return m
			}
			if col.Type != "" {
				add(where("type"), "expect_column_values_to_be_of_type", kw("type_", col.Type))
			}
			if col.NotNull {
				add(where("not_null"), "expect_column_values_to_not_be_null", kw())
			}
			if col.Unique {
				add(where("unique"), "expect_column_values_to_be_unique", kw())
			}
			if col.Min != nil || col.Max != nil {
				add(where("min/max"), "expect_column_values_to_be_between", kw("min_value", fptr(col.Min), "max_value", fptr(col.Max)))
			}
			if col.InSet != nil {
				add(where("in_set"), "expect_column_values_to_be_in_set", kw("value_set", normalize(col.InSet)))
			}
			if col.Regex != nil {
				add(where("regex"), "expect_column_values_to_match_regex", kw("regex", *col.Regex))
			}
			if col.Length != nil {
				add(where("length"), "expect_column_value_lengths_to_be_between", kw("min_value", fptr(col.Length.Min), "max_value", fptr(col.Length.Max)))
			}
			if col.Mean != nil {
				add(where("mean"), "expect_column_mean_to_be_between", kw("min_value", fptr(col.Mean.Min), "max_value", fptr(col.Mean.Max)))
			}
			if col.Stdev != nil {
				add(where("stdev"), "expect_column_stdev_to_be_between", kw("min_value", fptr(col.Stdev.Min), "max_value", fptr(col.Stdev.Max)))
			}
			if col.Quantile != nil {
				qs := make([]string, 0, len(col.Quantile))
				for q := range col.Quantile {
					qs = append(qs, q)
				}
				sort.Strings(qs)
				var quantiles, ranges []any
				for _, q := range qs {
					f, err := strconv.ParseFloat(q, 64)
					if err != nil {
						return nil, fmt.Errorf("%w: %s: %s: quantile %q is not a number", ErrSpec, name, where("quantiles"), q)
					}
					quantiles = append(quantiles, f)
					ranges = append(ranges, normalize(col.Quantile[q]))
				}
				add(where("quantiles"), "expect_column_quantile_values_to_be_between",
					kw("quantile_ranges", map[string]any{"quantiles": quantiles, "value_ranges": ranges}))
			}
			if col.PSI != nil {
				m := normalize(col.PSI).(map[string]any)
				m["column"] = col.Name
				add(where("psi"), "expect_column_psi_to_be_less_than", m)
			}
		}
	}
	if raw.RowCount != nil {
		add("row_count", "expect_table_row_count_to_be_between", map[string]any{"min_value": fptr(raw.RowCount.Min), "max_value": fptr(raw.RowCount.Max)})
	}
	for i := range raw.Expectations {
		var v any
		if err := raw.Expectations[i].Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %s: expectations[%d]: %v", ErrSpec, name, i, err)
		}
		e, err := expectationFrom(normalize(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: expectations[%d]: %v", ErrSpec, name, i, err)
		}
		e.Source = fmt.Sprintf("%s: expectations[%d]", name, i)
		c.Expectations = append(c.Expectations, *e)
	}
	if len(c.Expectations) == 0 {
		return nil, fmt.Errorf("%w: %s: no expectations", ErrSpec, name)
	}
	return c, nil
}

func fptr(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// expectationFrom accepts {"expectation_type"|"type": name, "kwargs": {...}}
// (GE 0.x / GX 1.x) and the short form {name: {kwargs}}.
func expectationFrom(v any) (*Expectation, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	var typ string
	for _, k := range []string{"expectation_type", "type"} {
		if t, ok := m[k]; ok {
			s, ok := t.(string)
			if !ok || s == "" || typ != "" {
				return nil, fmt.Errorf("bad %q", k)
			}
			typ = s
		}
	}
	if typ == "" {
		if len(m) == 1 {
			for k, kw := range m {
				if !strings.HasPrefix(k, "expect_") {
					break
				}
				kwm, ok := kw.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: kwargs must be an object", k)
				}
				return &Expectation{Type: k, Kwargs: kwm}, nil
			}
		}
		return nil, errors.New(`no "expectation_type" or "type"`)
	}
	kw := map[string]any{}
	if k, ok := m["kwargs"]; ok && k != nil {
		kwm, ok := k.(map[string]any)
		if !ok {
			return nil, errors.New("kwargs must be an object")
		}
		kw = kwm
	}
	for k := range m {
		switch k {
		case "expectation_type", "type", "kwargs", "meta", "id", "notes", "description", "rendered_content", "severity",
			"ge_cloud_id", "expectation_context", "windows":
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
	}
	return &Expectation{Type: typ, Kwargs: kw}, nil
}

// normalize converts YAML/JSON decoded values to the JSON-like kinds listed
// on Expectation: ints and json.Numbers become float64, map[any]any becomes
// map[string]any. Non-finite numbers are kept as float64.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float64:
		return x
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return math.NaN()
		}
		return f
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	}
	return v
}

// Suite is a Great Expectations expectation suite.
type Suite struct {
	Name         string
	Expectations []Expectation
}

// ParseSuite reads an expectation-suite JSON document as written by Great
// Expectations 0.x ({"expectation_suite_name": ..., "expectations":
// [{"expectation_type": ..., "kwargs": {...}, "meta": {...}}]}) or GX 1.x
// ("name" and "type" instead). Other top-level keys (meta, data_asset_type,
// ge_cloud_id, notes, id) are ignored.
func ParseSuite(r io.Reader, name string) (*Suite, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrSpec, name, MaxSpecBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSpec, name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: trailing data after the suite", ErrSpec, name)
	}
	s := &Suite{}
	for _, k := range []string{"expectation_suite_name", "name"} {
		if v, ok := top[k].(string); ok && s.Name == "" {
			s.Name = v
		}
	}
	raw, ok := top["expectations"].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: \"expectations\" must be an array", ErrSpec, name)
	}
	for i, v := range raw {
		e, err := expectationFrom(normalize(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: expectations[%d]: %v", ErrSpec, name, i, err)
		}
		e.Source = fmt.Sprintf("%s: expectations[%d]", name, i)
		s.Expectations = append(s.Expectations, *e)
	}
	return s, nil
}
