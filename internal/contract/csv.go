package contract

import (
	"bytes"
	"fmt"
	"io"
	"unicode/utf8"
)

// CSVOptions configure [NewCSV].
type CSVOptions struct {
	// Comma is the field delimiter; 0 means ','.
	Comma byte
	// NullValues are the field texts read as null; nil means {""}.
	NullValues []string
	// MaxLineBytes caps a line and a multi-line record; 0 means
	// DefaultMaxLineBytes.
	MaxLineBytes int
}

// csvReader reads RFC 4180 CSV with a header line, streaming. It is lenient
// where pandas is: a quote inside an unquoted field is kept as text. Blank
// lines are skipped. A UTF-8 byte order mark before the header is dropped.
type csvReader struct {
	lr        *lineReader
	comma     byte
	nullEmpty bool
	nulls     [][]byte
	max       int
	cols      []string
	fields    [][]byte
	rec       []byte
	ends      []int
	start     int64
}

// NewCSV reads the header line of r and returns a Source over its records.
func NewCSV(r io.Reader, opts CSVOptions) (Source, error) {
	c := &csvReader{lr: newLineReader(r, opts.MaxLineBytes), comma: opts.Comma, max: opts.MaxLineBytes}
	if c.comma == 0 {
		c.comma = ','
	}
	if c.max <= 0 {
		c.max = DefaultMaxLineBytes
	}
	if c.comma == '"' || c.comma == '\n' || c.comma == '\r' {
		return nil, fmt.Errorf("%w: invalid CSV delimiter %q", ErrFormat, c.comma)
	}
	nulls := opts.NullValues
	if nulls == nil {
		nulls = []string{""}
	}
	for _, n := range nulls {
		if n == "" {
			c.nullEmpty = true
		} else {
			c.nulls = append(c.nulls, []byte(n))
		}
	}
	for {
		fields, err := c.record()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: CSV has no header line", ErrFormat)
		}
		if re, ok := err.(*RowError); ok {
			return nil, fmt.Errorf("%w: CSV header: %v", ErrFormat, re)
		}
		if err != nil {
			return nil, err
		}
		if fields == nil {
			continue
		}
		if len(fields) > 0 {
			fields[0] = bytes.TrimPrefix(fields[0], []byte("\xef\xbb\xbf"))
		}
		seen := map[string]bool{}
		for _, f := range fields {
			name := string(f)
			if !utf8.ValidString(name) {
				return nil, fmt.Errorf("%w: CSV header is not valid UTF-8", ErrFormat)
			}
			if seen[name] {
				return nil, fmt.Errorf("%w: duplicate column %q in CSV header", ErrFormat, name)
			}
			seen[name] = true
			c.cols = append(c.cols, name)
		}
		return c, nil
	}
}

func (c *csvReader) Columns() []string { return c.cols }

func (c *csvReader) Next(rec []Cell) (int64, error) {
	for {
		fields, err := c.record()
		if err != nil {
			if re, ok := err.(*RowError); ok {
				return re.Line, re
			}
			return c.lr.line, err
		}
		if fields == nil {
			continue // blank line
		}
		line := c.start
		if len(fields) != len(c.cols) {
			return line, &RowError{Line: line, Msg: fmt.Sprintf("%d fields, header has %d", len(fields), len(c.cols))}
		}
		for i, f := range fields {
			if c.isNull(f) {
				rec[i].reset(KindNull, nil)
			} else {
				rec[i].reset(KindText, f)
			}
		}
		return line, nil
	}
}

func (c *csvReader) isNull(f []byte) bool {
	if len(f) == 0 {
		return c.nullEmpty
	}
	for _, n := range c.nulls {
		if bytes.Equal(f, n) {
			return true
		}
	}
	return false
}

// record reads one record; nil fields (and nil error) for a blank line.
// c.start is set to the record's first line.
func (c *csvReader) record() ([][]byte, error) {
	line, err := c.lr.next()
	c.start = c.lr.line
	if err == errLongLine {
		return nil, &RowError{Line: c.start, Msg: fmt.Sprintf("line longer than %d bytes", c.max)}
	}
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, nil
	}
	if !utf8.Valid(line) {
		return nil, &RowError{Line: c.start, Msg: "invalid UTF-8"}
	}
	if bytes.IndexByte(line, '"') < 0 {
		c.fields = c.fields[:0]
		for {
			i := bytes.IndexByte(line, c.comma)
			if i < 0 {
				c.fields = append(c.fields, line)
				return c.fields, nil
			}
			c.fields = append(c.fields, line[:i])
			line = line[i+1:]
		}
	}
	return c.quoted(line)
}

func (c *csvReader) quoted(line []byte) ([][]byte, error) {
	c.rec = c.rec[:0]
	c.ends = c.ends[:0]
	pos := 0
	for {
		// At the start of a field.
		if pos < len(line) && line[pos] == '"' {
			pos++
			for {
				i := bytes.IndexByte(line[pos:], '"')
				if i < 0 {
					c.rec = append(c.rec, line[pos:]...)
					c.rec = append(c.rec, '\n')
					if len(c.rec) > c.max {
						return nil, &RowError{Line: c.start, Msg: fmt.Sprintf("record longer than %d bytes", c.max)}
					}
					next, err := c.lr.next()
					if err == io.EOF {
						return nil, &RowError{Line: c.start, Msg: "unterminated quoted field"}
					}
					if err == errLongLine {
						return nil, &RowError{Line: c.start, Msg: fmt.Sprintf("record longer than %d bytes", c.max)}
					}
					if err != nil {
						return nil, err
					}
					if !utf8.Valid(next) {
						return nil, &RowError{Line: c.start, Msg: "invalid UTF-8"}
					}
					line, pos = next, 0
					continue
				}
				c.rec = append(c.rec, line[pos:pos+i]...)
				pos += i + 1
				if pos < len(line) && line[pos] == '"' {
					c.rec = append(c.rec, '"')
					pos++
					continue
				}
				break
			}
			c.ends = append(c.ends, len(c.rec))
			if pos == len(line) {
				break
			}
			if line[pos] != c.comma {
				return nil, &RowError{Line: c.start, Msg: "extraneous characters after a quoted field"}
			}
			pos++
			if pos == len(line) {
				c.ends = append(c.ends, len(c.rec)) // trailing empty field
				break
			}
			continue
		}
		i := bytes.IndexByte(line[pos:], c.comma)
		if i < 0 {
			c.rec = append(c.rec, line[pos:]...)
			c.ends = append(c.ends, len(c.rec))
			break
		}
		c.rec = append(c.rec, line[pos:pos+i]...)
		c.ends = append(c.ends, len(c.rec))
		pos += i + 1
		if pos == len(line) {
			c.ends = append(c.ends, len(c.rec))
			break
		}
	}
	c.fields = c.fields[:0]
	prev := 0
	for _, e := range c.ends {
		c.fields = append(c.fields, c.rec[prev:e:e])
		prev = e
	}
	return c.fields, nil
}
