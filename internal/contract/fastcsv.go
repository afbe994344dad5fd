package contract

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// The parallel CSV path. The file is read in blocks of whole lines; while
// the blocks hold no quote character, a record is a line, so blocks are
// split into fields by several goroutines at once, each cell aliasing the
// block (no copy). Parsed blocks are put back in file order and handed to
// the checker goroutines exactly as the streaming pipeline does, so every
// checker still sees every row in order and the results are identical to
// the sequential reader's (TestParallelCSVMatchesSequential,
// FuzzParallelCSV). At the first block that holds a quote, or a line longer
// than a block, the rest of the input goes through the streaming reader
// (csvReader.Next), which handles quoted and multi-line records.

// csvBlockSize is the size of one block of lines (a variable so that tests
// can exercise block boundaries).
var csvBlockSize = 256 << 10

// pbatch is one block: its bytes, its parsed rows and what was malformed
// in it.
type pbatch struct {
	seq   int
	buf   []byte // the block (fast path) or copied cell text (slow path)
	data  []byte // the lines of the block to parse
	start int64  // line number of data's first line
	n     int
	lines []int64
	// cells holds n rows of ncols cells. The fast path stores only the
	// columns in keep (those the ordered checkers read); the others are
	// left as they were.
	cells []Cell
	keep  []int
	row   []Cell // the fast path's row being split
	offs  []int  // slow path: start of each cell's Raw in buf
	// malformed rows of this block, in order; examples up to the cap.
	malformed int64
	examples  []Example
	// parts are this batch's copies of the map checkers, run by the
	// goroutine that parses the batch; warm lists the columns whose
	// numeric view it computes for the ordered checkers.
	parts   []*mapChecker
	warm    []int
	pending atomic.Int32
}

// observe runs b's map-checker parts over one of its rows, and computes
// the numeric view (cached in the cell) of the warm columns.
func (b *pbatch) observe(row []Cell, line int64) {
	for _, p := range b.parts {
		p.observe(row, line)
	}
	for _, k := range b.warm {
		if c := &row[k]; c.Kind != KindNull {
			c.Float()
		}
	}
}

// parse splits b.data into records as csvReader.record and Next do for
// lines without quotes.
// setCell makes cl the field f: null (empty, or one of the null
// spellings when there are any) or text.
func (c *csvReader) setCell(cl *Cell, f []byte, nulls bool) {
	cl.numState = 0
	if len(f) == 0 && c.nullEmpty || nulls && c.isNull(f) {
		cl.Kind, cl.Raw = KindNull, nil
	} else {
		cl.Kind, cl.Raw = KindText, f
	}
}

func (c *csvReader) parse(b *pbatch, ncols, maxEx int) {
	b.n, b.malformed, b.examples = 0, 0, b.examples[:0]
	b.lines, b.cells = b.lines[:0], b.cells[:0]
	if len(b.row) != ncols {
		b.row = make([]Cell, ncols)
	}
	data := b.data
	checkUTF8 := !isASCII(data) && !utf8.Valid(data)
	// The streaming reader's bufio buffer holds max+1 bytes, at least 16.
	lineCap := max(c.max+1, 16) - 1
	sep := 0x0101010101010101 * uint64(c.comma)
	bad := func(line int64, msg string) {
		b.malformed++
		if len(b.examples) < maxEx {
			b.examples = append(b.examples, Example{Line: line, Note: msg})
		}
	}
	for line := b.start; len(data) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(l) > lineCap {
			bad(line, fmt.Sprintf("line longer than %d bytes", c.max))
			continue
		}
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(l) == 0 {
			continue
		}
		if checkUTF8 && !utf8.Valid(l) {
			bad(line, "invalid UTF-8")
			continue
		}
		// The row is split into b.row (in cache while the map checkers
		// look at it); only the cells the ordered checkers read are
		// stored in b.cells.
		row := b.row
		nf, start := 0, 0
		nulls := len(c.nulls) > 0
		// The separators are found eight bytes at a time (SWAR): x has a
		// zero byte where the word has the delimiter, and the exact
		// zero-byte test below sets the top bit of exactly those bytes
		// (no false positives, unlike (x-0x01..)&^x&0x80..). Words may
		// read past the line into the rest of the block; bits past the
		// line's end are masked off.
		for j := 0; j < len(l); j += 8 {
			var w uint64
			if j+8 <= cap(l) {
				w = binary.LittleEndian.Uint64(l[j : j+8])
			} else {
				for k := len(l) - 1; k >= j; k-- {
					w = w<<8 | uint64(l[k])
				}
			}
			x := w ^ sep
			m := ^((x & lo7) + lo7 | x | lo7)
			if rem := len(l) - j; rem < 8 {
				m &= 1<<(8*uint(rem)) - 1
			}
			for m != 0 {
				k := j + bits.TrailingZeros64(m)>>3
				m &= m - 1
				if nf < ncols {
					c.setCell(&row[nf], l[start:k:k], nulls)
				}
				nf++
				start = k + 1
			}
		}
		if nf < ncols {
			c.setCell(&row[nf], l[start:len(l):len(l)], nulls)
		}
		nf++
		if nf != ncols {
			bad(line, fmt.Sprintf("%d fields, header has %d", nf, ncols))
			continue
		}
		b.lines = append(b.lines, line)
		b.n++
		b.observe(row, line)
		if len(b.keep) > 0 {
			base := len(b.cells)
			if cap(b.cells)-base < ncols {
				b.cells = append(b.cells, make([]Cell, ncols)...)
			}
			b.cells = b.cells[:base+ncols]
			for _, k := range b.keep {
				b.cells[base+k] = row[k]
			}
		}
	}
}

