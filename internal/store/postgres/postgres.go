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
	Pipeline:      true,
	IsUniqueViolation: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
	IsRetryable: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
}

// Open connects to the database at url (a postgres:// URL or a libpq
// key=value string) and migrates it to the current schema. Concurrent
// servers migrating at once are serialized by an advisory lock.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	cfg, err := pgconnConfig(url)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	s, err := sqlstore.Open(ctx, db, dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the PostgreSQL store: %w", err)
	}
	return s, nil
}
