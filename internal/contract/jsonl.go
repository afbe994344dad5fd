package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// jsonlReader reads JSON Lines: one JSON object per line. The columns are
// the keys of the first well-formed record, in their order there; a key
// missing from a later record reads as null, and keys that the first record
// does not have are ignored. Blank lines are skipped.
type jsonlReader struct {
	lr      *lineReader
	max     int
	cols    []string
	index   map[string]int
	pending []error // row errors met while looking for the first record
	first   []Cell
	line    int64
}

// NewJSONL returns a Source over JSON Lines read from r; maxLineBytes 0
// means DefaultMaxLineBytes.
func NewJSONL(r io.Reader, maxLineBytes int) (Source, error) {
	if maxLineBytes <= 0 {
		maxLineBytes = DefaultMaxLineBytes
	}
	j := &jsonlReader{lr: newLineReader(r, maxLineBytes), max: maxLineBytes}
	for {
		keys, vals, line, err := j.object()
		if err == io.EOF {
			if len(j.pending) > 0 {
				return nil, fmt.Errorf("%w: no well-formed JSON object line (first problem: %v)", ErrFormat, j.pending[0])
			}
			return nil, fmt.Errorf("%w: empty JSONL input", ErrFormat)
		}
		if re, ok := err.(*RowError); ok {
			if len(j.pending) < 1000 {
				j.pending = append(j.pending, re)
				continue
			}
			return nil, fmt.Errorf("%w: no well-formed JSON object in the first 1000 lines", ErrFormat)
		}
		if err != nil {
			return nil, err
		}
		if keys == nil {
			continue
		}
		j.index = make(map[string]int, len(keys))
		for i, k := range keys {
			j.cols = append(j.cols, k)
			j.index[k] = i
		}
		j.first = make([]Cell, len(keys))
		for i, v := range vals {
			setJSON(&j.first[i], v)
		}
		j.line = line
		return j, nil
	}
}

func (j *jsonlReader) Columns() []string { return j.cols }

func (j *jsonlReader) Next(rec []Cell) (int64, error) {
	if len(j.pending) > 0 {
		err := j.pending[0]
		j.pending = j.pending[1:]
		return err.(*RowError).Line, err
	}
	if j.first != nil {
		copy(rec, j.first)
		j.first = nil
		return j.line, nil
	}
	for {
		keys, vals, line, err := j.object()
		if err != nil {
			if re, ok := err.(*RowError); ok {
				return re.Line, re
			}
			return line, err
		}
		if keys == nil {
			continue
		}
		for i := range rec {
			rec[i].reset(KindNull, nil)
		}
		for i, k := range keys {
			if c, ok := j.index[k]; ok {
				setJSON(&rec[c], vals[i])
			}
		}
		return line, nil
	}
}

// object parses one line as a JSON object. nil keys and nil error: blank.
func (j *jsonlReader) object() (keys []string, vals [][]byte, line int64, err error) {
	b, err := j.lr.next()
	line = j.lr.line
	if err == errLongLine {
		return nil, nil, line, &RowError{Line: line, Msg: fmt.Sprintf("line longer than %d bytes", j.max)}
	}
	if err != nil {
		return nil, nil, line, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, line, nil
	}
	if !utf8.Valid(b) {
		return nil, nil, line, &RowError{Line: line, Msg: "invalid UTF-8"}
	}
	bad := func(msg string) ([]string, [][]byte, int64, error) {
		return nil, nil, line, &RowError{Line: line, Msg: msg}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return bad("invalid JSON: " + err.Error())
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("invalid JSON: " + err.Error())
		}
		k, ok := tok.(string)
		if !ok {
			return bad("invalid JSON object key")
		}
		if seen[k] {
			return bad(fmt.Sprintf("duplicate key %q", k))
		}
		seen[k] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("invalid JSON: " + err.Error())
		}
		keys = append(keys, k)
		vals = append(vals, raw)
	}
	if _, err := dec.Token(); err != nil {
		return bad("invalid JSON: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("trailing data after the JSON object")
	}
	if keys == nil {
		keys = []string{}
	}
	return keys, vals, line, nil
}

// setJSON sets c from one raw JSON value (already validated by the decoder).
func setJSON(c *Cell, raw []byte) {
	switch raw[0] {
	case 'n':
		c.reset(KindNull, nil)
	case 't', 'f':
		c.reset(KindBool, raw)
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			c.reset(KindOther, raw)
			return
		}
		c.reset(KindString, []byte(s))
	case '{', '[':
		c.reset(KindOther, raw)
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !isRangeErr(err) {
			c.reset(KindOther, raw)
			return
		}
		k := KindFloat
		if !bytes.ContainsAny(raw, ".eE") {
			if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				k = KindInt
			}
		}
		c.setNum(k, raw, f)
	}
}
