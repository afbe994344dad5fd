package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/custody-ml/custody/internal/monitor/stats"
)

// CalibrateFile is the calibration report of a file of predictions:
// CalibrateTable of the file's probability, label (and segment) columns.
//
// An unquoted CSV file whose probabilities are plain decimals and whose
// labels are the digits 0 and 1 (the usual export of a scoring job) takes a
// fast path that never builds the columns: it parses the file in parallel
// straight into a fine histogram of the scores and derives both binnings
// from it (see scanCalibCSV). Any other file, and any file the fast path
// finds something unusual in (a missing value, a probability outside
// [0, 1], a quote, another label), is read with ReadTableAs and reported by
// CalibrateTable, which also gives the errors with their line numbers. The
// two paths agree exactly on the rows, edges and counts, and on the sums up
// to the order of addition.
func CalibrateFile(ctx context.Context, path string, opts CalibrationOptions) (*CalibrationReport, error) {
	if rep, ok := calibrateCSVFast(ctx, path, opts); ok {
		return rep, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cols := []string{opts.ProbColumn, opts.LabelColumn}
	var text []string
	if opts.SegmentColumn != "" {
		cols = append(cols, opts.SegmentColumn)
		text = []string{opts.SegmentColumn}
	}
	t, err := ReadTableAs(ctx, path, cols, text)
	if err != nil {
		return nil, err
	}
	return CalibrateTable(t, opts)
}

// calibrateCSVFast is CalibrateFile's fast path; ok is false when the
// file does not qualify (then nothing is reported, errors included: the
// general path finds them again).
func calibrateCSVFast(ctx context.Context, path string, opts CalibrationOptions) (*CalibrationReport, bool) {
	if opts.Bins == 0 {
		opts.Bins = 10
	}
	if opts.Strategy == "" {
		opts.Strategy = StrategyUniform
	}
	if !strings.EqualFold(filepath.Ext(path), ".csv") || opts.SegmentColumn != "" || opts.Bins < 1 ||
		(opts.Strategy != StrategyUniform && opts.Strategy != StrategyQuantile) {
		return nil, false
	}
	pos, ok := fastPosLabel(opts.PosLabel)
	if !ok {
		return nil, false
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 || st.Size() > batchMaxBytes || !st.Mode().IsRegular() {
		return nil, false
	}
	data, release, err := mapFileLazy(path)
	if err != nil {
		return nil, false
	}
	defer release()
	workers := runtime.GOMAXPROCS(0)
	if len(data) < 1<<20 {
		workers = 1
	}
	sc, ok := scanCalibCSV(ctx, data, opts.ProbColumn, opts.LabelColumn, pos, workers, 1<<20)
	if !ok {
		return nil, false
	}
	c, ok := sc.calibrate(opts.Bins, opts.Strategy)
	if !ok {
		return nil, false
	}
	return &CalibrationReport{Input: path, ProbColumn: opts.ProbColumn, LabelColumn: opts.LabelColumn, Overall: c}, true
}

// fastPosLabel is the outcome (1 positive) of the labels 0 and 1 for a
// --pos-label as Outcomes reads it on a numeric column; ok is false when
// Outcomes would refuse it.
func fastPosLabel(posLabel string) (pos [2]uint64, ok bool) {
	if posLabel == "" {
		return [2]uint64{0, 1}, true
	}
	v, ok := ParseNumber(posLabel)
	if !ok {
		return pos, false
	}
	if v == 0 {
		pos[0] = 1
	}
	if v == 1 {
		pos[1] = 1
	}
	return pos, true
}

// calibScan is what one pass over a file of predictions keeps: per
// equal-width bucket of [0, 1] (calBucket) the number of rows, of
// positives and the sum of the scores, and the Brier sum; and per chunk of
// the file the bucket of every row and where every calibGroup-th row
// starts, so that the rows of the few buckets that have to be looked at
// row by row can be parsed again (see calibrate) without keeping every
// score: two bytes a row instead of eight.
type calibScan struct {
	rows   int64
	hist   []uint64  // per bucket: rows | positives<<32
	sums   []float64 // per bucket: sum of the scores
	brier  neumaierSum
	roles  []uint8
	pos    [2]uint64
	chunks []calibChunk
}

// calibChunk is one chunk of the file as the first pass saw it. Sums are
// kept per chunk and added in the order of the chunks, so that the result
// does not depend on which worker read which chunk.
type calibChunk struct {
	data  []byte
	ids   []uint16 // bucket of each row
	offs  []uint32 // where row k*calibGroup starts in data
	sums  []float64
	brier neumaierSum
}

// calibChunks is the number of chunks a large file is cut into (a
// function of its size only: see calibChunk).
const calibChunks = 32

// calibGroup rows are parsed again together when one of them is in a
// bucket looked at row by row.
const calibGroup = 16

// calibWorker is the state of one parsing worker.
type calibWorker struct {
	hist []uint64 // integers: the order of addition does not matter
	cur  *calibChunk
	part float64 // Brier terms not yet in cur.brier
}

func (w *calibWorker) addRow(p float64, y uint64) {
	b := calBucket(p)
	w.hist[b] += 1 | y<<32
	w.cur.sums[b] += p
	d := float64(y) - p
	w.part += d * d
	w.cur.ids = append(w.cur.ids, uint16(b))
	if len(w.cur.ids)%1024 == 0 {
		// Plain sums of 1024 terms in a compensated sum of those.
		w.cur.brier.add(w.part)
		w.part = 0
	}
}

// rowStart notes where a row starts, before it is parsed.
func (w *calibWorker) rowStart(i int) {
	if len(w.cur.ids)%calibGroup == 0 {
		w.cur.offs = append(w.cur.offs, uint32(i))
	}
}

// one is the bit pattern of 1.0: for a float64 x, x is in [+0, 1] exactly
// when its bits are at most one (negative numbers, -0 and NaN have larger
// bit patterns).
const one = 0x3FF0000000000000

// scanCalibCSV parses unquoted CSV data (header included) for the score
// and label columns, on workers goroutines taking chunks of at least
// minChunk bytes in turn. ok is false as soon as
// anything needs the general reader: quotes, a row with another number of
// fields than the header, a score that is not a plain decimal in [+0, 1],
// a label other than 0 or 1, no rows, or a cancelled ctx. Blank lines are
// skipped, as the general reader does.
func scanCalibCSV(ctx context.Context, data []byte, probName, labelName string, pos [2]uint64, workers, minChunk int) (*calibScan, bool) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, false // no rows
	}
	hdr, body := data[:nl], data[nl+1:]
	if bytes.IndexByte(hdr, '"') >= 0 {
		return nil, false
	}
	hdr = bytes.TrimSuffix(hdr, []byte{'\r'})
	hdr = bytes.TrimPrefix(hdr, []byte("\ufeff"))
	header := strings.Split(string(hdr), ",")
	ip, il := slices.Index(header, probName), slices.Index(header, labelName)
	if ip < 0 || il < 0 || ip == il {
		return nil, false
	}
	// role of each field: 1 score, 2 label, 0 skipped.
	roles := make([]uint8, len(header))
	roles[ip], roles[il] = 1, 2

	pieces := splitLines(body, calibChunks, minChunk)
	chunks := make([]calibChunk, len(pieces))
	// The chunks' buffers come from one allocation each (a chunk's window
	// grows apart only if its rows are shorter than guessed): the heap
	// grows in a few steps, so the collector runs once or twice, not at
	// every doubling.
	ids := make([]uint16, len(body)/12+16*len(pieces))
	offs := make([]uint32, len(ids)/calibGroup+len(pieces))
	sums := make([]float64, calBuckets*len(pieces))
	for c, data := range pieces {
		// About 13 bytes a row ("0.12345678,1\n").
		n, m := len(data)/12+16, len(data)/12/calibGroup+1
		chunks[c] = calibChunk{data: data, ids: ids[:0:n], offs: offs[:0:m], sums: sums[:calBuckets:calBuckets]}
		ids, offs, sums = ids[n:], offs[m:], sums[calBuckets:]
	}
	workers = min(max(workers, 1), len(pieces))
	var next atomic.Int64
	var bail atomic.Bool
	ws := make([]*calibWorker, workers)
	var wg sync.WaitGroup
	for w := range ws {
		wg.Go(func() {
			cw := &calibWorker{hist: make([]uint64, calBuckets)}
			ws[w] = cw
			for {
				c := int(next.Add(1) - 1)
				if c >= len(chunks) || bail.Load() {
					break
				}
				cw.cur, cw.part = &chunks[c], 0
				if ctx.Err() != nil || !cw.parse(pieces[c], roles, pos) {
					bail.Store(true)
					break
				}
				cw.cur.brier.add(cw.part)
			}
		})
	}
	wg.Wait()
	if bail.Load() {
		return nil, false
	}
	sc := &calibScan{hist: ws[0].hist, sums: chunks[0].sums, roles: roles, pos: pos, chunks: chunks}
	for _, w := range ws[1:] {
		for b := range sc.hist {
			sc.hist[b] += w.hist[b]
		}
	}
	for c, ch := range chunks {
		if c > 0 {
			for b, v := range ch.sums {
				sc.sums[b] += v
			}
		}
		sc.rows += int64(len(ch.ids))
		sc.brier.add(ch.brier.s)
		sc.brier.add(ch.brier.c)
	}
	if sc.rows == 0 {
		return nil, false
	}
	return sc, true
}

