// Package sqlstore implements [store.Store] over database/sql for the SQL
// dialects custody supports. The sqlite and postgres packages supply the
// driver, the connection settings and a [Dialect]; the queries, the schema
// and the migration runner are shared here so that both stores behave the
// same way by construction (and the conformance suite checks that they do).
//
// Timestamps are stored as BIGINT Unix nanoseconds (UTC), structured fields
// (owners, tags, manifests, signatures, params, ...) as JSON text. The schema
// is documented in docs/registry.md.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// Dialect describes what differs between SQL databases.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Numbered selects $1, $2, ... placeholders instead of ?.
	Numbered bool
	// Serial is the column definition of an auto-incrementing primary key.
	Serial string
	// Blob is the type of a byte-string column.
	Blob string
	// ForUpdate is appended to a SELECT to lock the rows it reads (empty
	// when the database serializes writers anyway).
	ForUpdate string
	// MigrationLock, if set, is executed first in the migration
	// transaction to keep concurrent servers from migrating at once.
	MigrationLock string
	// IsUniqueViolation reports whether err is a primary-key or unique
	// constraint violation.
	IsUniqueViolation func(error) bool
	// LocalSavepoints says a savepoint costs no round trip (an in-process
	// database), so every function of a group gets one up front.
	LocalSavepoints bool
	// IsRetryable reports whether the transaction failed for a reason
	// that a retry may cure (serialization failure, deadlock).
	IsRetryable func(error) bool
	// WritableCTE says INSERTs may run inside WITH clauses and take their
	// rows from unnest over array parameters (PostgreSQL), so that a
	// transaction's log appends are written with one fixed statement
	// (flushCTE); otherwise with multi-row INSERTs and an UPDATE.
	WritableCTE bool
	// Pipeline lets a group of write functions run while the group before
	// it writes the log and commits, each on its own connection (see
	// "Pipelining" below). Not for SQLite, which has one writer at a time.
	Pipeline bool
}

// DB is a [store.Store] over a *sql.DB.
type DB struct {
	db *sql.DB
	d  *Dialect
	// Group commit: writers queue their functions;
	// whoever holds the committer slot runs the queue.
	queueMu   sync.Mutex
	queue     []*writeReq
	committer chan struct{}
	lastDone  chan struct{} // closed when the last group started has ended
	reader
}

var _ store.Store = (*DB)(nil)

const maxRetries = 8

// Open migrates db to the latest schema version and returns the store. The
// store owns db: Close closes it.
func Open(ctx context.Context, db *sql.DB, d Dialect) (*DB, error) {
	s := &DB{db: db, d: &d, committer: make(chan struct{}, 1), lastDone: make(chan struct{})}
	close(s.lastDone)
	s.reader = reader{q: db, d: s.d}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SQL returns the underlying database, for tests that tamper with it.
func (s *DB) SQL() *sql.DB { return s.db }

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Ping checks that the database answers a query.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Update implements [store.Store.Update].
func (s *DB) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.updateGrouped(ctx, fn)
		if err == nil || attempt >= maxRetries || s.d.IsRetryable == nil || !s.d.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(time.Duration(attempt+1) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Group commit.
//
// Write transactions run one at a time: SQLite allows one writer at a time
// anyway (and queueing in Go avoids its busy handler's sleep-and-poll), and
// on PostgreSQL every write appends to the transparency log, whose head row
// stays locked until the commit's WAL flush, so writers are serialized by
// it anyway. The ones that arrive while a transaction is running are run
// together next, in one database transaction, and share its commit (one
// WAL flush instead of one each). Writers of several processes sharing a
// PostgreSQL database still run concurrently, a group each.
//
// Each caller learns its own outcome only after the commit, and a function
// that fails is undone alone, exactly as if it had had a transaction of its
// own: it runs inside a savepoint, rolled back to when it fails. Where a
// savepoint costs a round trip (PostgreSQL), a group first runs without
// them and, if one of its functions fails, is rolled back as a whole and
// run again with them; functions must be safe to run again, as they already
// are for the retries of [DB.Update].
//
// Pipelining (Dialect.Pipeline, PostgreSQL): a group ends with the
// functions its members deferred ([store.Tx.Defer]: the log appends), the
// log write and the commit, and only those hold the log's head row. The
// next group runs its functions meanwhile, on its own connection, so the
// round trips of one group's statements overlap the other's log write and
// WAL flush. At most one group runs functions at a time, and groups end in
// the order they started: a group running functions may wait for row locks
// of the one ending, which waits for nothing of it, so the two cannot
// deadlock. A function that takes the log's lock itself (it reads the log)
// first waits for the group before to end.

// maxGroup bounds the number of functions committed together.
const maxGroup = 256

type writeReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx store.Tx) error
	done chan error // buffered: the committer never waits for the caller
}

