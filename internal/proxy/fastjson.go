package proxy

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the extraction's hot paths, written by hand because they
// run once per proxied request: the tensor data parser (it replaces a
// json.Decoder and a tree of []any per tensor) and the record encoder (it
// replaces json.Marshal's reflection and map sorting). Both are checked
// against encoding/json by differential fuzz tests (fastjson_test.go).

// maxTensorDepth caps the nesting of tensor data arrays.
const maxTensorDepth = 32

var errTrailing = errors.New("trailing data after the JSON value")

// tensorValues appends the scalars of tensor data (a JSON scalar or nested
// arrays of scalars) to vals in row-major order, as decoding the data with
// UseNumber and flattening it would: numbers as json.Number exactly as
// written, strings, booleans and nil. Objects, invalid JSON, trailing data
// and arrays nested deeper than maxTensorDepth are errors.
func tensorValues(data []byte, vals []any) ([]any, error) {
	p := tensorParser{b: data}
	p.ws()
	vals, err := p.value(vals, 0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, errTrailing
	}
	return vals, nil
}

type tensorParser struct {
	b []byte
	i int
}

var errSyntax = errors.New("invalid JSON in tensor data")

func (p *tensorParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *tensorParser) value(vals []any, depth int) ([]any, error) {
	if depth > maxTensorDepth {
		return nil, errors.New("arrays nested too deeply")
	}
	if p.i >= len(p.b) {
		return nil, errSyntax
	}
	switch c := p.b[p.i]; {
	case c == '[':
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return vals, nil
		}
		for {
			var err error
			if vals, err = p.value(vals, depth+1); err != nil {
				return nil, err
			}
			p.ws()
			if p.i >= len(p.b) {
				return nil, errSyntax
			}
			switch p.b[p.i] {
			case ',':
				p.i++
				p.ws()
			case ']':
				p.i++
				return vals, nil
			default:
				return nil, errSyntax
			}
		}
	case c == '{':
		return nil, errors.New("object in tensor data")
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return append(vals, s), nil
	case c == 't':
		return p.literal(vals, "true", true)
	case c == 'f':
		return p.literal(vals, "false", false)
	case c == 'n':
		return p.literal(vals, "null", nil)
	case c == '-' || '0' <= c && c <= '9':
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		return append(vals, n), nil
	}
	return nil, errSyntax
}

func (p *tensorParser) literal(vals []any, lit string, v any) ([]any, error) {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return nil, errSyntax
	}
	p.i += len(lit)
	return append(vals, v), nil
}

// number scans a JSON number (RFC 8259 section 6) and returns its text.
func (p *tensorParser) number() (json.Number, error) {
	b, start := p.b, p.i
	i := p.i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return "", errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return "", errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return "", errSyntax
		}
	}
	p.i = i
	return json.Number(b[start:i]), nil
}

// str scans a JSON string. Plain ASCII and valid UTF-8 without escapes is
// copied as is; anything else goes through encoding/json, whose rules
// (escapes, invalid UTF-8 replaced by U+FFFD) it must match.
func (p *tensorParser) str() (string, error) {
	b := p.b
	plain := true
	for i := p.i + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			raw := b[p.i : i+1]
			p.i = i + 1
			if plain && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		case c == '\\':
			plain = false
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			return "", errSyntax
		}
	}
	return "", errSyntax
}

