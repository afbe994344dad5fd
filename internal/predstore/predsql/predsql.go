// Package predsql stores predictions in SQL: an embedded SQLite database
// file of its own (OpenSQLite) or tables in the server's PostgreSQL
// database (OpenPostgres). Both share this code.
//
// # Group commit
//
// One writer goroutine owns every write. Append, Label and DeleteBefore
// enqueue a job and wait; the writer takes the first job, drains whatever
// else is queued (up to [Options.MaxGroup] records), runs all of them in
// ONE transaction, commits it (SQLite: WAL with synchronous=FULL, one
// fsync; PostgreSQL: synchronous_commit as configured, by default a WAL
// flush) and only then wakes the waiting callers. Under load, hundreds of
// HTTP requests share one fsync; an idle server commits a lone request at
// once (no timer).
//
// # Schema
//
//	predictions(id serial, request_id UNIQUE, ts (Unix ns), model, version,
//	            digest ("sha256:<hex>"), chash (16-byte content hash),
//	            doc (JSON: features, prediction, segment, latency_ms))
//	  index (model, ts)          -- export and retention
//	prediction_labels(request_id PRIMARY KEY, label (JSON), ts (Unix ns))
//	prediction_models(model PRIMARY KEY)  -- models that have records
//	prediction_schema(version)            -- this package's migrations
//
// The tables are this package's own: in PostgreSQL they sit beside the
// registry's tables but are migrated by this package (prediction_schema),
// not by sqlstore, so the registry's migration list stays about the
// registry and the two can evolve (and be moved to another database)
// independently.
package predsql

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
)

// Options tune a store.
type Options struct {
	// MaxGroup caps the records committed in one transaction (default
	// 50,000). A single call larger than that is still committed whole.
	MaxGroup int
	// OnCommit, if set, is called by the writer after each commit with
	// the number of records and labels written and the time the
	// transaction took (metrics hook).
	OnCommit func(records int, d time.Duration)
}

type dialect struct {
	name     string
	numbered bool // $1 placeholders
	serial   string
	blob     string
	// maxRows is the number of rows per multi-row INSERT.
	maxRows int
	// insertIgnore and onConflict spell "insert unless the request id is
	// taken". SQLite's INSERT OR IGNORE cannot abort half-way, so it
	// needs no statement journal (measured: 9% of the writer's CPU went
	// to journaling pages for ON CONFLICT DO NOTHING, whose NOT NULL
	// checks could abort).
	insertIgnore, onConflict string
	// returning: inserts say which rows they inserted (RETURNING).
	returning bool
}

// DB is a prediction store over database/sql.
type DB struct {
	db   *sql.DB
	d    dialect
	opts Options
	jobs chan *job
	quit chan struct{}
	done chan struct{}
	// mu orders submissions before Close: once closed is set no job is
	// queued, so the writer's final drain sees every queued job.
	mu     sync.RWMutex
	closed bool
	// insertFull is the prepared insert of maxRows records (writer only).
	insertFull *sql.Stmt
}

type jobKind int

const (
	jobAppend jobKind = iota
	jobLabel
	jobDelete
)

type job struct {
	kind jobKind
	recs []predstore.Record
	// args holds the insert's arguments, insertCols per record, built by
	// the caller's goroutine so that the writer only binds them.
	args   []any
	hashes [][16]byte
	labels []predstore.Label
	model  string
	before time.Time

	out     []predstore.Outcome
	deleted int64
	err     error
	done    chan struct{}
}

var errClosed = errors.New("prediction store is closed")

// body is what the doc column holds: the record's fields that have no
// column of their own.
type body struct {
	Features   json.RawMessage `json:"features,omitempty"`
	Prediction json.RawMessage `json:"prediction"`
	Segment    json.RawMessage `json:"segment,omitempty"`
	LatencyMS  *float64        `json:"latency_ms,omitempty"`
}