// lo7 is 0x7f in every byte (the SWAR zero-byte test in parse).
const lo7 = 0x7f7f7f7f7f7f7f7f

// isASCII reports whether b has no byte >= 0x80, eight bytes at a time
// (valid UTF-8 then needs no further check).
func isASCII(b []byte) bool {
	var acc uint64
	for len(b) >= 32 {
		acc |= binary.LittleEndian.Uint64(b) | binary.LittleEndian.Uint64(b[8:]) |
			binary.LittleEndian.Uint64(b[16:]) | binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	for _, c := range b {
		acc |= uint64(c)
	}
	return acc&0x8080808080808080 == 0
}

// runCSVParallel is runPipeline for a csvReader, with the parallel path.
// The map checkers (a verdict per value, independent of the other values)
// run in the parsing goroutines, on the rows while they are in cache: each
// batch has its own copies, merged into the checkers in file order. The
// other checkers (uniqueness, aggregates, quantiles: state that depends on
// the order of the values) see every row in order on their own goroutines,
// as in runPipeline.
func runCSVParallel(ctx context.Context, c *csvReader, checkers []checker, workers int, maxEx int) readResult {
	ncols := len(c.cols)
	var split []*mapChecker
	var ordered []checker
	var warm []int
	for _, ch := range checkers {
		switch x := ch.(type) {
		case *mapChecker: // not the checkers that embed one, such as uniqueChecker
			split = append(split, x)
			continue
		case *aggChecker:
			warm = append(warm, x.col)
		case *quantileChecker:
			warm = append(warm, x.col)
		}
		ordered = append(ordered, ch)
	}
	slices.Sort(warm)
	warm = slices.Compact(warm)
	var groups [][]checker
	var keep []int
	if len(ordered) > 0 {
		groups = columnGroups(ordered, workers)
		for _, ch := range ordered {
			if col := ch.column(); col >= 0 {
				keep = append(keep, col)
			}
		}
		slices.Sort(keep)
		keep = slices.Compact(keep)
		if len(keep) == 0 {
			keep = []int{0} // the rows are still counted out to the checkers
		}
	}
	parsers := workers
	nbuf := parsers + len(groups) + 4
	free := make(chan *pbatch, nbuf)
	for range nbuf {
		b := &pbatch{warm: warm, keep: keep}
		for _, m := range split {
			b.parts = append(b.parts, m.part())
		}
		free <- b
	}
	parseCh := make(chan *pbatch, parsers)
	parsed := make(chan *pbatch, nbuf)
	work, waitCheckers := startCheckers(groups, ncols,
		func(b *pbatch) ([]Cell, []int64) { return b.cells[:b.n*ncols], b.lines[:b.n] },
		func(b *pbatch) {
			if b.pending.Add(-1) == 0 {
				free <- b
			}
		})
	var producers sync.WaitGroup
	for range parsers {
		producers.Go(func() {
			for b := range parseCh {
				c.parse(b, ncols, maxEx)
				parsed <- b
			}
		})
	}
	var readErr error
	producers.Go(func() {
		defer close(parseCh)
		readErr = c.readBlocks(ctx, free, parseCh, parsed, ncols, maxEx)
	})
	go func() {
		producers.Wait()
		close(parsed)
	}()

	// Put the blocks back in order, merge their map checkers' findings and
	// hand each to every ordered checker goroutine.
	var res readResult
	waiting := map[int]*pbatch{}
	next := 0
	deliver := func(b *pbatch) {
		res.rows += int64(b.n)
		res.malformed += b.malformed
		for _, e := range b.examples {
			if len(res.examples) < maxEx {
				res.examples = append(res.examples, e)
			}
		}
		for i, p := range b.parts {
			split[i].merge(p)
		}
		if b.n == 0 || len(work) == 0 {
			free <- b
			return
		}
		b.pending.Store(int32(len(work)))
		for _, ch := range work {
			ch <- b
		}
	}
	for b := range parsed {
		waiting[b.seq] = b
		for {
			nb, ok := waiting[next]
			if !ok {
				break
			}
			delete(waiting, next)
			next++
			deliver(nb)
		}
	}
	for _, ch := range work {
		close(ch)
	}
	waitCheckers()
	res.err = readErr
	return res
}

// readBlocks reads c's input in blocks of whole lines and sends them to be
// parsed; from the first block with a quote (or a line that does not fit a
// block) on, it reads records with the streaming reader and sends them
// already parsed.
func (c *csvReader) readBlocks(ctx context.Context, free chan *pbatch, parseCh, parsed chan<- *pbatch, ncols, maxEx int) error {
	src := io.Reader(c.lr.br)
	line := c.lr.line + 1 // line number of the next unread line
	var carry []byte
	seq := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := <-free
		if cap(b.buf) < csvBlockSize {
			b.buf = make([]byte, csvBlockSize)
		}
		buf := b.buf[:csvBlockSize]
		n := copy(buf, carry)
		eof := false
		for n < len(buf) && !eof {
			m, err := src.Read(buf[n:])
			n += m
			if err == io.EOF {
				eof = true
			} else if err != nil {
				return err
			}
		}
		data := buf[:n]
		end := len(data)
		if !eof {
			end = bytes.LastIndexByte(data, '\n') + 1
		}
		if end == 0 && len(data) > 0 || bytes.IndexByte(data[:end], '"') >= 0 {
			// A line longer than a block, or quotes: stream the rest.
			rest := append([]byte(nil), data...)
			c.lr = newLineReader(io.MultiReader(bytes.NewReader(rest), src), c.max)
			c.lr.line = line - 1
			return c.stream(ctx, b, free, parsed, seq, ncols, maxEx)
		}
		carry = append(carry[:0], data[end:]...)
		if end == 0 {
			free <- b
			return nil
		}
		b.seq, b.data, b.start = seq, data[:end], line
		seq++
		line += int64(bytes.Count(data[:end], []byte{'\n'}))
		parseCh <- b
		if eof && len(carry) == 0 {
			return nil
		}
	}
}