// group is the functions of a group commit, their transaction and their
// outcomes.
type group struct {
	reqs  []*writeReq
	errs  []error
	sqlTx *sql.Tx
	t     *tx
	ran   int // functions that succeeded
}

// fail tells every member without an error of its own err.
func (g *group) fail(err error) {
	for i, r := range g.reqs {
		if g.errs[i] == nil {
			g.errs[i] = err
		}
		r.done <- g.errs[i]
	}
}

func (s *DB) updateGrouped(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.queueMu.Lock()
	s.queue = append(s.queue, req)
	s.queueMu.Unlock()
	// Whoever holds the committer slot runs the next group from the queue,
	// until this request has been answered (by this caller's group or one
	// before).
	for {
		select {
		case err := <-req.done:
			return err
		case s.committer <- struct{}{}:
		}
		s.runGroup()
	}
}

// runGroup runs the next group from the queue. The caller holds the
// committer slot; runGroup releases it.
func (s *DB) runGroup() {
	s.queueMu.Lock()
	n := min(len(s.queue), maxGroup)
	reqs := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.queueMu.Unlock()
	if n == 0 { // the caller's request is in a group ahead, still ending
		<-s.committer
		return
	}
	prev, done := s.lastDone, make(chan struct{})
	s.lastDone = done
	defer close(done)
	g := s.runFuncs(reqs, prev)
	<-prev // groups end in order
	held := true
	if s.d.Pipeline {
		<-s.committer // the next group may run its functions
		held = false
	}
	if g != nil {
		s.endGroup(g)
	}
	if held {
		<-s.committer
	}
}

// runFuncs begins the group's transaction and runs its functions; it
// returns nil if it could not and has told every member why.
func (s *DB) runFuncs(reqs []*writeReq, prev <-chan struct{}) *group {
	savepoints := s.d.LocalSavepoints || len(reqs) == 1
	for {
		g, ok := s.tryFuncs(reqs, prev, savepoints)
		if ok || savepoints {
			return g
		}
		savepoints = true // a function failed: run them again, each in a savepoint
	}
}

// tryFuncs runs the functions of a group in a new transaction. Without
// savepoints, it gives up when a function fails: it rolls everything back,
// tells no one and returns false.
func (s *DB) tryFuncs(reqs []*writeReq, prev <-chan struct{}, savepoints bool) (*group, bool) {
	g := &group{reqs: reqs, errs: make([]error, len(reqs))}
	// The transaction serves several callers: none of their contexts may
	// end it (a cancelled statement can roll back the whole transaction).
	ctx := context.Background()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		g.fail(fmt.Errorf("failed to begin transaction: %w", err))
		return nil, true
	}
	g.sqlTx = sqlTx
	exec := func(q string) error { _, err := sqlTx.ExecContext(ctx, q); return err }
	g.t = &tx{reader: reader{q: sqlTx, d: s.d}, log: &logBuf{}, prev: prev}
	for i, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			g.errs[i] = err
			continue
		}
		mark := g.t.log.mark()
		if savepoints {
			if err := exec("SAVEPOINT w"); err != nil {
				_ = sqlTx.Rollback()
				g.fail(fmt.Errorf("failed to begin transaction: %w", err))
				return nil, true
			}
		}
		g.errs[i] = r.fn(context.WithoutCancel(r.ctx), g.t)
		switch {
		case g.errs[i] != nil && !savepoints:
			_ = sqlTx.Rollback()
			return nil, false
		case g.errs[i] != nil:
			// The savepoint must still exist: if the database rolled the
			// whole transaction back, nothing of the group may commit.
			if err := exec("ROLLBACK TO SAVEPOINT w"); err != nil {
				_ = sqlTx.Rollback()
				g.fail(fmt.Errorf("failed to roll back after %v: %w", g.errs[i], err))
				return nil, true
			}
			g.t.log.restore(mark)
		default:
			g.ran++
		}
		if savepoints {
			if err := exec("RELEASE SAVEPOINT w"); err != nil {
				_ = sqlTx.Rollback()
				g.fail(fmt.Errorf("failed to commit: %w", err))
				return nil, true
			}
		}
	}
	return g, true
}