// encodeBody is json.Marshal(body{...}) without reflection: the parts are
// JSON already (checked here, compacted only if needed).
func encodeBody(r *predstore.Record) ([]byte, error) {
	b := make([]byte, 0, 48+len(r.Features)+len(r.Prediction)+len(r.Segment))
	part := func(key string, v json.RawMessage) error {
		if len(v) == 0 {
			return nil
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, key...)
		if !json.Valid(v) {
			return fmt.Errorf("%s is not JSON", key)
		}
		if bytes.ContainsAny(v, " \t\r\n") {
			var c bytes.Buffer
			json.Compact(&c, v)
			v = c.Bytes()
		}
		b = append(b, v...)
		return nil
	}
	b = append(b, '{')
	if err := part(`"features":`, r.Features); err != nil {
		return nil, err
	}
	if len(r.Prediction) == 0 {
		return nil, errors.New("no prediction")
	}
	if err := part(`"prediction":`, r.Prediction); err != nil {
		return nil, err
	}
	if err := part(`"segment":`, r.Segment); err != nil {
		return nil, err
	}
	if r.LatencyMS != nil {
		lat, err := json.Marshal(*r.LatencyMS)
		if err != nil {
			return nil, err
		}
		if err := part(`"latency_ms":`, lat); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// contentHash identifies a record's content for idempotence: SHA-256 over
// the columns and the doc, truncated to 16 bytes.
func contentHash(r *predstore.Record, doc []byte) [16]byte {
	h := sha256.New()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(r.TS.UnixNano()))
	h.Write(ts[:])
	for _, s := range []string{r.RequestID, r.Model, r.Version, r.Digest} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(doc)
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

func open(ctx context.Context, db *sql.DB, d dialect, opts Options, lock string) (*DB, error) {
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 50_000
	}
	s := &DB{db: db, d: d, opts: opts, jobs: make(chan *job, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	if err := s.migrate(ctx, lock); err != nil {
		return nil, err
	}
	go s.writer()
	return s, nil
}

// ph returns the i-th (0-based) placeholder.
func (s *DB) ph(i int) string {
	if s.d.numbered {
		return "$" + strconv.Itoa(i+1)
	}
	return "?"
}

// Close stops the writer (after the queued jobs) and closes the database.
func (s *DB) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.mu.Unlock()
	<-s.done
	if s.insertFull != nil {
		s.insertFull.Close()
	}
	return s.db.Close()
}

func (s *DB) submit(ctx context.Context, j *job) error {
	j.done = make(chan struct{})
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	select {
	case s.jobs <- j:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, the job runs: wait for it even if ctx ends, so the
	// caller never reports failure for a write that then commits.
	<-j.done
	return j.err
}

// Append implements predstore.Store.
func (s *DB) Append(ctx context.Context, recs []predstore.Record) ([]predstore.Outcome, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	j := &job{kind: jobAppend, recs: recs, hashes: make([][16]byte, len(recs)), args: make([]any, 0, insertCols*len(recs))}
	var model, version, digest any
	for i := range recs {
		if recs[i].RequestID == "" {
			return nil, fmt.Errorf("record %d has no request id", i)
		}
		r := &recs[i]
		r.TS = r.TS.UTC()
		doc, err := encodeBody(r)
		if err != nil {
			return nil, fmt.Errorf("failed to encode record %d: %w", i, err)
		}
		j.hashes[i] = contentHash(r, doc)
		if i == 0 || r.Model != recs[i-1].Model || r.Version != recs[i-1].Version || r.Digest != recs[i-1].Digest {
			model, version, digest = r.Model, r.Version, r.Digest // boxed once per run of equal values
		}
		j.args = append(j.args, r.RequestID, r.TS.UnixNano(), model, version, digest, j.hashes[i][:], string(doc))
	}
	if err := s.submit(ctx, j); err != nil {
		return nil, err
	}
	return j.out, nil
}

// Label implements predstore.Store.
func (s *DB) Label(ctx context.Context, labels []predstore.Label) ([]predstore.Outcome, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	j := &job{kind: jobLabel, labels: labels}
	if err := s.submit(ctx, j); err != nil {
		return nil, err
	}
	return j.out, nil
}

// DeleteBefore implements predstore.Store. It deletes in chunks, each its
// own writer job, so that ingestion is never held up for long.
func (s *DB) DeleteBefore(ctx context.Context, model string, t time.Time) (int64, error) {
	var total int64
	for {
		j := &job{kind: jobDelete, model: model, before: t}
		if err := s.submit(ctx, j); err != nil {
			return total, err
		}
		total += j.deleted
		if j.deleted < deleteChunk {
			return total, nil
		}
	}
}

const deleteChunk = 10_000

func (s *DB) writer() {
	defer close(s.done)
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-s.quit:
			// Drain what was queued before Close.
			for {
				select {
				case j := <-s.jobs:
					s.commit([]*job{j})
				default:
					return
				}
			}
		}
		group := []*job{first}
		n := len(first.recs) + len(first.labels)
	drain:
		for n < s.opts.MaxGroup {
			select {
			case j := <-s.jobs:
				group = append(group, j)
				n += len(j.recs) + len(j.labels)
			default:
				break drain
			}
		}
		s.commit(group)
	}
}

// commit runs a group of jobs in one transaction. If the transaction
// fails as a whole, each job is retried alone so that one bad job does
// not fail the others.
func (s *DB) commit(group []*job) {
	start := time.Now()
	err := s.runTx(group)
	if err != nil && len(group) > 1 {
		for _, j := range group {
			j.out, j.deleted = nil, 0
			j.err = s.runTx([]*job{j})
			close(j.done)
		}
		return
	}
	n := 0
	for _, j := range group {
		n += len(j.recs) + len(j.labels)
	}
	if err == nil && s.opts.OnCommit != nil {
		s.opts.OnCommit(n, time.Since(start))
	}
	for _, j := range group {
		if err != nil {
			j.out, j.deleted = nil, 0
			j.err = err
		}
		close(j.done)
	}
}

func (s *DB) runTx(group []*job) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to begin: %w", err)
	}
	defer tx.Rollback()
	n := 0
	for _, j := range group {
		n += len(j.recs) + len(j.labels)
	}
	seen := make(map[string][16]byte, n) // request ids written or found in this transaction
	models := map[string]bool{}
	for _, j := range group {
		switch j.kind {
		case jobAppend:
			err = s.appendTx(ctx, tx, j, seen, models)
		case jobLabel:
			err = s.labelTx(ctx, tx, j, seen)
		case jobDelete:
			err = s.deleteTx(ctx, tx, j)
		}
		if err != nil {
			return err
		}
	}
	if len(models) > 0 {
		var b strings.Builder
		args := make([]any, 0, len(models))
		b.WriteString("INSERT INTO prediction_models(model) VALUES ")
		for m := range models {
			if len(args) > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(" + s.ph(len(args)) + ")")
			args = append(args, m)
		}
		b.WriteString(" ON CONFLICT (model) DO NOTHING")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("failed to record models: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to commit: %w", err)
	}
	return nil
}