// splitLines cuts data into about n pieces of at least minSize bytes, each
// ending just after a '\n' (the last one at the end of data).
func splitLines(data []byte, n, minSize int) [][]byte {
	size := max(len(data)/max(n, 1), minSize)
	var out [][]byte
	for len(data) > size {
		j := bytes.IndexByte(data[size:], '\n')
		if j < 0 {
			break
		}
		out = append(out, data[:size+j+1])
		data = data[size+j+1:]
	}
	return append(out, data)
}

// parse reads the rows of a chunk of whole lines; false: see
// scanCalibCSV.
func (w *calibWorker) parse(data []byte, roles []uint8, pos [2]uint64) bool {
	if len(roles) == 2 && roles[0] == 1 {
		return w.parseScoreLabel(data, pos)
	}
	i := 0
	for {
		i = skipBlank(data, i)
		if i == len(data) {
			return true
		}
		w.rowStart(i)
		p, y, next, ok := parseRow(data, i, roles, pos)
		if !ok {
			return false
		}
		i = next
		w.addRow(p, y)
	}
}

// skipBlank skips blank lines ("\n", "\r\n", or a lone "\r" at the end),
// which are no rows for the general reader either.
func skipBlank(data []byte, i int) int {
	for i < len(data) {
		switch {
		case data[i] == '\n':
			i++
		case data[i] == '\r' && (i+1 == len(data) || data[i+1] == '\n'):
			i = min(i+2, len(data))
		default:
			return i
		}
	}
	return i
}

