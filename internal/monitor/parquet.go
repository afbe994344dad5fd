package monitor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// ParquetSource reads the rows of a Parquet file with a flat schema (every
// top-level field a leaf: required or optional, not repeated or nested).
// Nulls are missing values; doubles and floats give their shortest text,
// NaN is missing; integers their decimal text; booleans "true"/"false";
// byte arrays their bytes as text.
type ParquetSource struct {
	groups []parquet.RowGroup
	rows   parquet.Rows // rows of groups[0], nil before the first read
	header []string
	buf    []parquet.Row
	pos    int
	n      int
	row    int
}

// NewParquetSource opens a Parquet file of the given size.
func NewParquetSource(r io.ReaderAt, size int64) (*ParquetSource, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, &FormatError{Format: "parquet", Err: err}
	}
	s := &ParquetSource{buf: make([]parquet.Row, 1024)}
	for _, fld := range f.Schema().Fields() {
		if !fld.Leaf() || fld.Repeated() {
			return nil, &FormatError{Format: "parquet", Err: fmt.Errorf("column %q is nested or repeated; only flat schemas are read", fld.Name())}
		}
		s.header = append(s.header, fld.Name())
	}
	s.groups = f.RowGroups()
	return s, nil
}

// Columns implements RowSource.
func (s *ParquetSource) Columns() []string { return s.header }

// Next implements RowSource.
func (s *ParquetSource) Next(dst []Cell) ([]Cell, error) {
	for s.pos == s.n {
		if s.rows == nil {
			if len(s.groups) == 0 {
				return nil, io.EOF
			}
			s.rows = s.groups[0].Rows()
		}
		n, err := s.rows.ReadRows(s.buf)
		s.pos, s.n = 0, n
		if n > 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &FormatError{Format: "parquet", Line: s.row + 1, Err: err}
		}
		// This row group is done.
		s.rows.Close()
		s.rows = nil
		s.groups = s.groups[1:]
	}
	row := s.buf[s.pos]
	s.pos++
	s.row++
	dst = dst[:0]
	for range s.header {
		dst = append(dst, Cell{Null: true})
	}
	var err error
	row.Range(func(col int, vals []parquet.Value) bool {
		if col >= len(dst) || len(vals) != 1 {
			err = &FormatError{Format: "parquet", Line: s.row, Err: fmt.Errorf("column %d has %d values", col, len(vals))}
			return false
		}
		dst[col] = parquetCell(vals[0])
		return true
	})
	return dst, err
}

func parquetCell(v parquet.Value) Cell {
	if v.IsNull() {
		return Cell{Null: true}
	}
	switch v.Kind() {
	case parquet.Boolean:
		return Cell{Text: strconv.FormatBool(v.Boolean())}
	case parquet.Int32:
		return Cell{Text: strconv.FormatInt(int64(v.Int32()), 10)}
	case parquet.Int64:
		return Cell{Text: strconv.FormatInt(v.Int64(), 10)}
	case parquet.Float:
		f := float64(v.Float())
		if math.IsNaN(f) {
			return Cell{Null: true}
		}
		return Cell{Text: strconv.FormatFloat(f, 'g', -1, 64)} // exact widening
	case parquet.Double:
		f := v.Double()
		if math.IsNaN(f) {
			return Cell{Null: true}
		}
		return Cell{Text: strconv.FormatFloat(f, 'g', -1, 64)}
	default:
		return Cell{Text: string(v.ByteArray())}
	}
}
