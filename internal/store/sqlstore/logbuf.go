package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/custody-ml/custody/internal/store"
)

// Log appends are buffered in the transaction and written in one go when it
// commits (or earlier, before the transaction reads the log tables).
//
// They are made late, too: the transparency log's hook defers its append
// ([store.Tx.Defer]) to the end of the transaction, so the head is locked
// only from then until the commit (with pipelining, the next group runs
// its functions meanwhile). The deferred functions run in order, before the
// kept appends are written: at the end, or when the transaction reads the
// log tables.
//
// The first LockLog of a transaction locks the log head (SELECT … FOR
// UPDATE) and reads its size and right edge; from then on the transaction
// owns the head until it ends, so later LockLogs and AppendLogs are
// answered from memory: the leaf index, the hashes and the
// new edge are computed by the caller as before, and kept here. flush writes
// every kept entry and hash and moves the head on, in one statement on
// PostgreSQL, with the head's size at lock time in the WHERE clause. A
// group of write functions sharing a transaction (group commit) thus takes
// the head lock once and writes the log once, however many entries its
// functions append.
//
// Savepoints: a function rolled back to its savepoint must take its appends
// with it, and, on PostgreSQL, the head lock too if it took it (a row lock
// taken after a savepoint is released by rolling back to it). mark and
// restore save and restore the state; flush never reuses the arrays a mark
// may still refer to.
type logBuf struct {
	locked  bool
	base    int64      // the head's size in the database
	size    int64      // the head's size with the kept appends
	edge    [][32]byte // the right edge with the kept appends; nil: unknown
	entries []logRow   // kept entries, in index order
	hashes  []logRow   // kept stored hashes

	events   []*store.Event // kept journal events (no Seq yet)
	numbered []*store.Event // kept journal events numbered, to be written by flush (PostgreSQL)
	deferred []func(ctx context.Context, tx store.Tx) error
	ran      int  // deferred functions already run
	settling bool // running them
}

type logRow struct {
	idx int64
	b   []byte
}

type logMark logBuf

func (l *logBuf) mark() logMark { return logMark(*l) }

func (l *logBuf) restore(m logMark) { *l = logBuf(m) }

func (t *tx) Defer(fn func(ctx context.Context, tx store.Tx) error) {
	t.log.deferred = append(t.log.deferred, fn)
}

// settle numbers (and, SQLite, writes) the kept journal events, runs the
// deferred functions not run yet, in order (including any they defer), and
// writes the kept log appends (PostgreSQL: and events). A deferred function
// that reads the log sees the appends made so far (those before it).
func (t *tx) settle(ctx context.Context) error {
	if l := t.log; !l.settling {
		l.settling = true
		defer func() { l.settling = false }()
		for {
			// The journal first: deferred functions may need the events'
			// numbers (the log's entries hold them).
			if err := t.writeEvents(ctx); err != nil {
				return err
			}
			if l.ran == len(l.deferred) {
				break
			}
			fn := l.deferred[l.ran]
			l.ran++
			if err := fn(ctx, t); err != nil {
				return err
			}
		}
	}
	if err := t.writeEvents(ctx); err != nil {
		return err
	}
	return t.flush(ctx)
}

func (t *tx) LockLog(ctx context.Context) (int64, [][32]byte, error) {
	if err := t.lockLog(ctx); err != nil {
		return 0, nil, err
	}
	return t.log.size, t.log.edge, nil
}

// reserveSeqs is the expression that reserves ? journal serial numbers
// (PostgreSQL), as a comma-separated list.
const reserveSeqs = "array_to_string(ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, ?)), ',')"