// endGroup runs what the group's functions deferred, writes the log,
// commits, and tells each member its outcome.
func (s *DB) endGroup(g *group) {
	ctx := context.Background()
	if g.ran == 0 {
		_ = g.sqlTx.Rollback()
	} else if err := g.t.settle(ctx); err != nil {
		_ = g.sqlTx.Rollback()
		g.fail(err)
		return
	} else if err := g.sqlTx.Commit(); err != nil {
		g.fail(fmt.Errorf("failed to commit: %w", err))
		return
	}
	for i, r := range g.reqs {
		r.done <- g.errs[i]
	}
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type reader struct {
	q querier
	d *Dialect
}

// rebind rewrites ? placeholders to $n for numbered dialects. Queries in
// this package never contain a literal '?'.
func (r reader) rebind(q string) string {
	if !r.d.Numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (r reader) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, r.rebind(q), args...)
}

func (r reader) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, r.rebind(q), args...)
}

func (r reader) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, r.rebind(q), args...)
}

func nanos(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlstore: marshal %T: %v", v, err)) // only plain data is marshaled
	}
	return string(b)
}

func notFound(what string, key ...string) error {
	return fmt.Errorf("%s %s: %w", what, strings.Join(key, "@"), store.ErrNotFound)
}

func limitOr(limit int) int {
	if limit <= 0 || limit > 1000 {
		return 1000
	}
	return limit
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const modelCols = "name, description, owners, tags, created_by, created_at, updated_at"

func scanModel(sc scanner) (*store.Model, error) {
	var m store.Model
	var owners, tags string
	var created, updated int64
	if err := sc.Scan(&m.Name, &m.Description, &owners, &tags, &m.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(owners), &m.Owners); err != nil {
		return nil, fmt.Errorf("model %s: corrupt owners: %w", m.Name, err)
	}
	if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
		return nil, fmt.Errorf("model %s: corrupt tags: %w", m.Name, err)
	}
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &m, nil
}

func (r reader) GetModel(ctx context.Context, name string) (*store.Model, error) {
	return r.getModel(ctx, name, "")
}