// parseRow reads the row starting at data[i] (not blank) and returns its
// score and outcome and where the next line starts.
func parseRow(data []byte, i int, roles []uint8, pos [2]uint64) (p float64, y uint64, next int, ok bool) {
	for f, role := range roles {
		switch role {
		case 1:
			p, i, ok = parseScore(data, i)
		case 2:
			y, i, ok = parseLabel(data, i, pos)
		default:
			i, ok = skipField(data, i)
		}
		if !ok {
			return 0, 0, i, false
		}
		if f < len(roles)-1 {
			if i >= len(data) || data[i] != ',' {
				return 0, 0, i, false
			}
			i++
		} else if i, ok = lineEnd(data, i); !ok {
			return 0, 0, i, false
		}
	}
	return p, y, i, true
}

// parseScoreLabel is parse for the layout "score,label", with the usual
// forms of both fields read inline (parseScore's first case, a label 0 or
// 1 before "\n"). Rows are parsed into a batch and then added (addBatch):
// two short loops instead of one long one, so that the processor overlaps
// the divisions and histogram updates of many rows.
func (w *calibWorker) parseScoreLabel(data []byte, pos [2]uint64) bool {
	var ps [calibBatch]float64
	var ys [calibBatch]uint64
	n := 0
	ids, offs := w.cur.ids, w.cur.offs
	defer func() { w.cur.ids, w.cur.offs = ids, offs }()
	i := 0
	for i < len(data) {
		if data[i] == '\n' || data[i] == '\r' {
			if i = skipBlank(data, i); i == len(data) {
				break
			}
		}
		if (len(ids)+n)%calibGroup == 0 {
			offs = append(offs, uint32(i))
		}
		var p float64
		j := -1
		if i+18 <= len(data) && data[i]-'0' <= 9 && data[i+1] == '.' {
			x := binary.LittleEndian.Uint64(data[i+2:])
			k := leadingDigits(x)
			m := uint64(data[i]-'0')*pow10u[k&15] + parseEight(x<<(8*(8-k))|0x3030303030303030>>(8*k))
			if k == 8 && data[i+10]-'0' <= 9 { // more than eight decimals
				x = binary.LittleEndian.Uint64(data[i+10:])
				k2 := leadingDigits(x)
				m = m*pow10u[k2&15] + parseEight(x<<(8*(8-k2))|0x3030303030303030>>(8*k2))
				k += k2
			}
			// At most 16 digits: m < 2^53 (scanDecimal's bound), and
			// m/10^k <= 1 exactly when its rounding is (above 1 it is at
			// least 1+10^-15): the range check needs no division.
			end := i + 2 + k // at most i+18
			if k > 0 && k < 16 && m <= pow10u[k] && data[end] == ',' {
				p, j = float64(int64(m))/pow10[k], end // one cvtsi2sd
			}
		}
		if j < 0 {
			var ok bool
			if p, j, ok = parseScore(data, i); !ok || j >= len(data) || data[j] != ',' {
				return false
			}
		}
		if j+1 == len(data) {
			return false // no label
		}
		var y uint64
		// The label: one digit 0 or 1 and the line end.
		if l := uint64(data[j+1] - '0'); l <= 1 && (j+2 == len(data) || data[j+2] == '\n') {
			y, i = pos[l], j+3
		} else {
			var ok bool
			if y, i, ok = parseLabel(data, j+1, pos); !ok {
				return false
			}
			if i, ok = lineEnd(data, i); !ok {
				return false
			}
		}
		ps[n], ys[n] = p, y
		if n++; n == calibBatch {
			ids = w.addBatch(ids, ps[:], ys[:])
			n = 0
		}
	}
	ids = w.addBatch(ids, ps[:n], ys[:n])
	return true
}