// stream reads the rest with csvReader.Next into batches of copied cells,
// numbered from seq on.
func (c *csvReader) stream(ctx context.Context, b *pbatch, free chan *pbatch, parsed chan<- *pbatch, seq, ncols, maxEx int) error {
	rows := min(batchRows, max(16, batchCells/max(ncols, 1)))
	rec := make([]Cell, ncols)
	reset := func(b *pbatch) {
		b.seq, b.n, b.malformed, b.examples = seq, 0, 0, b.examples[:0]
		b.buf, b.lines, b.cells, b.offs = b.buf[:0], b.lines[:0], b.cells[:0], b.offs[:0]
		seq++
	}
	send := func(b *pbatch) {
		for i, off := range b.offs {
			if cl := &b.cells[i]; cl.Raw != nil {
				cl.Raw = b.buf[off : off+len(cl.Raw) : off+len(cl.Raw)]
			}
		}
		for i, line := range b.lines {
			b.observe(b.cells[i*ncols:(i+1)*ncols], line)
		}
		parsed <- b
	}
	reset(b)
	for k := 0; ; k++ {
		if k&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := c.Next(rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			re, ok := err.(*RowError)
			if !ok {
				return fmt.Errorf("failed to read line %d: %w", line, err)
			}
			b.malformed++
			if len(b.examples) < maxEx {
				b.examples = append(b.examples, Example{Line: re.Line, Note: re.Msg})
			}
			continue
		}
		b.lines = append(b.lines, line)
		for _, cl := range rec {
			b.offs = append(b.offs, len(b.buf))
			b.buf = append(b.buf, cl.Raw...)
			b.cells = append(b.cells, cl)
		}
		b.n++
		if b.n == rows {
			send(b)
			b = <-free
			reset(b)
		}
	}
	send(b)
	return nil
}

// columnGroups assigns the checkers to at most workers groups by column,
// balancing their cost; checkers of one column share a group.
func columnGroups(checkers []checker, workers int) [][]checker {
	byCol := map[int][]checker{}
	var cols []int
	for _, c := range checkers {
		col := c.column()
		if _, ok := byCol[col]; !ok {
			cols = append(cols, col)
		}
		byCol[col] = append(byCol[col], c)
	}
	workers = max(1, min(workers, len(cols)))
	groups := make([][]checker, workers)
	load := make([]int, workers)
	for _, col := range cols {
		best := 0
		for w := range workers {
			if load[w] < load[best] {
				best = w
			}
		}
		groups[best] = append(groups[best], byCol[col]...)
		for _, c := range byCol[col] {
			load[best] += c.cost()
		}
	}
	return groups
}
