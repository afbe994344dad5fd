package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxDictSize bounds the distinct values remembered for a column that is
// still numeric: above it the column can only be used as a number. A column
// that turns out not to be numeric after that is read again as text (see
// ReadTable).
const maxDictSize = 1024

// Column holds one column of a table, row-aligned with the other columns
// read from the same file. Numbers are kept as float64 (NaN where missing)
// while every non-missing value parses as a number; the text of each value
// is kept dictionary-encoded unless the column is numeric with more than
// 1024 distinct values.
type Column struct {
	Name    string
	Rows    int64 // rows in the file
	Missing int64 // missing values (see Cell.Null)

	numOK bool
	num   []float64

	dictOK bool
	codes  []int32 // -1: missing
	dict   []string
	index  map[string]int32
}

func newColumn(name string) *Column {
	return &Column{Name: name, numOK: true, dictOK: true, index: map[string]int32{}}
}

// newTextColumn is a column read as text only.
func newTextColumn(name string) *Column {
	return &Column{Name: name, dictOK: true, index: map[string]int32{}}
}

// errNeedsText is returned while reading when a column that looked numeric
// (and so dropped its dictionary) holds text after all.
type errNeedsText struct{ column string }

func (e *errNeedsText) Error() string {
	return fmt.Sprintf("column %q: not numeric after many distinct numbers: %v", e.column, ErrNotNumeric)
}

func (e *errNeedsText) Unwrap() error { return ErrNotNumeric }

// Numeric reports whether every non-missing value is a number.
func (c *Column) Numeric() bool { return c.numOK }

// Floats returns the values as numbers, NaN where missing. It is only
// valid when Numeric is true.
func (c *Column) Floats() []float64 { return c.num }

// HasText reports whether Text can be used.
func (c *Column) HasText() bool { return c.dictOK }

// Text returns the row-aligned dictionary codes (-1 where missing) and the
// dictionary.
func (c *Column) Text() (codes []int32, dict []string) { return c.codes, c.dict }

// MissingShare is Missing/Rows (0 for an empty file).
func (c *Column) MissingShare() float64 {
	if c.Rows == 0 {
		return 0
	}
	return float64(c.Missing) / float64(c.Rows)
}

func (c *Column) add(cell Cell) error {
	c.Rows++
	if cell.Null {
		c.Missing++
		if c.numOK {
			c.num = append(c.num, math.NaN())
		}
		if c.dictOK {
			c.codes = append(c.codes, -1)
		}
		return nil
	}
	if c.numOK {
		v, ok := ParseNumber(cell.Text)
		switch {
		case ok && math.IsNaN(v):
			// "NAN" and similar spellings not in pandas' list: missing.
			c.Missing++
			c.num = append(c.num, v)
			if c.dictOK {
				c.codes = append(c.codes, -1)
			}
			return nil
		case ok:
			c.num = append(c.num, v)
		default:
			c.numOK = false
			c.num = nil
			if !c.dictOK {
				return &errNeedsText{column: c.Name}
			}
		}
	}
	if c.dictOK {
		code, ok := c.index[cell.Text]
		if !ok {
			if len(c.dict) >= maxDictSize && c.numOK {
				c.dictOK = false
				c.codes, c.dict, c.index = nil, nil, nil
				return nil
			}
			code = int32(len(c.dict))
			txt := strings.Clone(cell.Text) // the caller's text may be reused
			c.dict = append(c.dict, txt)
			c.index[txt] = code
		}
		c.codes = append(c.codes, code)
	}
	return nil
}

// Table is the selected columns of a file.
type Table struct {
	Path    string
	Rows    int64
	Columns []*Column
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// OpenSource opens a table file by its extension: .csv, .jsonl, .ndjson
// or .parquet. The caller closes the returned closer.
func OpenSource(path string) (RowSource, io.Closer, error) {
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".csv", ".jsonl", ".ndjson", ".parquet":
	default:
		return nil, nil, fmt.Errorf("%s: extension %q (want .csv, .jsonl, .ndjson or .parquet): %w", path, ext, ErrUnsupportedFormat)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var src RowSource
	switch ext {
	case ".csv":
		src, err = NewCSVSource(f)
	case ".parquet":
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			src, err = NewParquetSource(f, st.Size())
		}
	default:
		src, err = NewJSONLSource(f)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, f, nil
}

// ReadTable reads the named columns of a file (all columns when names is
// empty). An unquoted CSV file is read whole and parsed in parallel; other
// files are streamed.
func ReadTable(ctx context.Context, path string, names []string) (*Table, error) {
	return ReadTableAs(ctx, path, names, nil)
}

// ReadTableAs is ReadTable with the columns in text read as text only
// (categorical), whatever they hold.
func ReadTableAs(ctx context.Context, path string, names, text []string) (*Table, error) {
	text = slices.Clone(text)
	for {
		t, err := readTable(ctx, path, names, text)
		var nt *errNeedsText
		if errors.As(err, &nt) && !slices.Contains(text, nt.column) {
			// Rare: many distinct numbers, then text. Read again with the
			// column as text from the start.
			text = append(text, nt.column)
			continue
		}
		return t, err
	}
}

func readTable(ctx context.Context, path string, names, text []string) (*Table, error) {
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		t, ok, err := readCSVBatch(ctx, path, names, text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			t.Path = path
			return t, nil
		}
	}
	src, closer, err := OpenSource(path)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	t, err := readSource(ctx, src, names, text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// ReadSource reads the named columns (all when names is empty) of src.
func ReadSource(ctx context.Context, src RowSource, names []string) (*Table, error) {
	return readSource(ctx, src, names, nil)
}

// readSource reads the named columns, those in text as text only.
func readSource(ctx context.Context, src RowSource, names, text []string) (*Table, error) {
	header := src.Columns()
	pos := map[string]int{}
	for i, h := range header {
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	if len(names) == 0 {
		names = header
	}
	t := &Table{}
	var idx []int
	seen := map[string]bool{}
	for _, n := range names {
		i, ok := pos[n]
		if !ok {
			return nil, fmt.Errorf("column %q: %w", n, ErrUnknownColumn)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		idx = append(idx, i)
		if slices.Contains(text, n) {
			t.Columns = append(t.Columns, newTextColumn(n))
		} else {
			t.Columns = append(t.Columns, newColumn(n))
		}
	}
	var row []Cell
	for {
		var err error
		row, err = src.Next(row)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		t.Rows++
		if t.Rows&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for k, i := range idx {
			if err := t.Columns[k].add(row[i]); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}