// calibBatch is the number of rows parseScoreLabel parses before adding
// them.
const calibBatch = 256

// addBatch adds rows (scores, outcomes) to the histogram and their buckets
// to ids.
func (w *calibWorker) addBatch(ids []uint16, ps []float64, ys []uint64) []uint16 {
	hist := (*[calBuckets]uint64)(w.hist)
	sums := (*[calBuckets]float64)(w.cur.sums)
	ys = ys[:len(ps)]
	ids = slices.Grow(ids, len(ps))
	part := 0.0
	for k, p := range ps {
		y := ys[k]
		b := min(uint(p*calBuckets), calBuckets-1)
		hist[b] += 1 | y<<32
		sums[b] += p
		d := float64(y) - p
		part += d * d
		ids = append(ids, uint16(b))
	}
	// Plain sums of a batch in a compensated sum of those.
	w.cur.brier.add(part)
	return ids
}

// lineEnd checks that data[i:] starts with a line end ("\n", "\r\n", or
// "\r" at the end of the data) or is empty, and returns where the next
// line starts.
func lineEnd(data []byte, i int) (int, bool) {
	switch {
	case i == len(data):
		return i, true
	case data[i] == '\n':
		return i + 1, true
	case data[i] == '\r' && (i+1 == len(data) || data[i+1] == '\n'):
		return min(i+2, len(data)), true // a lone "\r" at the very end too
	}
	return i, false
}

// skipField returns the end of the field at data[i:] (see skipTo); false
// when it holds a quote.
func skipField(data []byte, i int) (int, bool) {
	end := skipTo(data, i)
	return end, bytes.IndexByte(data[i:end], '"') < 0
}

// parseLabel reads a label field that is the number 0 or 1 ("1", "1.0",
// "1e0"; not "-0") and returns its outcome.
func parseLabel(data []byte, i int, pos [2]uint64) (uint64, int, bool) {
	v, end, ok := scanDecimal(data, i)
	if !ok {
		return 0, i, false
	}
	switch math.Float64bits(v) {
	case 0:
		return pos[0], end, true
	case one:
		return pos[1], end, true
	}
	return 0, i, false
}

// parseScore reads the score field at data[i:], a number in [+0, 1] as
// the general reader reads it (ParseNumber, which rounds correctly), and
// returns it with the end of the field (its ',', line end or the end of
// data). The usual form, one digit, a point and up to 15 more digits, is
// read eight digits at a time, and gives the same float64 as
// scanDecimal (m/10^k with m < 2^53, both exact: one correct rounding).
func parseScore(data []byte, i int) (float64, int, bool) {
	if i+18 <= len(data) && data[i]-'0' <= 9 && data[i+1] == '.' {
		x := binary.LittleEndian.Uint64(data[i+2:])
		k := leadingDigits(x)
		m := uint64(data[i] - '0')
		frac := k
		if k > 0 {
			m = m*pow10u[k] + parseEight(x<<(8*(8-k))|0x3030303030303030>>(8*k))
		}
		if k == 8 {
			y := binary.LittleEndian.Uint64(data[i+10:])
			k2 := leadingDigits(y)
			if k2 < 8 && k2 > 0 {
				m = m*pow10u[k2] + parseEight(y<<(8*(8-k2))|0x3030303030303030>>(8*k2))
			}
			frac += k2
		}
		end := i + 2 + frac // at most i+17 < len(data) when frac < 16
		if frac > 0 && frac < 16 && m <= 1<<53 && (data[end] == ',' || data[end] == '\n' || data[end] == '\r' && end+1 < len(data) && data[end+1] == '\n') {
			v := float64(m) / pow10[frac]
			if math.Float64bits(v) > one {
				return 0, i, false
			}
			return v, end, true
		}
	}
	// Anything else (exponents, 17 significant digits, spaces): the
	// general reader's own parse of the whole field.
	end := skipTo(data, i)
	if end == i {
		return 0, i, false
	}
	f := unsafe.String(&data[i], end-i)
	v, ok := ParseNumber(f)
	if !ok || math.Float64bits(v) > one || IsNA(f) {
		return 0, i, false
	}
	return v, end, true
}

// skipTo returns the end of the field at data[i:]: its ',', its line end
// ("\n", or a "\r" before "\n" or the end of data) or the end of data.
func skipTo(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch data[i] {
		case ',', '\n':
			return i
		case '\r':
			if i+1 == len(data) || data[i+1] == '\n' {
				return i
			}
		}
	}
	return i
}

// pow10u are the powers of ten up to 10^15 as integers.
var pow10u = [16]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// leadingDigits is the number of ASCII digits at the start (low bytes) of
// the eight bytes of x. A byte above 0xF9 may carry into the next byte's
// test, which only affects bytes after the first non-digit.
func leadingDigits(x uint64) int {
	const (
		hi    = 0xF0F0F0F0F0F0F0F0
		three = 0x3030303030303030
	)
	t := (x&hi ^ three) | ((x+0x0606060606060606)&hi ^ three) // zero bytes: digits
	nz := ((t&0x7F7F7F7F7F7F7F7F + 0x7F7F7F7F7F7F7F7F) | t) & 0x8080808080808080
	return bits.TrailingZeros64(nz) >> 3
}

