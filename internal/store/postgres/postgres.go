// Package postgres is the scale-out registry store: all state in one
// PostgreSQL database (through github.com/jackc/pgx/v5), so that several
// custody servers can serve behind a load balancer. Writers on the same
// model are serialized with row locks (SELECT ... FOR UPDATE); transactions
// that fail with a serialization failure or deadlock are retried.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// migrationLockKey is the advisory lock held while migrating ("custody").
const migrationLockKey = 0x637573746f6479

var dialect = sqlstore.Dialect{
	Name:          "postgres",
	Numbered:      true,
	Serial:        "BIGSERIAL PRIMARY KEY",
	Blob:          "BYTEA",
	ForUpdate:     " FOR UPDATE",
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
	WritableCTE:   true,
	IsUniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
	IsRetryable: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
}

// DefaultMaxWriters is the default bound on one process's concurrent write
// transactions. Every write appends to the transparency log, whose head row
// is locked from the append to the commit, so writers beyond a few add no
// throughput: they only queue in the database, where on a small machine they
// also compete for the CPU with the writer holding the lock. Queueing them
// in the process instead keeps that writer running (docs/tlog.md,
// "Performance").
const DefaultMaxWriters = 4

// Options tune a store.
type Options struct {
	// MaxWriters bounds this process's concurrent write transactions
	// (0: DefaultMaxWriters). Reads are not limited.
	MaxWriters int
}

// Open connects to the database at url (a postgres:// URL or a libpq
// key=value string) and migrates it to the current schema. Concurrent
// servers migrating at once are serialized by an advisory lock.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	return OpenOptions(ctx, url, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, url string, o Options) (*sqlstore.DB, error) {
	if o.MaxWriters < 0 {
		return nil, fmt.Errorf("invalid maximum of concurrent writers %d", o.MaxWriters)
	}
	cfg, err := pgconnConfig(url)
	if err != nil {
		return nil, err
	}
	d := dialect
	d.MaxWriters = o.MaxWriters
	if d.MaxWriters == 0 {
		d.MaxWriters = DefaultMaxWriters
	}
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	s, err := sqlstore.Open(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the PostgreSQL store: %w", err)
	}
	return s, nil
}
