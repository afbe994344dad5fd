package contract

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// batchRows is the most records handed to the checker goroutines at once;
// wide tables get fewer rows per batch (batchCells / columns, at least 16)
// so that a batch's size does not grow with the number of columns.
const (
	batchRows  = 2048
	batchCells = 1 << 16
)

// batch is a block of records copied out of the reader's buffers.
type batch struct {
	n       int
	lines   []int64
	cells   []Cell // n rows of ncols cells
	arena   []byte
	offs    []int // start offset of each cell's Raw in arena
	pending atomic.Int32
}

// readResult is what the reading goroutine found besides the rows.
type readResult struct {
	rows, malformed int64
	examples        []Example
	err             error
}

// runPipeline reads src on one goroutine and runs the checkers on up to
// workers goroutines, each owning whole columns, so that a Cell (which
// caches its numeric value) is only touched by one goroutine. Every checker
// sees every row in order: results are identical to the sequential loop.
func runPipeline(ctx context.Context, src Source, checkers []checker, workers int, maxEx int) readResult {
	ncols := len(src.Columns())
	groups := columnGroups(checkers, workers)
	workers = len(groups)

	rows := min(batchRows, max(16, batchCells/max(ncols, 1)))
	free := make(chan *batch, workers+2)
	for range workers + 2 {
		free <- &batch{lines: make([]int64, rows), cells: make([]Cell, rows*ncols), offs: make([]int, rows*ncols)}
	}
	work, wait := startCheckers(groups, ncols,
		func(b *batch) ([]Cell, []int64) { return b.cells[:b.n*ncols], b.lines[:b.n] },
		func(b *batch) {
			if b.pending.Add(-1) == 0 {
				free <- b
			}
		})

	var res readResult
	rec := make([]Cell, ncols)
	send := func(b *batch) {
		for i, off := range b.offs[:b.n*ncols] {
			c := &b.cells[i]
			if c.Raw != nil {
				c.Raw = b.arena[off : off+len(c.Raw) : off+len(c.Raw)]
			}
		}
		b.pending.Store(int32(workers))
		for _, ch := range work {
			ch <- b
		}
	}
	b := <-free
	b.n, b.arena = 0, b.arena[:0]
	for n := 0; ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				res.err = err
				break
			}
		}
		line, err := src.Next(rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			re, ok := err.(*RowError)
			if !ok {
				res.err = fmt.Errorf("failed to read line %d: %w", line, err)
				break
			}
			res.malformed++
			if len(res.examples) < maxEx {
				res.examples = append(res.examples, Example{Line: re.Line, Note: re.Msg})
			}
			continue
		}
		res.rows++
		base := b.n * ncols
		b.lines[b.n] = line
		for i := range rec {
			b.cells[base+i] = rec[i]
			b.offs[base+i] = len(b.arena)
			b.arena = append(b.arena, rec[i].Raw...)
		}
		b.n++
		if b.n == rows {
			send(b)
			b = <-free
			b.n, b.arena = 0, b.arena[:0]
		}
	}
	if b.n > 0 {
		send(b)
	}
	for _, ch := range work {
		close(ch)
	}
	wait()
	return res
}

// startCheckers starts one goroutine per group of checkers. Each receives
// every batch sent on its channel, runs its checkers over the batch's rows
// (ncols cells each, with their line numbers) in order, then calls release
// with the batch. Close every channel, then call wait.
func startCheckers[B any](groups [][]checker, ncols int, rows func(B) ([]Cell, []int64), release func(B)) (work []chan B, wait func()) {
	var wg sync.WaitGroup
	work = make([]chan B, len(groups))
	for w, group := range groups {
		work[w] = make(chan B, 2)
		wg.Go(func() {
			for b := range work[w] {
				cells, lines := rows(b)
				for i, line := range lines {
					rec := cells[i*ncols : (i+1)*ncols]
					for _, c := range group {
						c.observe(rec, line)
					}
				}
				release(b)
			}
		})
	}
	return work, wg.Wait
}

// defaultWorkers is the number of checker goroutines Check uses when
// CheckOptions.Workers is 0: one per CPU beyond the reader's, at least 1.
func defaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }
