package contract

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Source is a stream of records over a fixed list of columns.
type Source interface {
	// Columns returns the column names in file order. The slice must not be
	// modified.
	Columns() []string
	// Next reads the next record into rec, which has len(Columns()) cells,
	// and returns the record's line number (1-based; for Parquet, the row
	// number). At the end of the data it returns io.EOF. A *RowError means
	// that this record is malformed: it is reported and skipped, and the
	// stream goes on. Any other error ends the stream.
	Next(rec []Cell) (line int64, err error)
}

// RowError describes a malformed record. It does not end the stream.
type RowError struct {
	Line   int64
	Column string // empty when the problem is not in one column
	Msg    string
}

func (e *RowError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("line %d: column %q: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ErrFormat is returned (wrapped; check with errors.Is) when an input cannot
// be read at all: no header, duplicate column names, not Parquet, ...
var ErrFormat = errors.New("unreadable data")

// DefaultMaxLineBytes caps the length of one line (CSV, JSONL) and of one
// CSV record spanning several lines. Longer ones are reported as malformed
// and skipped without being held in memory.
const DefaultMaxLineBytes = 1 << 20

// lineReader reads lines of at most max bytes, without their "\n" or
// "\r\n", counting them from 1.
type lineReader struct {
	br   *bufio.Reader
	line int64
}

func newLineReader(r io.Reader, max int) *lineReader {
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	// A bufio buffer of max bytes holds a whole line of up to max-1 bytes
	// plus its newline.
	return &lineReader{br: bufio.NewReaderSize(r, max+1)}
}

var errLongLine = errors.New("line too long")

// next returns the next line. The slice is valid until the next call. At the
// end it returns io.EOF; a line longer than the cap is consumed and
// errLongLine returned (the line number is r.line).
func (r *lineReader) next() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == nil:
		r.line++
		b = b[:len(b)-1]
	case err == bufio.ErrBufferFull:
		r.line++
		for err == bufio.ErrBufferFull {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, errLongLine
	case err == io.EOF:
		if len(b) == 0 {
			return nil, io.EOF
		}
		r.line++
	default:
		return nil, err
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, nil
}