// parseSeqs parses n serial numbers listed by reserveSeqs, in increasing
// order.
func parseSeqs(list string, n int) ([]int64, error) {
	seqs := make([]int64, 0, n)
	for f := range strings.SplitSeq(list, ",") {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("failed to number journal events: serial number %q", f)
		}
		seqs = append(seqs, v)
	}
	if len(seqs) != n {
		return nil, fmt.Errorf("failed to number journal events: %d numbers for %d events", len(seqs), n)
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (t *tx) lockLog(ctx context.Context) error {
	_, err := t.lockLogSeqs(ctx, 0)
	return err
}

// lockLogSeqs locks the head, if this transaction has not yet, and
// reserves n journal serial numbers (PostgreSQL), in one statement when it
// can; the numbers come back in increasing order.
func (t *tx) lockLogSeqs(ctx context.Context, n int) ([]int64, error) {
	if t.log.locked {
		if n == 0 {
			return nil, nil
		}
		var list string
		if err := t.queryRow(ctx, "SELECT "+reserveSeqs, n).Scan(&list); err != nil {
			return nil, fmt.Errorf("failed to number journal events: %w", err)
		}
		return parseSeqs(list, n)
	}
	// The group before must have released the head: it would otherwise
	// wait for this transaction's lock, and this one for its end.
	<-t.prev
	var size int64
	var raw []byte
	var seqs []int64
	if n == 0 {
		if err := t.queryRow(ctx, "SELECT size, edge FROM log_head WHERE id = 1"+t.d.ForUpdate).Scan(&size, &raw); err != nil {
			return nil, fmt.Errorf("failed to lock the log: %w", err)
		}
	} else {
		var list string
		if err := t.queryRow(ctx, "SELECT size, edge, "+reserveSeqs+" FROM log_head WHERE id = 1"+t.d.ForUpdate, n).Scan(&size, &raw, &list); err != nil {
			return nil, fmt.Errorf("failed to lock the log: %w", err)
		}
		var err error
		if seqs, err = parseSeqs(list, n); err != nil {
			return nil, err
		}
	}
	var edge [][32]byte
	if raw != nil && len(raw)%32 == 0 { // otherwise no usable edge: the caller reads log_hashes
		edge = make([][32]byte, len(raw)/32)
		for i := range edge {
			copy(edge[i][:], raw[32*i:])
		}
	}
	l := t.log
	l.locked, l.base, l.size, l.edge = true, size, size, edge
	return seqs, nil
}

func edgeBytes(edge [][32]byte) []byte {
	if edge == nil {
		return nil
	}
	b := make([]byte, 0, 32*len(edge))
	for i := range edge {
		b = append(b, edge[i][:]...)
	}
	return b
}

func (t *tx) AppendLog(ctx context.Context, index int64, entry []byte, hashStart int64, hashes, edge [][32]byte) error {
	if err := t.lockLog(ctx); err != nil {
		return err
	}
	if index != t.log.size {
		return fmt.Errorf("log entry %d is not the next one (%d): %w", index, t.log.size, store.ErrExists)
	}
	t.keep(index, entry, hashStart, hashes, edge)
	return nil
}

func (t *tx) keep(index int64, entry []byte, hashStart int64, hashes, edge [][32]byte) {
	l := t.log
	l.entries = append(l.entries, logRow{index, entry})
	for i := range hashes {
		l.hashes = append(l.hashes, logRow{hashStart + int64(i), hashes[i][:]})
	}
	l.size = index + 1
	l.edge = edge
}

// maxLogRows bounds the rows of one INSERT (parameters: 2 per row; SQLite
// allows 32,766, PostgreSQL 65,535).
const maxLogRows = 8000

// flush writes the kept appends and moves the head on.
func (t *tx) flush(ctx context.Context) error {
	l := t.log
	if len(l.entries) == 0 && len(l.numbered) == 0 {
		return nil
	}
	if t.d.WritableCTE {
		if err := t.flushCTE(ctx); err != nil {
			return err
		}
	} else {
		first := l.entries[0].idx
		for _, tab := range []struct {
			name string
			rows []logRow
			col  string
		}{{"log_entries", l.entries, "entry"}, {"log_hashes", l.hashes, "hash"}} {
			for rows := tab.rows; len(rows) > 0; {
				n := min(len(rows), maxLogRows)
				q, args := insertRows(tab.name, tab.col, rows[:n])
				if err := t.insert(ctx, fmt.Sprintf("log entries %d-%d", first, l.size-1), q, args...); err != nil {
					return err
				}
				rows = rows[n:]
			}
		}
		res, err := t.exec(ctx, "UPDATE log_head SET size = ?, edge = ? WHERE id = 1 AND size = ?", l.size, edgeBytes(l.edge), l.base)
		if err != nil {
			return fmt.Errorf("failed to update the log size: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("log entry %d is not the next one: %w", first, store.ErrExists)
		}
	}
	// New arrays: a savepoint's mark may still refer to the old ones.
	l.base, l.entries, l.hashes, l.numbered = l.size, nil, nil, nil
	return nil
}

func insertRows(table, col string, rows []logRow) (string, []any) {
	var q strings.Builder
	q.WriteString("INSERT INTO " + table + " (idx, " + col + ") VALUES ")
	args := make([]any, 0, 2*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?)")
		args = append(args, r.idx, r.b)
	}
	return q.String(), args
}

// flushCTE is flush in one statement (PostgreSQL), the numbered journal
// events included. The rows go as arrays, so that the statement's text, and
// thus its prepared statement, is the same whatever their number. The
// head is locked (numbering events locks it too), so the statement moves
// it from the size locked, even with no log entries to write.
func (t *tx) flushCTE(ctx context.Context) error {
	l := t.log
	if !l.locked { // cannot happen: entries and numbers are kept under the lock
		return errors.New("internal error: log appends kept without the log's lock")
	}
	what := "journal events"
	if len(l.entries) > 0 {
		what = fmt.Sprintf("log entries %d-%d", l.entries[0].idx, l.size-1)
	}
	cols := func(rows []logRow) ([]int64, [][]byte) {
		idx, b := make([]int64, len(rows)), make([][]byte, len(rows))
		for i, r := range rows {
			idx[i], b[i] = r.idx, r.b
		}
		return idx, b
	}
	ei, eb := cols(l.entries)
	hi, hb := cols(l.hashes)
	n := len(l.numbered)
	seqs, ats := make([]int64, n), make([]int64, n)
	types, subjects, actors, payloads := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, e := range l.numbered {
		seqs[i], types[i], subjects[i], actors[i], ats[i], payloads[i] = e.Seq, e.Type, e.Subject, e.Actor, nanos(e.At), eventPayload(e)
	}
	blob := t.d.Blob
	res, err := t.exec(ctx, "WITH j AS (INSERT INTO events (seq, type, subject, actor, at, payload) SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[])))"+
		", e AS (INSERT INTO log_entries (idx, entry) SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS "+blob+"[])))"+
		", h AS (INSERT INTO log_hashes (idx, hash) SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS "+blob+"[])))"+
		" UPDATE log_head SET size = ?, edge = ? WHERE id = 1 AND size = ?",
		seqs, types, subjects, actors, ats, payloads, ei, eb, hi, hb, l.size, edgeBytes(l.edge), l.base)
	if err != nil {
		if t.d.IsUniqueViolation(err) {
			return fmt.Errorf("%s: %w", what, store.ErrExists)
		}
		return fmt.Errorf("failed to append %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%s: the log moved under its lock: %w", what, store.ErrExists)
	}
	return nil
}

// The log tables as the transaction sees them: its deferred and kept
// appends first.

func (t *tx) LogSize(ctx context.Context) (int64, error) {
	if err := t.settle(ctx); err != nil {
		return 0, err
	}
	return t.reader.LogSize(ctx)
}

func (t *tx) LogEntries(ctx context.Context, start int64, limit int) ([][]byte, error) {
	if err := t.settle(ctx); err != nil {
		return nil, err
	}
	return t.reader.LogEntries(ctx, start, limit)
}

func (t *tx) LogHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if err := t.settle(ctx); err != nil {
		return nil, err
	}
	return t.reader.LogHashes(ctx, indexes)
}
