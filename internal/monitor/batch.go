package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
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
	if len(data) == 0 {
		return nil, false, nil
	}
	// Header. Quotes anywhere send the file to the streaming reader; the
	// body is searched for them in parallel below.
	nl := bytes.IndexByte(data, '\n')
	var hdr []byte
	if nl < 0 {
		hdr, data = data, nil
	} else {
		hdr, data = data[:nl], data[nl+1:]
	}
	if bytes.IndexByte(hdr, '"') >= 0 {
		return nil, false, nil
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
	var colErr error // reported once the body is known to have no quotes
	seen := map[string]bool{}
	for _, n := range names {
		i, ok := pos[n]
		if !ok {
			colErr = fmt.Errorf("column %q: %w", n, ErrUnknownColumn)
			break
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
	// Count the lines of every chunk (an upper bound of its rows), so that
	// each numeric column is allocated once and every chunk parses straight
	// into its own window of it: no growing, no copying at the end.
	counts := make([]int, len(chunks))
	quoted := make([]bool, len(chunks))
	var wg sync.WaitGroup
	for c := range chunks {
		wg.Go(func() {
			quoted[c] = bytes.IndexByte(chunks[c], '"') >= 0
			if !quoted[c] {
				counts[c] = bytes.Count(chunks[c], []byte{'\n'}) + 1
			}
		})
	}
	wg.Wait()
	if slices.Contains(quoted, true) {
		return nil, false, nil
	}
	if colErr != nil {
		return nil, true, colErr
	}
	offs := make([]int, len(chunks)+1)
	for c, n := range counts {
		offs[c+1] = offs[c] + n
	}
	shared := make([][]float64, len(cols))
	for k, n := range cols {
		if !slices.Contains(text, n) {
			shared[k] = make([]float64, offs[len(chunks)])
		}
	}
	parts := make([][]*Column, len(chunks))
	lines := make([]int, len(chunks)) // lines per chunk, for error positions
	errs := make([]error, len(chunks))
	for c := range chunks {
		wg.Go(func() {
			win := make([][]float64, len(cols))
			for k := range cols {
				if shared[k] != nil {
					win[k] = shared[k][offs[c]:offs[c]:offs[c+1]]
				}
			}
			parts[c], lines[c], errs[c] = parseChunk(ctx, chunks[c], cols, text, idx, len(header), win)
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
	t := &Table{Columns: make([]*Column, len(cols))}
	for k := range cols {
		col := make([]*Column, len(parts))
		for c := range parts {
			col[c] = parts[c][k]
		}
		var ok bool
		if t.Columns[k], ok = mergeColumns(col, shared[k]); !ok {
			return nil, false, nil
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

// mergeColumns joins the parts of one column parsed from consecutive
// chunks. The numbers of part c are at the start of its window of shared
// (see parseCSVBatch); they are moved together only when a chunk had blank
// lines. It reports false when the parts cannot be combined exactly (one
// chunk lost its dictionary while the column turned out not to be
// numeric).
func mergeColumns(parts []*Column, shared []float64) (*Column, bool) {
	c := parts[0]
	numOK, dictOK, lazy := true, true, true
	for _, p := range parts {
		numOK, dictOK, lazy = numOK && p.numOK, dictOK && p.dictOK, lazy && p.lazy
	}
	if dictOK && lazy {
		// Still lazy if no two texts of the union have the same number.
		text := map[uint64]string{}
		for _, p := range parts {
			for i, bits := range p.dvals {
				if t, ok := text[bits]; ok && t != p.dict[i] {
					lazy = false
				}
				text[bits] = p.dict[i]
			}
		}
	}
	if dictOK && !lazy {
		for _, p := range parts {
			p.materialize(len(p.num)) // while p.num is its own window
		}
	}
	if numOK {
		// Close the gaps left by blank lines.
		n := len(c.num)
		for _, p := range parts[1:] {
			if len(p.num) > 0 && &p.num[0] != &shared[n] {
				copy(shared[n:], p.num)
			}
			n += len(p.num)
		}
		c.num = shared[:n:n]
	}
	for _, p := range parts[1:] {
		p.num = nil // already in c.num
		if !c.appendColumn(p, numOK) {
			return nil, false
		}
	}
	if !numOK {
		c.num = nil
	}
	c.numOK = numOK
	return c, true
}

// parseChunk parses complete lines of unquoted CSV. The numbers of column
// k are appended to win[k] (when not nil), which has room for every line.
func parseChunk(ctx context.Context, data []byte, names, text []string, idx []int, nfields int, win [][]float64) ([]*Column, int, error) {
	cols := make([]*Column, len(names))
	for k, n := range names {
		if slices.Contains(text, n) {
			cols[k] = newTextColumn(n)
		} else {
			cols[k] = newColumn(n)
			cols[k].num = win[k]
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
	line := 0
	pos := 0
	for pos < len(data) {
		line++
		// Blank line ("\n", "\r\n", or a lone "\r" at the end).
		switch {
		case data[pos] == '\n':
			pos++
			continue
		case data[pos] == '\r' && (pos+1 == len(data) || data[pos+1] == '\n'):
			pos += 2
			continue
		}
		if line&0xffff == 0 && ctx.Err() != nil {
			return nil, line, ctx.Err()
		}
		f := 0
		for {
			if f >= nfields {
				return nil, line, &FormatError{Format: "csv", Line: line, Err: fmt.Errorf("more fields than the header's %d", nfields)}
			}
			k := want[f]
			f++
			// Fast path: a plain decimal number directly followed by the
			// end of the field.
			if k >= 0 && cols[k].numOK {
				// One digit and a comma or "\n": labels, flags.
				if pos+1 < len(data) && data[pos]-'0' <= 9 && (data[pos+1] == ',' || data[pos+1] == '\n') {
					if err := cols[k].addNumber(data[pos:pos+1], float64(data[pos]-'0')); err != nil {
						return nil, line, err
					}
					pos += 2
					if data[pos-1] == ',' {
						continue
					}
					break
				}
				if v, end, ok := scanDecimal(data, pos); ok {
					term, next, ok := fieldEnd(data, end)
					if ok {
						if err := cols[k].addNumber(data[pos:end], v); err != nil {
							return nil, line, err
						}
						pos = next
						if term == ',' {
							continue
						}
						break
					}
				}
			}
			// General field: up to the next comma or the line end, with
			// one "\r" before the line end dropped.
			nl := bytes.IndexByte(data[pos:], '\n')
			var l []byte
			if nl < 0 {
				l = data[pos:]
			} else {
				l = data[pos : pos+nl]
			}
			lineEnd := pos + len(l) + 1 // after the '\n'
			l = bytes.TrimSuffix(l, []byte{'\r'})
			j := bytes.IndexByte(l, ',')
			fb := l
			if j >= 0 {
				fb = l[:j]
			}
			if k >= 0 {
				if err := cols[k].addBytes(fb); err != nil {
					return nil, line, err
				}
			}
			if j < 0 {
				pos = lineEnd
				break
			}
			pos += j + 1
		}
		// Fields missing at the end of the row.
		for k, i := range idx {
			if i >= f {
				if err := cols[k].add(Cell{Null: true}); err != nil {
					return nil, line, err
				}
			}
		}
	}
	return cols, line, nil
}

// fieldEnd looks at what follows a number ending at data[i]: a comma
// (term ','), a line end "\n", "\r\n" or the end of the data (term '\n').
// next is where the following field or line starts. ok is false when the
// field goes on.
func fieldEnd(data []byte, i int) (term byte, next int, ok bool) {
	if i == len(data) {
		return '\n', i, true
	}
	switch data[i] {
	case ',':
		return ',', i + 1, true
	case '\n':
		return '\n', i + 1, true
	case '\r':
		if i+1 == len(data) {
			return '\n', i + 1, true
		}
		if data[i+1] == '\n' {
			return '\n', i + 2, true
		}
	}
	return 0, 0, false
}

// addBytes adds an unquoted CSV field. The text is only copied when the
// column's dictionary keeps it, so numbers and known categories cost no
// allocation.
func (c *Column) addBytes(b []byte) error {
	if len(b) == 0 {
		return c.add(Cell{Null: true})
	}
	if c.numOK {
		// Plain decimals (no NA marker has this form) skip the generic path.
		if v, ok := parseDecimal(b); ok {
			return c.addNumber(b, v)
		}
	}
	s := unsafe.String(&b[0], len(b))
	return c.add(Cell{Text: s, Null: IsNA(s)})
}

// addNumber adds a field b (not empty) of a numeric column whose number v
// is already known (see scanDecimal).
func (c *Column) addNumber(b []byte, v float64) error {
	if c.dictOK {
		code, ok := c.lookup(b)
		if !ok {
			return c.add(Cell{Text: unsafe.String(&b[0], len(b))})
		}
		if !c.lazy {
			c.codes = append(c.codes, code)
		}
	}
	c.Rows++
	c.num = append(c.num, v)
	return nil
}

// pow10 are the powers of ten that float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// eightDigits reports whether the eight bytes of x (little endian) are
// all ASCII digits.
func eightDigits(x uint64) bool {
	return (x&0xF0F0F0F0F0F0F0F0)|(((x+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4) == 0x3333333333333333
}

// parseEight is the value of eight ASCII digits, the first in the low
// byte of x (SWAR: pairs, then quadruples, then the whole).
func parseEight(x uint64) uint64 {
	x -= 0x3030303030303030
	x = x*10 + x>>8
	x = ((x&0x000000FF000000FF)*(100+(1000000<<32)) + (x>>16&0x000000FF000000FF)*(1+(10000<<32))) >> 32
	return x
}

// parseDecimal is scanDecimal of a whole field.
func parseDecimal(b []byte) (float64, bool) {
	v, end, ok := scanDecimal(b, 0)
	return v, ok && end == len(b)
}

// scanDecimal parses the number at data[i:] of the form
// [-]digits[.digits][(e|E)[+|-]digits] and returns it with the index just
// past it. It only reports ok when the digits form an integer m of at most
// 2^53 and the decimal exponent e is within [-22, 22]: then m*10^e or
// m/10^-e, both operands exact, is one correctly rounded operation, the
// same float64 as strconv.ParseFloat (Clinger's fast path). The caller
// checks that the field ends at the returned index; anything else goes
// through ParseNumber.
func scanDecimal(data []byte, i int) (v float64, end int, ok bool) {
	if i >= len(data) {
		return 0, i, false
	}
	neg := false
	if data[i] == '-' {
		neg = true
		i++
	}
	var m uint64
	digits, frac := 0, 0
	// Eight digits at a time while there are (m may wrap around when
	// there are more than 19 digits, which is then refused anyway).
	for i+8 <= len(data) {
		x := binary.LittleEndian.Uint64(data[i:])
		if !eightDigits(x) {
			break
		}
		m = m*100000000 + parseEight(x)
		digits += 8
		i += 8
	}
	for ; i < len(data); i++ {
		d := data[i] - '0'
		if d > 9 {
			break
		}
		m = m*10 + uint64(d)
		digits++
	}
	if i < len(data) && data[i] == '.' {
		i++
		f0 := i
		for i+8 <= len(data) {
			x := binary.LittleEndian.Uint64(data[i:])
			if !eightDigits(x) {
				break
			}
			m = m*100000000 + parseEight(x)
			i += 8
		}
		for ; i < len(data); i++ {
			d := data[i] - '0'
			if d > 9 {
				break
			}
			m = m*10 + uint64(d)
		}
		frac = i - f0
		digits += frac
	}
	if digits == 0 || digits > 19 || m > 1<<53 {
		return 0, i, false
	}
	exp := -frac
	if i < len(data) && data[i]|0x20 == 'e' {
		i++
		eneg := false
		if i < len(data) && (data[i] == '-' || data[i] == '+') {
			eneg = data[i] == '-'
			i++
		}
		e, ed := 0, 0
		for ; i < len(data); i++ {
			d := data[i] - '0'
			if d > 9 {
				break
			}
			e = e*10 + int(d)
			ed++
			if ed > 3 {
				return 0, i, false
			}
		}
		if ed == 0 {
			return 0, i, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	v = float64(m)
	switch {
	case m == 0:
	case exp >= 0 && exp <= 22:
		v *= pow10[exp]
	case exp < 0 && exp >= -22:
		v /= pow10[-exp]
	default:
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// appendColumn appends the dictionary, codes and counts of o (parsed from
// a later chunk) to c; the numbers are merged by mergeColumns. numOK says
// whether the merged column is numeric. Both are lazy or neither is (see
// mergeColumns). It reports false when the two cannot be combined exactly
// (one chunk lost its dictionary while the column turned out not to be
// numeric).
func (c *Column) appendColumn(o *Column, numOK bool) bool {
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
				c.packed = append(c.packed, o.packed[i])
				if c.lazy {
					c.vals[o.dvals[i]] = code
					c.dvals = append(c.dvals, o.dvals[i])
				}
			}
			remap[i] = code
		}
		if !c.lazy {
			for _, k := range o.codes {
				if k >= 0 {
					k = remap[k]
				}
				c.codes = append(c.codes, k)
			}
		}
		if numOK && len(c.dict) > maxDictSize {
			dictOK = false
		}
	}
	if !dictOK {
		c.dropDict()
	}
	c.Rows += o.Rows
	c.Missing += o.Missing
	return true
}
