package contract

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/parquet-go/parquet-go"
)

// parquetReader reads a flat Parquet file (top-level primitive columns,
// optional or required) row group by row group, a batch of rows at a time.
// BOOLEAN reads as a boolean, INT32/INT64 as integers, FLOAT/DOUBLE as
// floats, BYTE_ARRAY/FIXED_LEN_BYTE_ARRAY as strings; logical types (dates,
// timestamps, decimals) are read as their physical values. Line numbers are
// 1-based row numbers.
type parquetReader struct {
	f      *parquet.File
	cols   []string
	kinds  []parquet.Kind
	groups []parquet.RowGroup
	g      int
	rows   parquet.Rows
	buf    []parquet.Row
	n, i   int
	row    int64
	text   [][]byte
}

// NewParquet opens a Parquet file of the given size.
func NewParquet(r io.ReaderAt, size int64) (src Source, err error) {
	defer func() {
		// parquet-go may panic on corrupt metadata; report it as bad input.
		if p := recover(); p != nil {
			src, err = nil, fmt.Errorf("%w: corrupt Parquet file: %v", ErrFormat, p)
		}
	}()
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	p := &parquetReader{f: f, groups: f.RowGroups(), buf: make([]parquet.Row, 256)}
	for _, fld := range f.Schema().Fields() {
		if !fld.Leaf() || fld.Repeated() {
			return nil, fmt.Errorf("%w: Parquet column %q is nested or repeated; only flat schemas are supported", ErrFormat, fld.Name())
		}
		p.cols = append(p.cols, fld.Name())
		p.kinds = append(p.kinds, fld.Type().Kind())
	}
	p.text = make([][]byte, len(p.cols))
	return p, nil
}

func (p *parquetReader) Columns() []string { return p.cols }

func (p *parquetReader) Next(rec []Cell) (line int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: corrupt Parquet data: %v", ErrFormat, r)
		}
	}()
	for p.i >= p.n {
		if p.rows == nil {
			if p.g >= len(p.groups) {
				return p.row, io.EOF
			}
			p.rows = p.groups[p.g].Rows()
			p.g++
		}
		n, err := p.rows.ReadRows(p.buf)
		p.n, p.i = n, 0
		if err != nil {
			p.rows.Close()
			p.rows = nil
			if !errors.Is(err, io.EOF) {
				return p.row, fmt.Errorf("%w: %v", ErrFormat, err)
			}
		}
	}
	row := p.buf[p.i]
	p.i++
	p.row++
	for i := range rec {
		rec[i].reset(KindNull, nil)
	}
	for _, v := range row {
		c := v.Column()
		if c < 0 || c >= len(rec) || v.IsNull() {
			continue
		}
		t := p.text[c][:0]
		switch v.Kind() {
		case parquet.Boolean:
			t = strconv.AppendBool(t, v.Boolean())
			rec[c].reset(KindBool, t)
		case parquet.Int32, parquet.Int64:
			n := v.Int64()
			t = strconv.AppendInt(t, n, 10)
			rec[c].setNum(KindInt, t, float64(n))
		case parquet.Float, parquet.Double:
			f := v.Double()
			if v.Kind() == parquet.Float {
				f = float64(v.Float())
			}
			t = strconv.AppendFloat(t, f, 'g', -1, 64)
			if math.IsNaN(f) {
				rec[c].reset(KindNull, nil)
				continue
			}
			rec[c].setNum(KindFloat, t, f)
		default:
			t = append(t, v.ByteArray()...)
			rec[c].reset(KindString, t)
		}
		p.text[c] = t
	}
	return p.row, nil
}
