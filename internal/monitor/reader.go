package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Cell is one value of a row as read from a file: its text, or Null when
// the value is missing (an empty CSV field or one of pandas' default NA
// strings, a JSON null or an absent key).
type Cell struct {
	Text string
	Null bool
}

// RowSource streams the rows of a table file. Columns lists the column
// names once, before the first row; Next returns the next row's cells in
// that order (reusing dst when it has room) and io.EOF after the last row.
//
// This is deliberately small so that the CSV/JSONL/Parquet readers of the
// data-contract package can implement it later.
type RowSource interface {
	Columns() []string
	Next(dst []Cell) ([]Cell, error)
}

// MaxFieldBytes caps one field or one JSONL line, so that a malformed file
// cannot make a reader buffer without bound.
const MaxFieldBytes = 16 << 20

// naStrings are pandas.read_csv's default missing-value markers.
var naStrings = map[string]bool{
	"": true, "#N/A": true, "#N/A N/A": true, "#NA": true, "-1.#IND": true,
	"-1.#QNAN": true, "-NaN": true, "-nan": true, "1.#IND": true, "1.#QNAN": true,
	"<NA>": true, "N/A": true, "NA": true, "NULL": true, "NaN": true, "None": true,
	"n/a": true, "nan": true, "null": true,
}

// IsNA reports whether a CSV field is a missing value in pandas' default
// sense.
func IsNA(s string) bool { return naStrings[s] }

// CSVSource reads RFC 4180 CSV with a header row: comma separated, fields
// optionally double-quoted with "" as an escaped quote, quoted fields may
// span lines, CRLF or LF line ends. Rows shorter than the header are padded
// with missing values; longer rows are an error.
type CSVSource struct {
	r      *bufio.Reader
	header []string
	line   int
	field  []byte
}

// NewCSVSource reads the header row of r.
func NewCSVSource(r io.Reader) (*CSVSource, error) {
	s := &CSVSource{r: bufio.NewReaderSize(r, 1<<20)}
	rec, err := s.record(nil)
	if err == io.EOF {
		return nil, &FormatError{Format: "csv", Line: 1, Err: errors.New("no header row")}
	}
	if err != nil {
		return nil, err
	}
	s.header = make([]string, len(rec))
	for i, c := range rec {
		s.header[i] = c.Text
	}
	s.header[0] = strings.TrimPrefix(s.header[0], "\ufeff")
	return s, nil
}

// Columns implements RowSource.
func (s *CSVSource) Columns() []string { return s.header }

// Next implements RowSource.
func (s *CSVSource) Next(dst []Cell) ([]Cell, error) {
	for {
		rec, err := s.record(dst[:0])
		if err != nil {
			return nil, err
		}
		if len(rec) == 1 && rec[0].Text == "" {
			continue // blank line, as pandas skips them
		}
		if len(rec) > len(s.header) {
			return nil, &FormatError{Format: "csv", Line: s.line, Err: fmt.Errorf("%d fields, header has %d", len(rec), len(s.header))}
		}
		for len(rec) < len(s.header) {
			rec = append(rec, Cell{Null: true})
		}
		return rec, nil
	}
}

// record reads one CSV record. Cells are NA-classified here.
func (s *CSVSource) record(dst []Cell) ([]Cell, error) {
	s.line++
	startLine := s.line
	line, err := s.readLine()
	if err != nil {
		return nil, err
	}
	for {
		// One field.
		if len(line) > 0 && line[0] == '"' {
			s.field = s.field[:0]
			line = line[1:]
			for {
				i := bytes.IndexByte(line, '"')
				if i < 0 {
					// Field continues on the next line.
					s.field = append(s.field, line...)
					s.field = append(s.field, '\n')
					if len(s.field) > MaxFieldBytes {
						return nil, &FormatError{Format: "csv", Line: startLine, Err: errors.New("field too long")}
					}
					s.line++
					line, err = s.readLine()
					if err == io.EOF {
						return nil, &FormatError{Format: "csv", Line: startLine, Err: errors.New("unterminated quoted field")}
					}
					if err != nil {
						return nil, err
					}
					continue
				}
				s.field = append(s.field, line[:i]...)
				line = line[i+1:]
				if len(line) > 0 && line[0] == '"' {
					s.field = append(s.field, '"')
					line = line[1:]
					continue
				}
				break
			}
			txt := string(s.field)
			dst = append(dst, Cell{Text: txt, Null: IsNA(txt)})
			if len(line) == 0 {
				return dst, nil
			}
			if line[0] != ',' {
				return nil, &FormatError{Format: "csv", Line: s.line, Err: errors.New(`extraneous character after closing quote`)}
			}
			line = line[1:]
			if len(line) == 0 {
				dst = append(dst, Cell{Null: true})
				return dst, nil
			}
			continue
		}
		i := bytes.IndexByte(line, ',')
		var f []byte
		if i < 0 {
			f = line
		} else {
			f = line[:i]
		}
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, &FormatError{Format: "csv", Line: s.line, Err: errors.New(`bare " in unquoted field`)}
		}
		txt := string(f)
		dst = append(dst, Cell{Text: txt, Null: IsNA(txt)})
		if i < 0 {
			return dst, nil
		}
		line = line[i+1:]
		if len(line) == 0 {
			dst = append(dst, Cell{Null: true})
			return dst, nil
		}
	}
}

