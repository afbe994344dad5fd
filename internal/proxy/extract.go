package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// MaxRows caps the records extracted from one request.
const MaxRows = 10000

// Mapping tells the proxy where features, predictions and segments live in
// bodies that are not KServe v2, and how to name KServe columns. The file
// format is in docs/proxy.md.
type Mapping struct {
	// Paths lists the request paths the pointers apply to; empty means
	// every POST that is not a KServe v2 inference call.
	Paths []string `json:"paths,omitempty"`
	// Features and Prediction are JSON pointers into the request and the
	// response; "*" as a token means one record per array element.
	// The empty pointer "" is the whole document.
	Features   *string `json:"features,omitempty"`
	Prediction *string `json:"prediction,omitempty"`
	// Segment maps a segment key to a pointer into the request.
	Segment map[string]string `json:"segment,omitempty"`
	// FeatureNames names the columns of array-valued features (KServe
	// multi-column inputs and arrays found by the Features pointer).
	FeatureNames []string `json:"feature_names,omitempty"`
	// Classes names the columns of array-valued predictions, which become
	// {class: probability}.
	Classes []string `json:"classes,omitempty"`
	// Output selects the KServe output tensor holding the prediction
	// (default: the first one).
	Output string `json:"output,omitempty"`

	features, prediction pointer
	segment              map[string]pointer
}

// ParseMapping parses and validates a mapping file's contents (strict:
// unknown keys are errors).
func ParseMapping(data []byte) (*Mapping, error) {
	var m Mapping
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	if dec.More() {
		return nil, errors.New("mapping: trailing data after the object")
	}
	var err error
	m.features.star, m.prediction.star = -1, -1
	if m.Features != nil {
		if m.features, err = parsePointer(*m.Features); err != nil {
			return nil, fmt.Errorf("mapping features: %w", err)
		}
	}
	if m.Prediction != nil {
		if m.prediction, err = parsePointer(*m.Prediction); err != nil {
			return nil, fmt.Errorf("mapping prediction: %w", err)
		}
	}
	if (m.Features == nil) != (m.Prediction == nil) {
		return nil, errors.New("mapping: features and prediction go together")
	}
	if (m.features.star >= 0) != (m.prediction.star >= 0) {
		return nil, errors.New("mapping: '*' must appear in both features and prediction, or in neither")
	}
	m.segment = map[string]pointer{}
	for k, v := range m.Segment {
		if k == "" {
			return nil, errors.New("mapping: empty segment key")
		}
		p, err := parsePointer(v)
		if err != nil {
			return nil, fmt.Errorf("mapping segment %q: %w", k, err)
		}
		if p.star >= 0 {
			return nil, fmt.Errorf("mapping segment %q: '*' is not allowed", k)
		}
		m.segment[k] = p
	}
	for _, p := range m.Paths {
		if p == "" || p[0] != '/' {
			return nil, fmt.Errorf("mapping: path %q must start with '/'", p)
		}
	}
	if dup := firstDuplicate(m.FeatureNames); dup != "" {
		return nil, fmt.Errorf("mapping: feature name %q repeated", dup)
	}
	if dup := firstDuplicate(m.Classes); dup != "" {
		return nil, fmt.Errorf("mapping: class %q repeated", dup)
	}
	return &m, nil
}

// LoadMapping reads a mapping file.
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMapping(data)
}

