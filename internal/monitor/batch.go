package monitor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// batchMaxBytes is the largest CSV file read whole by the parallel batch
// reader; larger files are streamed.
const batchMaxBytes = 2 << 30

// readCSVBatch reads a CSV file that has no quote characters by splitting
// it into chunks at line ends and parsing the chunks in parallel. It gives
// the same table as the streaming CSVSource (a property the fuzz test
// checks). ok is false when the file does not qualify (quotes, too large,
// or a column that needs the streaming reader's sequential dictionary),
// and the caller then streams it.
func readCSVBatch(ctx context.Context, path string, names, text []string) (t *Table, ok bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if st.Size() > batchMaxBytes || st.Size() == 0 {
		return nil, false, nil
	}
	// The parsed table keeps no reference to data (dictionary texts are
	// copied), so the mapping can go when parsing is done.
	data, release, err := mapFile(path)
	if err != nil {
		return nil, false, err
	}
	defer release()
	return parseCSVBatch(ctx, data, names, text, runtime.GOMAXPROCS(0))
}

func parseCSVBatch(ctx context.Context, data []byte, names, text []string, workers int) (*Table, bool, error) {
	if len(data) == 0 || bytes.IndexByte(data, '"') >= 0 {
		return nil, false, nil
	}
	// Header.
	nl := bytes.IndexByte(data, '\n')
	var hdr []byte
	if nl < 0 {
		hdr, data = data, nil
	} else {
		hdr, data = data[:nl], data[nl+1:]
	}
	hdr = bytes.TrimSuffix(hdr, []byte{'\r'})
	hdr = bytes.TrimPrefix(hdr, []byte("\ufeff"))
	header := strings.Split(string(hdr), ",")
	pos := map[string]int{}
	for i, h := range header {
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	if len(names) == 0 {
		names = header
	}
	var idx []int
	var cols []string
	seen := map[string]bool{}
	for _, n := range names {
		i, ok := pos[n]
		if !ok {
			return nil, true, fmt.Errorf("column %q: %w", n, ErrUnknownColumn)
		}
		if !seen[n] {
			seen[n] = true
			idx = append(idx, i)
			cols = append(cols, n)
		}
	}
	// Chunks at line boundaries.
	if workers < 1 {
		workers = 1
	}
	if len(data) < 1<<20 {
		workers = 1
	}
	var chunks [][]byte
	for w := workers; w > 0; w-- {
		if w == 1 || len(data) == 0 {
			chunks = append(chunks, data)
			break
		}
		cut := len(data) / w
		j := bytes.IndexByte(data[cut:], '\n')
		if j < 0 {
			chunks = append(chunks, data)
			break
		}
		chunks = append(chunks, data[:cut+j+1])
		data = data[cut+j+1:]
	}
	parts := make([][]*Column, len(chunks))
	lines := make([]int, len(chunks)) // lines per chunk, for error positions
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for c := range chunks {
		wg.Go(func() {
			parts[c], lines[c], errs[c] = parseChunk(ctx, chunks[c], cols, text, idx, len(header))
		})
	}
	wg.Wait()
	line := 1
	for c, err := range errs {
		if err != nil {
			if fe, ok := err.(*FormatError); ok {
				fe.Line += line
			}
			return nil, true, err
		}
		line += lines[c]
	}
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	t := &Table{Columns: parts[0]}
	for k, c := range t.Columns {
		var rows int
		for _, p := range parts[1:] {
			rows += int(p[k].Rows)
		}
		if c.numOK {
			c.num = slices.Grow(c.num, rows)
		}
		if c.dictOK {
			c.codes = slices.Grow(c.codes, rows)
		}
	}
	for _, p := range parts[1:] {
		for k, c := range p {
			if !t.Columns[k].appendColumn(c) {
				return nil, false, nil
			}
		}
	}
	if len(t.Columns) > 0 {
		t.Rows = t.Columns[0].Rows
	} else {
		for _, l := range lines {
			t.Rows += int64(l)
		}
	}
	return t, true, nil
}

// parseChunk parses complete lines of unquoted CSV.
func parseChunk(ctx context.Context, data []byte, names, text []string, idx []int, nfields int) ([]*Column, int, error) {
	cols := make([]*Column, len(names))
	for k, n := range names {
		if slices.Contains(text, n) {
			cols[k] = newTextColumn(n)
		} else {
			cols[k] = newColumn(n)
		}
	}
	// want[i] is the output column of field i, or -1.
	want := make([]int, nfields)
	for i := range want {
		want[i] = -1
	}
	for k, i := range idx {
		want[i] = k
	}
	// Reserve the rows up front: growing slices of 10^7 values by
	// doubling costs more than parsing them.
	if n := bytes.Count(data, []byte{'\n'}) + 1; n > 1024 {
		for _, c := range cols {
			if c.numOK {
				c.num = make([]float64, 0, n)
			}
			// Most numeric columns drop their codes after 1024 distinct
			// values: let the codes grow instead of zeroing n of them.
			c.codes = make([]int32, 0, min(n, 1<<16))
		}
	}
	got := make([]bool, len(cols))
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		if nl := bytes.IndexByte(data, '\n'); nl >= 0 {
			l, data = data[:nl], data[nl+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(l) == 0 {
			continue
		}
		if line&0xffff == 0 && ctx.Err() != nil {
			return nil, line, ctx.Err()
		}
		clear(got)
		f := 0
		for {
			j := bytes.IndexByte(l, ',')
			var fb []byte
			if j < 0 {
				fb = l
			} else {
				fb = l[:j]
			}
			if f >= nfields {
				return nil, line, &FormatError{Format: "csv", Line: line, Err: fmt.Errorf("more fields than the header's %d", nfields)}
			}
			if k := want[f]; k >= 0 {
				if err := cols[k].addBytes(fb); err != nil {
					return nil, line, err
				}
				got[k] = true
			}
			f++
			if j < 0 {
				break
			}
			l = l[j+1:]
		}
		for k, g := range got {
			if !g {
				if err := cols[k].add(Cell{Null: true}); err != nil {
					return nil, line, err
				}
			}
		}
	}
	return cols, line, nil
}

// addBytes adds an unquoted CSV field. The text is only copied when the
// column's dictionary keeps it, so numbers and known categories cost no
// allocation.
func (c *Column) addBytes(b []byte) error {
	if len(b) == 0 {
		return c.add(Cell{Null: true})
	}
	s := unsafe.String(&b[0], len(b))
	if c.numOK {
		// Plain decimals (no NA marker has this form) skip the generic path.
		if v, ok := parseDecimal(b); ok {
			if c.dictOK {
				code, ok := c.lookup(s)
				if !ok {
					return c.add(Cell{Text: s})
				}
				c.codes = append(c.codes, code)
			}
			c.Rows++
			c.num = append(c.num, v)
			return nil
		}
	}
	return c.add(Cell{Text: s, Null: IsNA(s)})
}

// lookup finds a dictionary code, scanning small dictionaries directly.
func (c *Column) lookup(s string) (int32, bool) {
	if len(c.dict) <= 8 {
		for i, v := range c.dict {
			if v == s {
				return int32(i), true
			}
		}
		return 0, false
	}
	code, ok := c.index[s]
	return code, ok
}

// pow10 are the powers of ten that float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal parses [-]digits[.digits] when the digits form an integer
// below 2^53 and there are at most 22 decimals: then m/10^k with both
// exact is one correctly rounded division, the same float64 as
// strconv.ParseFloat (Clinger's fast path). Anything else reports false
// and goes through ParseNumber.
func parseDecimal(b []byte) (float64, bool) {
	i := 0
	neg := false
	if b[0] == '-' {
		neg = true
		i = 1
	}
	var m uint64
	digits, frac := 0, -1
	for ; i < len(b); i++ {
		ch := b[i]
		switch {
		case ch >= '0' && ch <= '9':
			m = m*10 + uint64(ch-'0')
			digits++
			if frac >= 0 {
				frac++
			}
			if digits > 15 {
				return 0, false
			}
		case ch == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	v := float64(m)
	if frac > 0 {
		v /= pow10[frac]
	}
	if neg {
		v = -v
	}
	return v, true
}

// appendColumn appends the rows of o (parsed from a later chunk) to c. It
// reports false when the two cannot be combined exactly (one chunk lost
// its dictionary while the column turned out not to be numeric).
func (c *Column) appendColumn(o *Column) bool {
	numOK := c.numOK && o.numOK
	dictOK := c.dictOK && o.dictOK
	if !numOK && !dictOK {
		return false
	}
	if dictOK {
		remap := make([]int32, len(o.dict))
		for i, v := range o.dict {
			code, ok := c.index[v]
			if !ok {
				code = int32(len(c.dict))
				c.dict = append(c.dict, v)
				c.index[v] = code
			}
			remap[i] = code
		}
		for _, k := range o.codes {
			if k >= 0 {
				k = remap[k]
			}
			c.codes = append(c.codes, k)
		}
		if numOK && len(c.dict) > maxDictSize {
			dictOK = false
		}
	}
	if !dictOK {
		c.codes, c.dict, c.index = nil, nil, nil
	}
	if numOK {
		c.num = append(c.num, o.num...)
	} else {
		c.num = nil
	}
	c.numOK, c.dictOK = numOK, dictOK
	c.Rows += o.Rows
	c.Missing += o.Missing
	return true
}