// calibrate computes the calibration with the given bins; ok is false
// only when the quantile edges need the general path (see below).
//
// The buckets are equal-width and a score's bucket is a monotone function
// of the score, so a bucket that holds no bin edge (uniform) and no order
// statistic a quantile edge is made of lies wholly inside one bin: its
// counts and sum go to that bin as they are. Only the rows of the other
// buckets (a few per edge) are binned one by one, and the order
// statistics are found among the rows of their buckets.
func (sc *calibScan) calibrate(bins int, strategy string) (Calibration, bool) {
	n := int(sc.rows)
	counts := make([]int, calBuckets)
	start := make([]int, calBuckets+1) // rank of the first score of each bucket
	for b, h := range sc.hist {
		counts[b] = int(uint32(h))
		start[b+1] = start[b] + counts[b]
	}
	bucketOfRank := func(r int) int {
		return sort.Search(calBuckets, func(b int) bool { return start[b+1] > r })
	}

	// Uniform edges: the buckets holding an inner edge are looked at row by
	// row; any other bucket's bin is the number of edges below it.
	uniEdges := stats.Linspace(0, 1, bins+1)
	uniInner := uniEdges[1 : len(uniEdges)-1]
	const keepUni, keepQua = 1, 2
	keep := make([]uint8, calBuckets)
	uniBin := make([]int32, calBuckets)
	for _, e := range uniInner {
		keep[calBucket(e)] |= keepUni
	}
	k := 0
	for b := range uniBin {
		for k < len(uniInner) && calBucket(uniInner[k]) < b {
			k++
		}
		uniBin[b] = int32(k)
	}

	// Quantile edges: the buckets of the order statistics they are made of.
	qs := stats.Linspace(0, 1, bins+1)
	ranks := percentileRankSet(n, qs)
	slot := make([]int32, calBuckets) // kept quantile bucket -> index in kept
	for b := range slot {
		slot[b] = -1
	}
	var kept []int
	for _, r := range ranks {
		if b := bucketOfRank(r); slot[b] < 0 {
			slot[b] = int32(len(kept))
			kept = append(kept, b)
			keep[b] |= keepQua
		}
	}
	// quaBin[b], for a bucket holding none of the ranks: the number of inner
	// edges whose upper rank is below the bucket's first rank.
	inner := bins - 1
	upper := make([]int, inner)
	for i := range upper {
		_, upper[i] = percentileRanks(n, qs[i+1]*100)
	}
	quaBin := make([]int32, calBuckets)
	k = 0
	for b := range quaBin {
		for k < inner && upper[k] < start[b] {
			k++
		}
		quaBin[b] = int32(k)
	}

	// The rows of the kept buckets, parsed again (score bits, outcome in
	// the sign bit), in parallel; then, in the order of the chunks, uniform
	// ones are binned and quantile ones collected per bucket.
	again := make([][]uint64, len(sc.chunks))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(sc.chunks)) {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= len(sc.chunks) {
					return
				}
				ch := &sc.chunks[c]
				var out []uint64
				for g := 0; g < len(ch.ids); g += calibGroup {
					ids := ch.ids[g:min(g+calibGroup, len(ch.ids))]
					hit := uint8(0)
					for _, b := range ids {
						hit |= keep[b]
					}
					if hit == 0 {
						continue
					}
					i := int(ch.offs[g/calibGroup])
					for _, b := range ids {
						i = skipBlank(ch.data, i)
						p, y, next, ok := parseRow(ch.data, i, sc.roles, sc.pos)
						if !ok || calBucket(p) != int(b) {
							failed.Store(true) // cannot happen: the first pass read the same
							return
						}
						i = next
						if keep[b] != 0 {
							out = append(out, math.Float64bits(p)|y<<63)
						}
					}
				}
				again[c] = out
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		return Calibration{}, false
	}
	uni := newBinAcc(bins)
	rows := make([][]uint64, len(kept))
	for _, out := range again {
		for _, v := range out {
			p := math.Float64frombits(v &^ (1 << 63))
			b := calBucket(p)
			if keep[b]&keepUni != 0 {
				uni.add(uniformBinOf(uniInner, p), p, v>>63 != 0)
			}
			if keep[b]&keepQua != 0 {
				rows[slot[b]] = append(rows[slot[b]], v)
			}
		}
	}

	// The order statistics: sort the scores of a small kept bucket, select
	// the wanted ranks in a large one (scores piled on a few values).
	sorted := make([][]float64, len(kept))
	for s, b := range kept {
		x := make([]float64, len(rows[s]))
		for i, v := range rows[s] {
			x[i] = math.Float64frombits(v &^ (1 << 63))
		}
		if len(x) <= 1<<12 {
			slices.Sort(x)
		} else {
			var within []int
			for _, r := range ranks {
				if r >= start[b] && r < start[b+1] {
					within = append(within, r-start[b])
				}
			}
			selectRanks(x, 0, within)
		}
		sorted[s] = x
	}
	at := func(r int) float64 {
		b := bucketOfRank(r)
		return sorted[slot[b]][r-start[b]]
	}
	qEdges, ok := edgesBetweenRanks(n, qs, at)
	if !ok {
		return Calibration{}, false
	}
	qInner := qEdges[1 : len(qEdges)-1]
	qua := newBinAcc(bins)
	for s := range kept {
		for _, v := range rows[s] {
			p := math.Float64frombits(v &^ (1 << 63))
			qua.add(binOf(qInner, p), p, v>>63 != 0)
		}
	}
	// Whole buckets, in ascending order.
	for b, h := range sc.hist {
		c, t := int64(uint32(h)), int64(h>>32)
		if c == 0 {
			continue
		}
		if keep[b]&keepUni == 0 {
			k := uniBin[b]
			uni.counts[k] += c
			uni.trues[k] += t
			uni.sums[k] += sc.sums[b]
		}
		if keep[b]&keepQua == 0 {
			k := quaBin[b]
			qua.counts[k] += c
			qua.trues[k] += t
			qua.sums[k] += sc.sums[b]
		}
	}
	u, q := uni.result(uniEdges, n), qua.result(qEdges, n)
	c := Calibration{Rows: sc.rows, Strategy: strategy, Bins: bins, ECEEqualWidth: u.ece, ECEEqualMass: q.ece, Brier: Float(sc.brier.sum() / float64(n))}
	if strategy == StrategyUniform {
		c.ECE, c.MCE, c.Table = u.ece, u.mce, u.table
	} else {
		c.ECE, c.MCE, c.Table = q.ece, q.mce, q.table
	}
	return c, true
}