func (s *DB) appendTx(ctx context.Context, tx *sql.Tx, j *job, seen map[string][16]byte, models map[string]bool) error {
	j.out = make([]predstore.Outcome, len(j.recs))
	var fresh []int // indexes to insert
	for i := range j.recs {
		id := j.recs[i].RequestID
		if h, ok := seen[id]; ok {
			if h == j.hashes[i] {
				j.out[i] = predstore.Duplicate
			} else {
				j.out[i] = predstore.Conflict
			}
			continue
		}
		seen[id] = j.hashes[i]
		fresh = append(fresh, i)
	}
	for len(fresh) > 0 {
		chunk := fresh[:min(len(fresh), s.d.maxRows)]
		fresh = fresh[len(chunk):]
		var args []any
		if first, last := chunk[0], chunk[len(chunk)-1]; last-first == len(chunk)-1 {
			args = j.args[first*insertCols : (last+1)*insertCols]
		} else {
			args = make([]any, 0, len(chunk)*insertCols)
			for _, i := range chunk {
				args = append(args, j.args[i*insertCols:(i+1)*insertCols]...)
			}
		}
		last := ""
		for _, i := range chunk {
			if m := j.recs[i].Model; m != last {
				models[m], last = true, m
			}
		}
		full := len(chunk) == s.d.maxRows
		query := ""
		if !full || s.insertFull == nil {
			query = s.insertSQL(len(chunk))
		}
		inserted, err := s.insertChunk(ctx, tx, query, full, args, chunk, j)
		if err != nil {
			return fmt.Errorf("failed to insert predictions: %w", err)
		}
		if len(inserted) == len(chunk) {
			continue
		}
		// Some request ids were taken before this transaction: compare
		// their stored content hashes.
		var taken []string
		for _, i := range chunk {
			if !inserted[j.recs[i].RequestID] {
				taken = append(taken, j.recs[i].RequestID)
			}
		}
		existing, err := s.hashes(ctx, tx, taken)
		if err != nil {
			return err
		}
		for _, i := range chunk {
			id := j.recs[i].RequestID
			if inserted[id] {
				continue
			}
			h, ok := existing[id]
			switch {
			case !ok:
				return fmt.Errorf("request id %q neither inserted nor found", id)
			case h == j.hashes[i]:
				j.out[i] = predstore.Duplicate
			default:
				j.out[i] = predstore.Conflict
			}
			seen[id] = h
		}
	}
	return nil
}