func firstDuplicate(s []string) string {
	seen := map[string]bool{}
	for _, x := range s {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}

// row is what extraction yields for one record.
type row struct {
	Features   map[string]any
	Prediction any
	Segment    map[string]string
}

// IsKServeInfer reports whether path is an Open Inference Protocol
// inference call: /v2/models/{name}[/versions/{v}]/infer, segments
// non-empty. (Hand-written: it runs on every request.)
func IsKServeInfer(path string) bool {
	rest, ok := strings.CutPrefix(path, "/v2/models/")
	if !ok {
		return false
	}
	if rest, ok = strings.CutSuffix(rest, "/infer"); !ok {
		return false
	}
	name, version, hasVersion := strings.Cut(rest, "/versions/")
	if name == "" || strings.Contains(name, "/") {
		return false
	}
	return !hasVersion || version != "" && !strings.Contains(version, "/")
}

func decodeAny(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// segments resolves the mapping's segment pointers in the request; missing
// values are left out.
func (m *Mapping) segments(req any) map[string]string {
	if m == nil || len(m.segment) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, p := range m.segment {
		v, err := resolve(req, p.tokens)
		if err != nil {
			continue
		}
		switch x := v.(type) {
		case string:
			out[k] = x
		case json.Number:
			out[k] = x.String()
		case bool:
			out[k] = strconv.FormatBool(x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ExtractPointers applies the mapping's pointers to a request and a
// response body.
func (m *Mapping) ExtractPointers(reqBody, respBody []byte) ([]row, error) {
	if m == nil || m.Features == nil {
		return nil, errors.New("the mapping has no features and prediction pointers")
	}
	req, err := decodeAny(reqBody)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	resp, err := decodeAny(respBody)
	if err != nil {
		return nil, fmt.Errorf("response body: %w", err)
	}
	feats, err := m.features.resolveAll(req)
	if err != nil {
		return nil, fmt.Errorf("features %q: %w", m.features.src, err)
	}
	preds, err := m.prediction.resolveAll(resp)
	if err != nil {
		return nil, fmt.Errorf("prediction %q: %w", m.prediction.src, err)
	}
	if len(feats) != len(preds) {
		return nil, fmt.Errorf("%d feature rows but %d predictions", len(feats), len(preds))
	}
	if len(feats) > MaxRows {
		return nil, fmt.Errorf("%d rows, more than %d", len(feats), MaxRows)
	}
	seg := m.segments(req)
	rows := make([]row, len(feats))
	for i := range feats {
		f, err := m.featureMap(feats[i])
		if err != nil {
			return nil, err
		}
		p, err := m.predictionValue(preds[i])
		if err != nil {
			return nil, err
		}
		rows[i] = row{Features: f, Prediction: p, Segment: seg}
	}
	return rows, nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, json.Number:
		return true
	}
	return false
}

// featureMap turns an object (nested members are skipped) or an array
// (named by FeatureNames, else "0", "1", ...) into flat features.
func (m *Mapping) featureMap(v any) (map[string]any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if isScalar(e) {
				out[k] = e
			}
		}
		return out, nil
	case []any:
		return m.columns(x, m.featureNames(), "")
	}
	return nil, errors.New("features must be an object or an array")
}

func (m *Mapping) featureNames() []string {
	if m == nil {
		return nil
	}
	return m.FeatureNames
}

func (m *Mapping) classes() []string {
	if m == nil {
		return nil
	}
	return m.Classes
}

// columns names the values of one row: names[j] when given (the count must
// match), else prefix+j (prefix "" gives "0", "1", ...; "x" gives "x_0").
func (m *Mapping) columns(vals []any, names []string, prefix string) (map[string]any, error) {
	if names != nil && len(names) != len(vals) {
		return nil, fmt.Errorf("%d values but %d names", len(vals), len(names))
	}
	out := make(map[string]any, len(vals))
	for j, e := range vals {
		if !isScalar(e) {
			return nil, errors.New("nested array in a row")
		}
		k := strconv.Itoa(j)
		switch {
		case names != nil:
			k = names[j]
		case prefix != "":
			k = prefix + "_" + k
		}
		out[k] = e
	}
	return out, nil
}

// predictionValue: a number or string as is; a flat object of numbers as
// is; an array of numbers as {class: value}.
func (m *Mapping) predictionValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number, string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case map[string]any:
		for _, e := range x {
			if _, ok := e.(json.Number); !ok {
				return nil, errors.New("prediction object values must be numbers")
			}
		}
		return x, nil
	case []any:
		for _, e := range x {
			if _, ok := e.(json.Number); !ok {
				return nil, errors.New("prediction array values must be numbers")
			}
		}
		return m.columns(x, m.classes(), "")
	}
	return nil, errors.New("prediction must be a number, a string, an object or an array")
}

// KServe v2 / Open Inference Protocol bodies.
type v2Tensor struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

type v2Body struct {
	Inputs  []v2Tensor `json:"inputs"`
	Outputs []v2Tensor `json:"outputs"`
}

// tensor is a decoded tensor: rows of width values, row-major.
type tensor struct {
	name  string
	rows  int
	width int
	vals  []any
}

func decodeTensor(t v2Tensor) (tensor, error) {
	if t.Name == "" {
		return tensor{}, errors.New("tensor without a name")
	}
	rows, width := 1, 1
	total := int64(1)
	for i, d := range t.Shape {
		if d < 0 || d > math.MaxInt32 {
			return tensor{}, fmt.Errorf("tensor %q: bad shape %v", t.Name, t.Shape)
		}
		total *= d
		if total > 1<<26 {
			return tensor{}, fmt.Errorf("tensor %q: shape %v too large", t.Name, t.Shape)
		}
		if i == 0 {
			rows = int(d)
		} else {
			width *= int(d)
		}
	}
	if t.Data == nil {
		return tensor{}, fmt.Errorf("tensor %q: no data", t.Name)
	}
	vals, err := tensorValues(t.Data, make([]any, 0, min(total, 64)))
	if err != nil {
		return tensor{}, fmt.Errorf("tensor %q data: %w", t.Name, err)
	}
	if int64(len(vals)) != total {
		return tensor{}, fmt.Errorf("tensor %q: %d values for shape %v", t.Name, len(vals), t.Shape)
	}
	return tensor{name: t.Name, rows: rows, width: width, vals: vals}, nil
}

// ExtractKServe extracts one row per batch element of a KServe v2
// inference request and its response. The first dimension of every input
// and of the prediction output is the batch; an input of width 1 is the
// feature named after it, wider inputs give name_0, name_1, ... (or
// FeatureNames when there is a single input). The prediction comes from the
// Output tensor (default: the first): width 1 gives the value, wider ones
// an object keyed by Classes (or "0", "1", ...).
func (m *Mapping) ExtractKServe(reqBody, respBody []byte) ([]row, error) {
	var req, resp v2Body
	if err := decodeV2(reqBody, &req); err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	if err := decodeV2(respBody, &resp); err != nil {
		return nil, fmt.Errorf("response body: %w", err)
	}
	if len(req.Inputs) == 0 || len(resp.Outputs) == 0 {
		return nil, errors.New("no inputs or no outputs")
	}
	inputs := make([]tensor, len(req.Inputs))
	for i, in := range req.Inputs {
		t, err := decodeTensor(in)
		if err != nil {
			return nil, err
		}
		if i > 0 && t.rows != inputs[0].rows {
			return nil, fmt.Errorf("inputs disagree on the batch size: %d and %d", inputs[0].rows, t.rows)
		}
		inputs[i] = t
	}
	outIdx := 0
	if m != nil && m.Output != "" {
		outIdx = slices.IndexFunc(resp.Outputs, func(t v2Tensor) bool { return t.Name == m.Output })
		if outIdx < 0 {
			return nil, fmt.Errorf("no output named %q", m.Output)
		}
	}
	out, err := decodeTensor(resp.Outputs[outIdx])
	if err != nil {
		return nil, err
	}
	n := inputs[0].rows
	if out.rows != n {
		return nil, fmt.Errorf("%d input rows but %d output rows", n, out.rows)
	}
	if n > MaxRows {
		return nil, fmt.Errorf("%d rows, more than %d", n, MaxRows)
	}
	var seg map[string]string
	if m != nil && len(m.segment) > 0 {
		if doc, err := decodeAny(reqBody); err == nil {
			seg = m.segments(doc)
		}
	}
	names := m.featureNames()
	if len(inputs) > 1 {
		names = nil
	}
	rows := make([]row, n)
	for r := range n {
		feats := map[string]any{}
		for _, t := range inputs {
			vals := t.vals[r*t.width : (r+1)*t.width]
			if t.width == 1 && names == nil {
				if !isScalar(vals[0]) {
					return nil, errors.New("non-scalar tensor value")
				}
				feats[t.name] = vals[0]
				continue
			}
			cols, err := m.columns(vals, names, t.name)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", t.name, err)
			}
			for k, v := range cols {
				feats[k] = v
			}
		}
		vals := out.vals[r*out.width : (r+1)*out.width]
		var pred any
		if out.width == 1 {
			if pred, err = m.predictionValue(vals[0]); err != nil {
				return nil, err
			}
		} else {
			if pred, err = m.predictionValue(vals); err != nil {
				return nil, err
			}
		}
		rows[r] = row{Features: feats, Prediction: pred, Segment: seg}
	}
	return rows, nil
}