func (r reader) getModel(ctx context.Context, name, suffix string) (*store.Model, error) {
	m, err := scanModel(r.queryRow(ctx, "SELECT "+modelCols+" FROM models WHERE name = ?"+suffix, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("model", name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read model %s: %w", name, err)
	}
	return m, nil
}

func (r reader) ListModels(ctx context.Context, after string, limit int) ([]store.Model, error) {
	rows, err := r.query(ctx, "SELECT "+modelCols+" FROM models WHERE name > ? ORDER BY name LIMIT ?", after, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("failed to list models: %w", err)
	}
	defer rows.Close()
	out := []store.Model{}
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

const versionCols = "model, version, manifest, signatures, uri, format, scan_verdict, run_id, created_by, created_at"

func scanVersion(sc scanner) (*store.Version, error) {
	var v store.Version
	var manifest, sigs string
	var created int64
	if err := sc.Scan(&v.Model, &v.Version, &manifest, &sigs, &v.URI, &v.Format, &v.ScanVerdict, &v.RunID, &v.CreatedBy, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(manifest), &v.Manifest); err != nil {
		return nil, fmt.Errorf("version %s@%s: corrupt manifest: %w", v.Model, v.Version, err)
	}
	if err := json.Unmarshal([]byte(sigs), &v.Signatures); err != nil {
		return nil, fmt.Errorf("version %s@%s: corrupt signatures: %w", v.Model, v.Version, err)
	}
	v.CreatedAt = fromNanos(created)
	return &v, nil
}

func (r reader) GetVersion(ctx context.Context, model, version string) (*store.Version, error) {
	v, err := scanVersion(r.queryRow(ctx, "SELECT "+versionCols+" FROM versions WHERE model = ? AND version = ?", model, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("version", model, version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read version %s@%s: %w", model, version, err)
	}
	return v, nil
}

func (r reader) ListVersions(ctx context.Context, model, after string, limit int) ([]store.Version, error) {
	rows, err := r.query(ctx, "SELECT "+versionCols+" FROM versions WHERE model = ? AND version > ? ORDER BY version LIMIT ?", model, after, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("failed to list versions: %w", err)
	}
	defer rows.Close()
	out := []store.Version{}
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

const aliasCols = "seq, model, alias, version, previous, actor, at, log_index"

func scanAlias(sc scanner) (*store.AliasEvent, error) {
	var e store.AliasEvent
	var at int64
	var li sql.NullInt64
	if err := sc.Scan(&e.Seq, &e.Model, &e.Alias, &e.Version, &e.Previous, &e.Actor, &at, &li); err != nil {
		return nil, err
	}
	e.At = fromNanos(at)
	e.LogIndex = nullIndex(li)
	return &e, nil
}

func nullIndex(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

func indexArg(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

const deploymentCols = "id, model, alias, version, digest, alias_log_index, host, pid, started_at, actor, at, log_index"

func scanDeployment(sc scanner) (*store.Deployment, error) {
	var d store.Deployment
	var dg string
	var started, at int64
	var li sql.NullInt64
	if err := sc.Scan(&d.ID, &d.Model, &d.Alias, &d.Version, &dg, &d.AliasLogIndex, &d.Host, &d.PID, &started, &d.Actor, &at, &li); err != nil {
		return nil, err
	}
	var err error
	if d.Digest, err = digest.ParseDigest(dg); err != nil {
		return nil, fmt.Errorf("deployment %d: corrupt digest: %w", d.ID, err)
	}
	d.StartedAt, d.At, d.LogIndex = fromNanos(started), fromNanos(at), nullIndex(li)
	return &d, nil
}

func (r reader) GetDeployment(ctx context.Context, id int64) (*store.Deployment, error) {
	d, err := scanDeployment(r.queryRow(ctx, "SELECT "+deploymentCols+" FROM deployments WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("deployment", fmt.Sprint(id))
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read deployment %d: %w", id, err)
	}
	return d, nil
}

func (r reader) ListDeployments(ctx context.Context, model string, after int64, limit int) ([]store.Deployment, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if model == "" {
		rows, err = r.query(ctx, "SELECT "+deploymentCols+" FROM deployments WHERE id > ? ORDER BY id LIMIT ?", after, limitOr(limit))
	} else {
		rows, err = r.query(ctx, "SELECT "+deploymentCols+" FROM deployments WHERE model = ? AND id > ? ORDER BY id LIMIT ?", model, after, limitOr(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read deployments: %w", err)
	}
	defer rows.Close()
	out := []store.Deployment{}
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *d)
	}
	return out, rows.Err()
}

func (r reader) ResolveAlias(ctx context.Context, model, alias string, at time.Time) (*store.AliasEvent, error) {
	var row *sql.Row
	if at.IsZero() {
		row = r.queryRow(ctx, "SELECT "+aliasCols+" FROM alias_events WHERE model = ? AND alias = ? ORDER BY seq DESC LIMIT 1", model, alias)
	} else {
		row = r.queryRow(ctx, "SELECT "+aliasCols+" FROM alias_events WHERE model = ? AND alias = ? AND at <= ? ORDER BY seq DESC LIMIT 1", model, alias, nanos(at))
	}
	e, err := scanAlias(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("alias", model, alias)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to resolve alias %s@%s: %w", model, alias, err)
	}
	return e, nil
}

func (r reader) aliases(ctx context.Context, q string, args ...any) ([]store.AliasEvent, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read aliases: %w", err)
	}
	defer rows.Close()
	out := []store.AliasEvent{}
	for rows.Next() {
		e, err := scanAlias(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

func (r reader) AliasHistory(ctx context.Context, model, alias string) ([]store.AliasEvent, error) {
	return r.aliases(ctx, "SELECT "+aliasCols+" FROM alias_events WHERE model = ? AND alias = ? ORDER BY seq", model, alias)
}

func (r reader) ListAliases(ctx context.Context, model string) ([]store.AliasEvent, error) {
	return r.aliases(ctx, "SELECT "+aliasCols+" FROM alias_events WHERE seq IN (SELECT MAX(seq) FROM alias_events WHERE model = ? GROUP BY alias) ORDER BY alias", model)
}

func (r reader) VersionAliases(ctx context.Context, model, version string) ([]store.AliasEvent, error) {
	return r.aliases(ctx, "SELECT "+aliasCols+" FROM alias_events WHERE seq IN (SELECT MAX(seq) FROM alias_events WHERE model = ? AND version = ? GROUP BY alias) ORDER BY alias", model, version)
}

const datasetCols = "name, version, digest, dvc_md5, source_uri, size, rows, files, created_by, created_at"

func scanDataset(sc scanner) (*store.Dataset, error) {
	var d store.Dataset
	var dg, files string
	var rows sql.NullInt64
	var created int64
	if err := sc.Scan(&d.Name, &d.Version, &dg, &d.DVCMD5, &d.SourceURI, &d.Size, &rows, &files, &d.CreatedBy, &created); err != nil {
		return nil, err
	}
	var err error
	if d.Digest, err = digest.ParseDigest(dg); err != nil {
		return nil, fmt.Errorf("dataset %s@%s: corrupt digest: %w", d.Name, d.Version, err)
	}
	if rows.Valid {
		d.Rows = &rows.Int64
	}
	if err := json.Unmarshal([]byte(files), &d.Files); err != nil {
		return nil, fmt.Errorf("dataset %s@%s: corrupt files: %w", d.Name, d.Version, err)
	}
	d.CreatedAt = fromNanos(created)
	return &d, nil
}

func (r reader) GetDataset(ctx context.Context, name, version string) (*store.Dataset, error) {
	d, err := scanDataset(r.queryRow(ctx, "SELECT "+datasetCols+" FROM datasets WHERE name = ? AND version = ?", name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("dataset", name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read dataset %s@%s: %w", name, version, err)
	}
	return d, nil
}

const evidenceCols = "dataset_name, dataset_version, digest, name, document, bundle, signer, key_ids, contract, contract_digest, outcome, expectations, failed, tool_version, checked_at, created_by, created_at"

func scanEvidence(sc scanner) (*store.Evidence, error) {
	var e store.Evidence
	var dg, cdg, keyIDs string
	var doc, bundle []byte
	var checked, created int64
	if err := sc.Scan(&e.Dataset, &e.DatasetVersion, &dg, &e.Name, &doc, &bundle, &e.Signature.Signer, &keyIDs,
		&e.Contract, &cdg, &e.Outcome, &e.Expectations, &e.Failed, &e.ToolVersion, &checked, &e.CreatedBy, &created); err != nil {
		return nil, err
	}
	var err error
	if e.Digest, err = digest.ParseDigest(dg); err != nil {
		return nil, fmt.Errorf("evidence of %s@%s: corrupt digest: %w", e.Dataset, e.DatasetVersion, err)
	}
	if cdg != "" {
		if e.ContractDigest, err = digest.ParseDigest(cdg); err != nil {
			return nil, fmt.Errorf("evidence of %s@%s: corrupt contract digest: %w", e.Dataset, e.DatasetVersion, err)
		}
	}
	if err := json.Unmarshal([]byte(keyIDs), &e.Signature.KeyIDs); err != nil {
		return nil, fmt.Errorf("evidence of %s@%s: corrupt key ids: %w", e.Dataset, e.DatasetVersion, err)
	}
	if len(e.Signature.KeyIDs) == 0 {
		e.Signature.KeyIDs = nil
	}
	e.Document, e.Signature.Bundle = doc, json.RawMessage(bundle)
	e.CheckedAt, e.CreatedAt = fromNanos(checked), fromNanos(created)
	return &e, nil
}

func (r reader) ListEvidence(ctx context.Context, ds store.DatasetRef) ([]store.Evidence, error) {
	rows, err := r.query(ctx, "SELECT "+evidenceCols+" FROM dataset_evidence WHERE dataset_name = ? AND dataset_version = ? ORDER BY created_at, digest", ds.Name, ds.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to read evidence of %s@%s: %w", ds.Name, ds.Version, err)
	}
	defer rows.Close()
	out := []store.Evidence{}
	for rows.Next() {
		e, err := scanEvidence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

const runCols = "id, params, metrics, code_repo, code_commit, image_digest, env_lock, output_model, output_version, created_by, created_at"

func scanRun(sc scanner) (*store.Run, error) {
	var r store.Run
	var params, metrics, env string
	var created int64
	if err := sc.Scan(&r.ID, &params, &metrics, &r.CodeRepo, &r.CodeCommit, &r.ImageDigest, &env, &r.OutputModel, &r.OutputVersion, &r.CreatedBy, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &r.Params); err != nil {
		return nil, fmt.Errorf("run %s: corrupt params: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(metrics), &r.Metrics); err != nil {
		return nil, fmt.Errorf("run %s: corrupt metrics: %w", r.ID, err)
	}
	if env != "" {
		r.EnvLock = json.RawMessage(env)
	}
	r.CreatedAt = fromNanos(created)
	return &r, nil
}

func (r reader) runInputs(ctx context.Context, run *store.Run) error {
	rows, err := r.query(ctx, "SELECT dataset_name, dataset_version FROM run_inputs WHERE run_id = ? ORDER BY dataset_name, dataset_version", run.ID)
	if err != nil {
		return fmt.Errorf("failed to read inputs of run %s: %w", run.ID, err)
	}
	defer rows.Close()
	run.Inputs = []store.DatasetRef{}
	for rows.Next() {
		var ref store.DatasetRef
		if err := rows.Scan(&ref.Name, &ref.Version); err != nil {
			return err
		}
		run.Inputs = append(run.Inputs, ref)
	}
	return rows.Err()
}

func (r reader) GetRun(ctx context.Context, id string) (*store.Run, error) {
	run, err := scanRun(r.queryRow(ctx, "SELECT "+runCols+" FROM runs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("run", id)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read run %s: %w", id, err)
	}
	if err := r.runInputs(ctx, run); err != nil {
		return nil, err
	}
	return run, nil
}

func (r reader) RunsWithInput(ctx context.Context, ds store.DatasetRef) ([]store.Run, error) {
	rows, err := r.query(ctx, "SELECT "+runCols+" FROM runs WHERE id IN (SELECT run_id FROM run_inputs WHERE dataset_name = ? AND dataset_version = ?) ORDER BY id", ds.Name, ds.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to find runs of dataset %s@%s: %w", ds.Name, ds.Version, err)
	}
	var out []store.Run
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, *run)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if err := r.runInputs(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []store.Run{}
	}
	return out, nil
}

func (r reader) GetToken(ctx context.Context, id string) (*store.Token, error) {
	var t store.Token
	var hash []byte
	var created int64
	err := r.queryRow(ctx, "SELECT id, hash, role, name, created_by, created_at FROM tokens WHERE id = ?", id).
		Scan(&t.ID, &hash, &t.Role, &t.Name, &t.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token", id)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read token: %w", err)
	}
	if len(hash) != len(t.Hash) {
		return nil, fmt.Errorf("token %s: corrupt hash", id)
	}
	copy(t.Hash[:], hash)
	t.CreatedAt = fromNanos(created)
	return &t, nil
}

func (t *tx) Events(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	if err := t.settle(ctx); err != nil {
		return nil, err
	}
	return t.reader.Events(ctx, after, limit)
}

func (r reader) Events(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	rows, err := r.query(ctx, "SELECT seq, type, subject, actor, at, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("failed to read events: %w", err)
	}
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var at int64
		var payload string
		if err := rows.Scan(&e.Seq, &e.Type, &e.Subject, &e.Actor, &at, &payload); err != nil {
			return nil, err
		}
		e.At, e.Payload = fromNanos(at), json.RawMessage(payload)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r reader) ListApprovals(ctx context.Context, model, version string) ([]store.Approval, error) {
	rows, err := r.query(ctx, "SELECT model, version, approver, comment, at FROM approvals WHERE model = ? AND version = ? ORDER BY at, approver", model, version)
	if err != nil {
		return nil, fmt.Errorf("failed to read approvals: %w", err)
	}
	defer rows.Close()
	out := []store.Approval{}
	for rows.Next() {
		var a store.Approval
		var at int64
		if err := rows.Scan(&a.Model, &a.Version, &a.Approver, &a.Comment, &at); err != nil {
			return nil, err
		}
		a.At = fromNanos(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (r reader) GetVersionStatus(ctx context.Context, model, version string) (*store.VersionStatus, error) {
	var st store.VersionStatus
	var at int64
	err := r.queryRow(ctx, "SELECT model, version, status, reason, actor, at FROM version_status WHERE model = ? AND version = ?", model, version).
		Scan(&st.Model, &st.Version, &st.Status, &st.Reason, &st.Actor, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("status of version", model, version)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read version status: %w", err)
	}
	st.At = fromNanos(at)
	return &st, nil
}

// tx implements store.Tx.
type tx struct {
	reader
	log  *logBuf         // the transparency log's appends and the deferred functions, run at the end (logbuf.go)
	prev <-chan struct{} // closed when the group before has ended (its log lock released)
}

func (t *tx) insert(ctx context.Context, what string, q string, args ...any) error {
	if _, err := t.exec(ctx, q, args...); err != nil {
		if t.d.IsUniqueViolation(err) {
			return fmt.Errorf("%s: %w", what, store.ErrExists)
		}
		return fmt.Errorf("failed to insert %s: %w", what, err)
	}
	return nil
}

func (t *tx) LockModel(ctx context.Context, name string) (*store.Model, error) {
	return t.getModel(ctx, name, t.d.ForUpdate)
}

func (t *tx) CreateModel(ctx context.Context, m *store.Model) (bool, error) {
	res, err := t.exec(ctx, "INSERT INTO models ("+modelCols+") VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
		m.Name, m.Description, mustJSON(nonNil(m.Owners)), mustJSON(nonNil(m.Tags)), m.CreatedBy, nanos(m.CreatedAt), nanos(m.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("failed to insert model %s: %w", m.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *tx) UpdateModel(ctx context.Context, m *store.Model) error {
	res, err := t.exec(ctx, "UPDATE models SET description = ?, owners = ?, tags = ?, updated_at = ? WHERE name = ?",
		m.Description, mustJSON(nonNil(m.Owners)), mustJSON(nonNil(m.Tags)), nanos(m.UpdatedAt), m.Name)
	if err != nil {
		return fmt.Errorf("failed to update model %s: %w", m.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound("model", m.Name)
	}
	return nil
}

func (t *tx) CreateVersion(ctx context.Context, v *store.Version) error {
	sigs := v.Signatures
	if sigs == nil {
		sigs = []store.Signature{}
	}
	return t.insert(ctx, "version "+v.Model+"@"+v.Version,
		"INSERT INTO versions ("+versionCols+", digest, oms_root) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		v.Model, v.Version, mustJSON(&v.Manifest), mustJSON(sigs), v.URI, v.Format, v.ScanVerdict, v.RunID, v.CreatedBy, nanos(v.CreatedAt),
		v.Manifest.Digest.String(), v.Manifest.OMSRoot.String())
}

func (t *tx) AppendAlias(ctx context.Context, e *store.AliasEvent) error {
	err := t.queryRow(ctx, "INSERT INTO alias_events (model, alias, version, previous, actor, at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
		e.Model, e.Alias, e.Version, e.Previous, e.Actor, nanos(e.At), indexArg(e.LogIndex)).Scan(&e.Seq)
	if err != nil {
		return fmt.Errorf("failed to record alias %s@%s: %w", e.Model, e.Alias, err)
	}
	return nil
}

func (t *tx) CreateDeployment(ctx context.Context, d *store.Deployment) error {
	err := t.queryRow(ctx, "INSERT INTO deployments (model, alias, version, digest, alias_log_index, host, pid, started_at, actor, at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
		d.Model, d.Alias, d.Version, d.Digest.String(), d.AliasLogIndex, d.Host, d.PID, nanos(d.StartedAt), d.Actor, nanos(d.At), indexArg(d.LogIndex)).Scan(&d.ID)
	if err != nil {
		return fmt.Errorf("failed to record deployment of %s@%s: %w", d.Model, d.Version, err)
	}
	return nil
}

func (t *tx) SetAliasLogIndex(ctx context.Context, seq, index int64) error {
	return t.setLogIndex(ctx, "UPDATE alias_events SET log_index = ? WHERE seq = ?", "alias change", seq, index)
}

func (t *tx) SetDeploymentLogIndex(ctx context.Context, id, index int64) error {
	return t.setLogIndex(ctx, "UPDATE deployments SET log_index = ? WHERE id = ?", "deployment", id, index)
}

// setLogIndex runs update, which records the log index of the row with key
// id.
func (t *tx) setLogIndex(ctx context.Context, update, what string, id, index int64) error {
	res, err := t.exec(ctx, update, index, id)
	if err != nil {
		return fmt.Errorf("failed to record %s %d's log index: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return notFound(what, fmt.Sprint(id))
	}
	return nil
}

func (t *tx) CreateDataset(ctx context.Context, d *store.Dataset) error {
	var rows sql.NullInt64
	if d.Rows != nil {
		rows = sql.NullInt64{Int64: *d.Rows, Valid: true}
	}
	files := d.Files
	if files == nil {
		files = []store.DatasetFile{}
	}
	return t.insert(ctx, "dataset "+d.Name+"@"+d.Version,
		"INSERT INTO datasets ("+datasetCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		d.Name, d.Version, d.Digest.String(), d.DVCMD5, d.SourceURI, d.Size, rows, mustJSON(files), d.CreatedBy, nanos(d.CreatedAt))
}

func (t *tx) CreateEvidence(ctx context.Context, e *store.Evidence) error {
	cdg := ""
	if !e.ContractDigest.IsZero() {
		cdg = e.ContractDigest.String()
	}
	return t.insert(ctx, "evidence "+e.Digest.String()+" of dataset "+e.Dataset+"@"+e.DatasetVersion,
		"INSERT INTO dataset_evidence ("+evidenceCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.Dataset, e.DatasetVersion, e.Digest.String(), e.Name, e.Document, []byte(e.Signature.Bundle), e.Signature.Signer,
		mustJSON(nonNil(e.Signature.KeyIDs)), e.Contract, cdg, e.Outcome, e.Expectations, e.Failed, e.ToolVersion,
		nanos(e.CheckedAt), e.CreatedBy, nanos(e.CreatedAt))
}

func (t *tx) CreateRun(ctx context.Context, r *store.Run) error {
	params, metrics := r.Params, r.Metrics
	if params == nil {
		params = map[string]string{}
	}
	if metrics == nil {
		metrics = map[string]float64{}
	}
	if err := t.insert(ctx, "run "+r.ID,
		"INSERT INTO runs ("+runCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		r.ID, mustJSON(params), mustJSON(metrics), r.CodeRepo, r.CodeCommit, r.ImageDigest, string(r.EnvLock), r.OutputModel, r.OutputVersion, r.CreatedBy, nanos(r.CreatedAt)); err != nil {
		return err
	}
	for _, in := range r.Inputs {
		if err := t.insert(ctx, "input "+in.Name+"@"+in.Version+" of run "+r.ID,
			"INSERT INTO run_inputs (run_id, dataset_name, dataset_version) VALUES (?, ?, ?)", r.ID, in.Name, in.Version); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) CreateToken(ctx context.Context, tok *store.Token) error {
	return t.insert(ctx, "token "+tok.ID,
		"INSERT INTO tokens (id, hash, role, name, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		tok.ID, tok.Hash[:], tok.Role, tok.Name, tok.CreatedBy, nanos(tok.CreatedAt))
}

func (t *tx) CreateApproval(ctx context.Context, a *store.Approval) error {
	return t.insert(ctx, "approval of "+a.Model+"@"+a.Version+" by "+a.Approver,
		"INSERT INTO approvals (model, version, approver, comment, at) VALUES (?, ?, ?, ?, ?)",
		a.Model, a.Version, a.Approver, a.Comment, nanos(a.At))
}

func (t *tx) CreateVersionStatus(ctx context.Context, st *store.VersionStatus) error {
	return t.insert(ctx, "status of "+st.Model+"@"+st.Version,
		"INSERT INTO version_status (model, version, status, reason, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
		st.Model, st.Version, st.Status, st.Reason, st.Actor, nanos(st.At))
}

// AppendEvent keeps the event in the transaction: the journal is written
// at the end (writeEvents), with the log, and e.Seq set then.
func (t *tx) AppendEvent(ctx context.Context, e *store.Event) error {
	e.Seq = 0
	t.log.events = append(t.log.events, e)
	return nil
}

// writeEvents numbers the kept journal events, in the order they were
// appended, and writes them: SQLite at once, a statement each (no round
// trips in process); PostgreSQL with the log, in flush's one statement,
// their numbers reserved with the head's lock.
func (t *tx) writeEvents(ctx context.Context) error {
	evs := t.log.events
	if len(evs) == 0 {
		return nil
	}
	if t.d.WritableCTE {
		seqs, err := t.lockLogSeqs(ctx, len(evs))
		if err != nil {
			return err
		}
		for i, e := range evs {
			e.Seq = seqs[i]
		}
		t.log.numbered = append(t.log.numbered, evs...)
	} else {
		for _, e := range evs {
			err := t.queryRow(ctx, "INSERT INTO events (type, subject, actor, at, payload) VALUES (?, ?, ?, ?, ?) RETURNING seq",
				e.Type, e.Subject, e.Actor, nanos(e.At), eventPayload(e)).Scan(&e.Seq)
			if err != nil {
				return fmt.Errorf("failed to append event: %w", err)
			}
		}
	}
	// New array: a savepoint's mark may still refer to the old one.
	t.log.events = nil
	return nil
}

func eventPayload(e *store.Event) string {
	if len(e.Payload) == 0 {
		return "{}"
	}
	return string(e.Payload)
}

func (r reader) LogSize(ctx context.Context) (int64, error) {
	var n int64
	if err := r.queryRow(ctx, "SELECT size FROM log_head WHERE id = 1").Scan(&n); err != nil {
		return 0, fmt.Errorf("failed to read the log size: %w", err)
	}
	return n, nil
}

func (r reader) LogEntries(ctx context.Context, start int64, limit int) ([][]byte, error) {
	rows, err := r.query(ctx, "SELECT idx, entry FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?", start, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("failed to read log entries: %w", err)
	}
	defer rows.Close()
	out := [][]byte{}
	for rows.Next() {
		var idx int64
		var e []byte
		if err := rows.Scan(&idx, &e); err != nil {
			return nil, err
		}
		if idx != start+int64(len(out)) {
			return nil, fmt.Errorf("log entry %d: %w", start+int64(len(out)), store.ErrNotFound)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (r reader) LogHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	pos := make(map[int64][]int, len(indexes))
	var q strings.Builder
	q.WriteString("SELECT idx, hash FROM log_hashes WHERE idx IN (")
	args := make([]any, 0, len(indexes))
	for i, x := range indexes {
		if _, ok := pos[x]; !ok {
			if len(args) > 0 {
				q.WriteString(", ")
			}
			q.WriteString("?")
			args = append(args, x)
		}
		pos[x] = append(pos[x], i)
	}
	q.WriteString(")")
	rows, err := r.query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read log hashes: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if len(h) != 32 {
			return nil, fmt.Errorf("log hash %d: corrupt (%d bytes)", idx, len(h))
		}
		for _, i := range pos[idx] {
			copy(out[i][:], h)
		}
		found++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if found != len(args) {
		return nil, fmt.Errorf("log hashes: %d of %d missing: %w", len(args)-found, len(args), store.ErrNotFound)
	}
	return out, nil
}