// insertCols is the number of columns an insert writes per record.
const insertCols = 7

// insertSQL is the insert of n records.
func (s *DB) insertSQL(n int) string {
	const cols = insertCols
	var b strings.Builder
	b.Grow(100 + n*cols*6)
	b.WriteString(s.d.insertIgnore + " INTO predictions(request_id, ts, model, version, digest, chash, doc) VALUES ")
	for k := range n {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s.ph(k*cols + c))
		}
		b.WriteByte(')')
	}
	b.WriteString(s.d.onConflict)
	return b.String()
}

// insertChunk runs one multi-row insert (query; full: of maxRows
// records, through the prepared statement) and returns the request ids
// it inserted.
//
// PostgreSQL: RETURNING names the inserted rows. SQLite: scanning a
// RETURNING row per record cost a quarter of the writer's time, so the
// insert is a plain Exec; only if it inserted fewer rows than sent (a
// request id was taken) are the chunk's rows read back, and those with a
// rowid above the largest before the insert are the ones just inserted
// (the writer holds the write lock: no one else inserts in between).
func (s *DB) insertChunk(ctx context.Context, tx *sql.Tx, query string, full bool, args []any, chunk []int, j *job) (map[string]bool, error) {
	stmt := func() (*sql.Stmt, error) {
		if !full {
			return nil, nil
		}
		// Full chunks reuse one prepared statement: SQLite would
		// otherwise parse thousands of placeholders per chunk.
		if s.insertFull == nil {
			var err error
			if s.insertFull, err = s.db.PrepareContext(ctx, query); err != nil {
				return nil, err
			}
		}
		return tx.StmtContext(ctx, s.insertFull), nil
	}
	st, err := stmt()
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(chunk))
	if s.d.returning {
		var rows *sql.Rows
		if st != nil {
			rows, err = st.QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, query, args...)
		}
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			inserted[id] = true
		}
		return inserted, rows.Close()
	}
	var before int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM predictions").Scan(&before); err != nil {
		return nil, err
	}
	var res sql.Result
	if st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = tx.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(chunk))
	for k, i := range chunk {
		ids[k] = j.recs[i].RequestID
	}
	if int(n) == len(chunk) {
		for _, id := range ids {
			inserted[id] = true
		}
		return inserted, nil
	}
	rows, err := s.rows(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	for id, r := range rows {
		if r.id > before {
			inserted[id] = true
		}
	}
	if len(inserted) != int(n) {
		return nil, fmt.Errorf("inserted %d rows but found %d new ones", n, len(inserted))
	}
	return inserted, nil
}