// appendRecord appends rec's JSON encoding, byte for byte what
// json.Marshal(rec) gives for the values extraction produces (json.Number,
// string, bool, nil, map[string]any of those; the differential test checks
// it) and falls back to json.Marshal for anything else.
func appendRecord(b []byte, rec *Record) ([]byte, error) {
	b = append(b, `{"ts":`...)
	var err error
	if y := rec.TS.Year(); y < 0 || y > 9999 {
		_, err = rec.TS.MarshalJSON() // its error for years outside [0,9999]
		return nil, err
	}
	b = append(b, '"')
	b = rec.TS.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"request_id":`...)
	b = appendString(b, rec.RequestID)
	b = append(b, `,"model":`...)
	b = appendString(b, rec.Model)
	b = append(b, `,"model_sha256":`...)
	b = appendString(b, rec.ModelSHA256)
	b = append(b, `,"features":`...)
	if b, err = appendAny(b, rec.Features); err != nil {
		return nil, err
	}
	b = append(b, `,"prediction":`...)
	if b, err = appendAny(b, rec.Prediction); err != nil {
		return nil, err
	}
	if len(rec.Segment) > 0 {
		b = append(b, `,"segment":{`...)
		for i, k := range slices.Sorted(maps.Keys(rec.Segment)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, rec.Segment[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"latency_ms":`...)
	if b, err = appendFloat(b, rec.LatencyMS); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendAny(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case json.Number:
		if x == "" || !validNumber(string(x)) {
			break // json.Marshal's answer (an error, or 0 for "")
		}
		return append(b, x...), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		keys := make([]string, 0, 8)
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendAny(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	p := tensorParser{b: []byte(s)}
	_, err := p.number()
	return err == nil && p.i == len(s)
}

// appendFloat formats like encoding/json's float64 encoder.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, errors.New("unsupported float value")
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping (its
// default): <, >, & as \u003c, \u003e, \u0026, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeV2 decodes a KServe v2 body as json.Unmarshal(data, b) does. The
// common shape (lowercase keys, each once, no null in a known member) takes
// a hand-written path that keeps the tensors' data as subslices of data
// (callers must not modify data afterwards); anything else is left to
// encoding/json, which also reports the errors.
func decodeV2(data []byte, b *v2Body) error {
	if fastV2(data, b) {
		return nil
	}
	*b = v2Body{}
	return json.Unmarshal(data, b)
}

// fastV2 reports whether it decoded data; false means "use encoding/json".
func fastV2(data []byte, b *v2Body) bool {
	p := tensorParser{b: data}
	var seenIn, seenOut bool
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "inputs":
			if seenIn {
				return false
			}
			seenIn = true
			return p.tensors(&b.Inputs)
		case "outputs":
			if seenOut {
				return false
			}
			seenOut = true
			return p.tensors(&b.Outputs)
		}
		return !foldsTo(key, "inputs", "outputs") && p.skip(0)
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// foldsTo reports whether key matches one of names case-insensitively, as
// encoding/json matches fields.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// object parses an object whose keys are plain (no escapes), calling member
// with the parser at the member's value.
func (p *tensorParser) object(member func(key []byte) bool) bool {
	return p.members(p.plainKey, member)
}

// members parses an object, reading each key with key and calling member
// with the parser at the member's value.
func (p *tensorParser) members(key func() ([]byte, bool), member func(key []byte) bool) bool {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.ws()
		k, ok := key()
		if !ok {
			return false
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		if !member(k) {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// anyKey scans a JSON string, escapes allowed, and returns nothing of it.
func (p *tensorParser) anyKey() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	_, err := p.str()
	return nil, err == nil
}

// plainKey scans a string of printable ASCII without escapes.
func (p *tensorParser) plainKey() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			key := p.b[p.i+1 : j]
			p.i = j + 1
			return key, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// tensors parses an array of tensor objects.
func (p *tensorParser) tensors(out *[]v2Tensor) bool {
	ts := make([]v2Tensor, 0, 4)
	ok := p.array(func() bool {
		var t v2Tensor
		var seen [4]bool
		ok := p.object(func(key []byte) bool {
			k := -1
			switch string(key) {
			case "name":
				k = 0
			case "shape":
				k = 1
			case "datatype":
				k = 2
			case "data":
				k = 3
			default:
				return !foldsTo(key, "name", "shape", "datatype", "data") && p.skip(0)
			}
			if seen[k] {
				return false
			}
			seen[k] = true
			switch k {
			case 0, 2:
				s, ok := p.plainString()
				if k == 0 {
					t.Name = s
				} else {
					t.Datatype = s
				}
				return ok
			case 1:
				return p.shape(&t.Shape)
			}
			start := p.i
			if p.i < len(p.b) && p.b[p.i] == 'n' || !p.skip(0) {
				return false // null data, or invalid
			}
			t.Data = json.RawMessage(p.b[start:p.i:p.i])
			return true
		})
		if !ok {
			return false
		}
		ts = append(ts, t)
		return true
	})
	if ok {
		*out = ts
	}
	return ok
}

// plainString scans a string as plainKey does and copies it.
func (p *tensorParser) plainString() (string, bool) {
	s, ok := p.plainKey()
	return string(s), ok
}

// shape parses an array of integers that fit in an int64.
func (p *tensorParser) shape(out *[]int64) bool {
	dims := make([]int64, 0, 2)
	ok := p.array(func() bool {
		if p.i >= len(p.b) || !(p.b[p.i] == '-' || '0' <= p.b[p.i] && p.b[p.i] <= '9') {
			return false
		}
		n, err := p.number()
		if err != nil {
			return false
		}
		d, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return false
		}
		dims = append(dims, d)
		return true
	})
	if ok {
		*out = dims
	}
	return ok
}

// array parses '[' elem (',' elem)* ']' or an empty array, with white
// space around the elements; elem starts at an element's first byte.
func (p *tensorParser) array(elem func() bool) bool {
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return false
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

// skip checks and passes over one JSON value of any kind.
func (p *tensorParser) skip(depth int) bool {
	if depth > 10000 || p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.members(p.anyKey, func([]byte) bool { return p.skip(depth + 1) })
	case c == '[':
		return p.array(func() bool { return p.skip(depth + 1) })
	case c == '"':
		_, err := p.str()
		return err == nil
	case c == 't':
		_, err := p.literal(nil, "true", nil)
		return err == nil
	case c == 'f':
		_, err := p.literal(nil, "false", nil)
		return err == nil
	case c == 'n':
		_, err := p.literal(nil, "null", nil)
		return err == nil
	case c == '-' || '0' <= c && c <= '9':
		_, err := p.number()
		return err == nil
	}
	return false
}