// readLine returns the next line without its line end; the slice is only
// valid until the next call.
func (s *CSVSource) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = s.r.ReadSlice('\n')
			buf = append(buf, line...)
			if len(buf) > MaxFieldBytes {
				return nil, &FormatError{Format: "csv", Line: s.line, Err: errors.New("line too long")}
			}
		}
		line = buf
	}
	if err == io.EOF {
		if len(line) == 0 {
			return nil, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, nil
}

// JSONLSource reads JSON Lines: one JSON object per line, blank lines
// skipped. The columns are the keys of the first object in order; a key
// absent from a later object, or null, is a missing value; keys not in the
// first object are ignored. Strings give their value, numbers their
// literal text, booleans "true"/"false", arrays and objects their compact
// JSON text.
type JSONLSource struct {
	r      *bufio.Reader
	header []string
	index  map[string]int
	line   int
	first  map[string]json.RawMessage
}

// NewJSONLSource reads the first object of r to learn the columns.
func NewJSONLSource(r io.Reader) (*JSONLSource, error) {
	s := &JSONLSource{r: bufio.NewReaderSize(r, 1<<20), index: map[string]int{}}
	for {
		line, err := s.readLine()
		if err == io.EOF {
			return nil, &FormatError{Format: "jsonl", Line: s.line, Err: errors.New("no JSON object")}
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		keys, obj, err := s.parseObject(line)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if _, dup := s.index[k]; dup {
				continue
			}
			s.index[k] = len(s.header)
			s.header = append(s.header, k)
		}
		s.first = obj
		return s, nil
	}
}

// Columns implements RowSource.
func (s *JSONLSource) Columns() []string { return s.header }

// Next implements RowSource.
func (s *JSONLSource) Next(dst []Cell) ([]Cell, error) {
	var obj map[string]json.RawMessage
	if s.first != nil {
		obj, s.first = s.first, nil
	} else {
		for {
			line, err := s.readLine()
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			_, obj, err = s.parseObject(line)
			if err != nil {
				return nil, err
			}
			break
		}
	}
	dst = dst[:0]
	for _, k := range s.header {
		raw, ok := obj[k]
		if !ok {
			dst = append(dst, Cell{Null: true})
			continue
		}
		c, err := jsonCell(raw)
		if err != nil {
			return nil, &FormatError{Format: "jsonl", Line: s.line, Err: err}
		}
		dst = append(dst, c)
	}
	return dst, nil
}

func jsonCell(raw json.RawMessage) (Cell, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return Cell{}, errors.New("empty value")
	case string(raw) == "null":
		return Cell{Null: true}, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Cell{}, err
		}
		return Cell{Text: s}, nil
	case raw[0] == '{' || raw[0] == '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return Cell{}, err
		}
		return Cell{Text: b.String()}, nil
	default:
		return Cell{Text: string(raw)}, nil
	}
}

func (s *JSONLSource) parseObject(line []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: err}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: errors.New("line is not a JSON object")}
	}
	var keys []string
	obj := map[string]json.RawMessage{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: err}
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: err}
		}
		if _, dup := obj[k]; !dup {
			keys = append(keys, k)
		}
		obj[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: err}
	}
	if dec.More() {
		return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: errors.New("trailing data after object")}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, &FormatError{Format: "jsonl", Line: s.line, Err: errors.New("trailing data after object")}
	}
	return keys, obj, nil
}

func (s *JSONLSource) readLine() ([]byte, error) {
	s.line++
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxFieldBytes {
			return nil, &FormatError{Format: "jsonl", Line: s.line, Err: errors.New("line too long")}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		return buf, nil
	}
}

// ParseNumber parses a numeric cell the way pandas' CSV parser would
// accept it: decimal floats and integers, "inf"/"infinity" in any case with
// an optional sign. Hexadecimal floats and digit separators are not
// numbers. NaN spellings are missing values, not numbers (see IsNA).
func ParseNumber(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 'x', 'X', '_', 'p', 'P':
			return 0, false
		case 'n', 'N':
			// Only "inf"/"infinity" contain n; "nan" is handled by IsNA.
			if !strings.Contains(strings.ToLower(s), "inf") {
				return 0, false
			}
		}
	}
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return v, true // ±Inf or 0 after over/underflow, as numpy
		}
		return 0, false
	}
	return v, true
}