type storedRow struct {
	id   int64
	hash [16]byte
}

// hashes returns the content hashes of the stored records with these ids.
func (s *DB) hashes(ctx context.Context, q queryer, ids []string) (map[string][16]byte, error) {
	rows, err := s.rows(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][16]byte, len(rows))
	for id, r := range rows {
		out[id] = r.hash
	}
	return out, nil
}

// rows returns the row ids and content hashes of the stored records with
// these request ids. of the stored records with these ids.
func (s *DB) rows(ctx context.Context, q queryer, ids []string) (map[string]storedRow, error) {
	out := make(map[string]storedRow, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args[i], ph[i] = id, s.ph(i)
		}
		rows, err := q.QueryContext(ctx, "SELECT request_id, chash, id FROM predictions WHERE request_id IN ("+strings.Join(ph, ",")+")", args...)
		if err != nil {
			return nil, fmt.Errorf("failed to look up request ids: %w", err)
		}
		for rows.Next() {
			var id string
			var h []byte
			var r storedRow
			if err := rows.Scan(&id, &h, &r.id); err != nil {
				rows.Close()
				return nil, err
			}
			copy(r.hash[:], h)
			out[id] = r
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// labelled returns which of these request ids already have a label.
func (s *DB) labelled(ctx context.Context, q queryer, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.inChunks(ctx, q, "SELECT request_id FROM prediction_labels WHERE request_id IN ", ids, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to look up labels: %w", err)
	}
	return out, nil
}

// inChunks runs query + "(ids...)" over chunks of 500 ids and calls fn
// for every row.
func (s *DB) inChunks(ctx context.Context, q queryer, query string, ids []string, fn func(*sql.Rows) error) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args[i], ph[i] = id, s.ph(i)
		}
		rows, err := q.QueryContext(ctx, query+"("+strings.Join(ph, ",")+")", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := fn(rows); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Records implements predstore.Store: one indexed IN query per 500 ids.
func (s *DB) Records(ctx context.Context, requestIDs []string) ([]predstore.Record, error) {
	out := make([]predstore.Record, 0, len(requestIDs))
	err := s.inChunks(ctx, s.db, selectRecord+" WHERE p.request_id IN ", requestIDs, func(rows *sql.Rows) error {
		var row scanned
		if err := rows.Scan(row.dest()...); err != nil {
			return err
		}
		rec, _, err := row.decode()
		if err != nil {
			return err
		}
		out = append(out, *rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to look up predictions: %w", err)
	}
	return out, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *DB) labelTx(ctx context.Context, tx *sql.Tx, j *job, seen map[string][16]byte) error {
	j.out = make([]predstore.Outcome, len(j.labels))
	var ask []string
	for _, l := range j.labels {
		if _, ok := seen[l.RequestID]; !ok {
			ask = append(ask, l.RequestID)
		}
	}
	found, err := s.hashes(ctx, tx, ask)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(j.labels))
	for _, l := range j.labels {
		ids = append(ids, l.RequestID)
	}
	labelled, err := s.labelled(ctx, tx, ids)
	if err != nil {
		return err
	}
	// The last label for a request id in the call wins; only the first
	// one the id ever gets is Stored, the others Replaced.
	last := map[string]int{}
	for i, l := range j.labels {
		_, inTx := seen[l.RequestID]
		_, inDB := found[l.RequestID]
		if !inTx && !inDB {
			j.out[i] = predstore.Unknown
			continue
		}
		if _, again := last[l.RequestID]; again || labelled[l.RequestID] {
			j.out[i] = predstore.Replaced
		} else {
			j.out[i] = predstore.Stored
		}
		last[l.RequestID] = i
	}
	idx := make([]int, 0, len(last))
	for i := range j.labels {
		if k, ok := last[j.labels[i].RequestID]; ok && k == i {
			idx = append(idx, i)
		}
	}
	for len(idx) > 0 {
		chunk := idx[:min(len(idx), s.d.maxRows)]
		idx = idx[len(chunk):]
		var b strings.Builder
		b.WriteString("INSERT INTO prediction_labels(request_id, label, ts) VALUES ")
		args := make([]any, 0, 3*len(chunk))
		for k, i := range chunk {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(" + s.ph(len(args)) + "," + s.ph(len(args)+1) + "," + s.ph(len(args)+2) + ")")
			l := &j.labels[i]
			args = append(args, l.RequestID, string(l.Label), l.TS.UnixNano())
		}
		b.WriteString(" ON CONFLICT (request_id) DO UPDATE SET label = excluded.label, ts = excluded.ts")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("failed to store labels: %w", err)
		}
	}
	return nil
}

func (s *DB) deleteTx(ctx context.Context, tx *sql.Tx, j *job) error {
	sel := "SELECT id FROM predictions WHERE model = " + s.ph(0) + " AND ts < " + s.ph(1) + " LIMIT " + strconv.Itoa(deleteChunk)
	if _, err := tx.ExecContext(ctx, "DELETE FROM prediction_labels WHERE request_id IN (SELECT request_id FROM predictions WHERE id IN ("+sel+"))", j.model, j.before.UnixNano()); err != nil {
		return fmt.Errorf("failed to delete labels: %w", err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM predictions WHERE id IN ("+sel+")", j.model, j.before.UnixNano())
	if err != nil {
		return fmt.Errorf("failed to delete predictions: %w", err)
	}
	j.deleted, err = res.RowsAffected()
	return err
}

// Get implements predstore.Store: two index lookups.
func (s *DB) Get(ctx context.Context, requestID string) (*predstore.Record, *predstore.Label, error) {
	var row scanned
	err := s.db.QueryRowContext(ctx, selectRecord+" WHERE p.request_id = "+s.ph(0), requestID).Scan(row.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("prediction %q: %w", requestID, predstore.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to look up prediction: %w", err)
	}
	return row.decode()
}

const selectRecord = "SELECT p.request_id, p.ts, p.model, p.version, p.digest, p.doc, l.label, l.ts FROM predictions p LEFT JOIN prediction_labels l ON l.request_id = p.request_id"

type scanned struct {
	id, model, version, digest, doc string
	ts                              int64
	label                           sql.NullString
	lts                             sql.NullInt64
}

func (r *scanned) dest() []any {
	return []any{&r.id, &r.ts, &r.model, &r.version, &r.digest, &r.doc, &r.label, &r.lts}
}

func (r *scanned) decode() (*predstore.Record, *predstore.Label, error) {
	var b body
	if err := json.Unmarshal([]byte(r.doc), &b); err != nil {
		return nil, nil, fmt.Errorf("stored prediction %q is corrupt: %w", r.id, err)
	}
	rec := &predstore.Record{RequestID: r.id, TS: time.Unix(0, r.ts).UTC(), Model: r.model, Version: r.version, Digest: r.digest,
		Features: b.Features, Prediction: b.Prediction, Segment: b.Segment, LatencyMS: b.LatencyMS}
	if !r.label.Valid {
		return rec, nil, nil
	}
	return rec, &predstore.Label{RequestID: r.id, Label: json.RawMessage(r.label.String), TS: time.Unix(0, r.lts.Int64).UTC()}, nil
}

// Export implements predstore.Store.
func (s *DB) Export(ctx context.Context, q predstore.ExportQuery, fn func(*predstore.Record, *predstore.Label) error) error {
	models := []string{q.Model}
	if q.Model == "" {
		var err error
		if models, err = s.Models(ctx); err != nil {
			return err
		}
	}
	until := int64(1<<63 - 1)
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	since := int64(-1 << 63)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	for _, m := range models {
		rows, err := s.db.QueryContext(ctx, selectRecord+" WHERE p.model = "+s.ph(0)+" AND p.ts >= "+s.ph(1)+" AND p.ts < "+s.ph(2)+" ORDER BY p.ts, p.id", m, since, until)
		if err != nil {
			return fmt.Errorf("failed to export: %w", err)
		}
		for rows.Next() {
			var row scanned
			if err := rows.Scan(row.dest()...); err != nil {
				rows.Close()
				return err
			}
			r, l, err := row.decode()
			if err == nil {
				err = fn(r, l)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("failed to export: %w", err)
		}
	}
	return nil
}

// Models implements predstore.Store.
func (s *DB) Models(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT model FROM prediction_models ORDER BY model")
	if err != nil {
		return nil, fmt.Errorf("failed to list models: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrations are applied in order; append, never edit.
var migrations = []func(d dialect) []string{
	func(d dialect) []string {
		return []string{
			`CREATE TABLE predictions (
				id ` + d.serial + `,
				request_id TEXT NOT NULL,
				ts BIGINT NOT NULL,
				model TEXT NOT NULL,
				version TEXT NOT NULL,
				digest TEXT NOT NULL,
				chash ` + d.blob + ` NOT NULL,
				doc TEXT NOT NULL
			)`,
			`CREATE UNIQUE INDEX predictions_request_id ON predictions(request_id)`,
			`CREATE INDEX predictions_model_ts ON predictions(model, ts)`,
			`CREATE TABLE prediction_labels (
				request_id TEXT PRIMARY KEY,
				label TEXT NOT NULL,
				ts BIGINT NOT NULL
			)`,
			`CREATE TABLE prediction_models (model TEXT PRIMARY KEY)`,
		}
	},
	// 2: the monitors' state (monitors.go). Segments are bytes: they may
	// hold NUL, which PostgreSQL TEXT cannot.
	func(d dialect) []string {
		return []string{
			`CREATE TABLE monitor_summaries (
				monitor TEXT NOT NULL,
				win BIGINT NOT NULL,
				segment ` + d.blob + ` NOT NULL,
				data ` + d.blob + ` NOT NULL,
				PRIMARY KEY (monitor, win, segment)
			)`,
			`CREATE TABLE monitor_results (
				monitor TEXT NOT NULL,
				win BIGINT NOT NULL,
				data ` + d.blob + ` NOT NULL,
				PRIMARY KEY (monitor, win)
			)`,
			`CREATE TABLE monitor_state (
				monitor TEXT PRIMARY KEY,
				data ` + d.blob + ` NOT NULL
			)`,
		}
	},
}

func (s *DB) migrate(ctx context.Context, lock string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to migrate: %w", err)
	}
	defer tx.Rollback()
	if lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("failed to lock for migration: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS prediction_schema (version INTEGER NOT NULL)"); err != nil {
		return fmt.Errorf("failed to migrate: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, "SELECT version FROM prediction_schema").Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, "INSERT INTO prediction_schema(version) VALUES (0)"); err != nil {
			return fmt.Errorf("failed to migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("failed to migrate: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("prediction store schema version %d is newer than this binary's (%d)", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		for _, stmt := range migrations[i](s.d) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("failed to apply prediction migration %d: %w", i+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE prediction_schema SET version = "+s.ph(0), len(migrations)); err != nil {
		return fmt.Errorf("failed to migrate: %w", err)
	}
	return tx.Commit()
}
