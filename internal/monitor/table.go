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
	// lazy: the codes are not stored. While a numeric column's dictionary
	// texts all have different numbers (bit patterns), a row's code follows
	// from its number (NaN: -1), so only the dictionary is kept; the codes
	// are stored from the first text that breaks this ("1.0" after "1")
	// or is not a number.
	lazy   bool
	codes  []int32 // -1: missing; only when !lazy
	dict   []string
	index  map[string]int32
	vals   map[uint64]int32 // value bits -> code, while lazy
	dvals  []uint64         // value bits of each dictionary text, while lazy
	packed []uint64         // packKey of each dictionary text
}

func newColumn(name string) *Column {
	return &Column{Name: name, numOK: true, dictOK: true, lazy: true, index: map[string]int32{}, vals: map[uint64]int32{}}
}

// newTextColumn is a column read as text only.
func newTextColumn(name string) *Column {
	return &Column{Name: name, dictOK: true, index: map[string]int32{}}
}

// packKey packs a text of at most 7 bytes and its length into a word, for
// the comparisons of small dictionaries; longer texts get a key no short
// text has.
func packKey(b []byte) uint64 {
	if len(b) > 7 {
		return ^uint64(0)
	}
	k := uint64(len(b)) << 56
	for i, ch := range b {
		k |= uint64(ch) << (8 * i)
	}
	return k
}

// lookup finds the dictionary code of a text.
func (c *Column) lookup(b []byte) (int32, bool) {
	if len(c.dict) <= 8 {
		if len(b) <= 7 {
			k := packKey(b)
			for i, p := range c.packed {
				if p == k {
					return int32(i), true
				}
			}
			return 0, false
		}
		for i, v := range c.dict {
			if v == string(b) {
				return int32(i), true
			}
		}
		return 0, false
	}
	code, ok := c.index[string(b)]
	return code, ok
}

// addText adds a text to the dictionary. v is its number when the column
// is numeric.
func (c *Column) addText(txt string, v float64) int32 {
	code := int32(len(c.dict))
	if c.lazy {
		bits := math.Float64bits(v)
		if _, dup := c.vals[bits]; dup {
			// A second text for this number: store the codes from now on.
			// The current row's number is already in num.
			c.materialize(len(c.num) - 1)
		} else {
			c.vals[bits] = code
			c.dvals = append(c.dvals, bits)
		}
	}
	c.dict = append(c.dict, txt)
	c.index[txt] = code
	c.packed = append(c.packed, packKey([]byte(txt)))
	return code
}

// materialize stores the codes of the first n rows (derived from their
// numbers) and ends the lazy mode.
func (c *Column) materialize(n int) {
	if !c.lazy {
		return
	}
	codes := c.derivedCodes(n)
	c.codes = slices.Grow(codes, max(1024, n/8))
	c.lazy, c.vals, c.dvals = false, nil, nil
}

// derivedCodes are the codes of the first n rows of a lazy column.
func (c *Column) derivedCodes(n int) []int32 {
	codes := make([]int32, n)
	small := len(c.dvals) <= 8
	for i, v := range c.num[:n] {
		if v != v {
			codes[i] = -1
			continue
		}
		bits := math.Float64bits(v)
		if small {
			for k, d := range c.dvals {
				if d == bits {
					codes[i] = int32(k)
					break
				}
			}
			continue
		}
		codes[i] = c.vals[bits]
	}
	return codes
}

// dropDict forgets the dictionary of a column that can only be numeric.
func (c *Column) dropDict() {
	c.dictOK, c.lazy = false, false
	c.codes, c.dict, c.index, c.vals, c.dvals, c.packed = nil, nil, nil, nil, nil, nil
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
// dictionary. For a numeric column the codes may be computed on each call.
func (c *Column) Text() (codes []int32, dict []string) {
	if c.lazy {
		return c.derivedCodes(len(c.num)), c.dict
	}
	return c.codes, c.dict
}

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
		if c.dictOK && !c.lazy {
			c.codes = append(c.codes, -1)
		}
		return nil
	}
	var v float64
	if c.numOK {
		var ok bool
		v, ok = ParseNumber(cell.Text)
		switch {
		case ok && math.IsNaN(v):
			// "NAN" and similar spellings not in pandas' list: missing.
			c.Missing++
			c.num = append(c.num, v)
			if c.dictOK && !c.lazy {
				c.codes = append(c.codes, -1)
			}
			return nil
		case ok:
			c.num = append(c.num, v)
		default:
			c.materialize(len(c.num))
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
				c.dropDict()
				return nil
			}
			// The caller's text may be reused.
			code = c.addText(strings.Clone(cell.Text), v)
		}
		if !c.lazy {
			c.codes = append(c.codes, code)
		}
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
