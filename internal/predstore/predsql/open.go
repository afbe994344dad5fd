package predsql

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// FileName is the prediction database's name inside a data directory.
const FileName = "predictions.db"

// OpenDir opens (creating it) the SQLite prediction database in the data
// directory dir.
func OpenDir(ctx context.Context, dir string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory: %w", err)
	}
	return OpenSQLite(ctx, filepath.Join(dir, FileName), opts)
}

// OpenSQLite opens (creating it) the SQLite prediction database at path:
// WAL mode, synchronous=FULL (every commit fsyncs the WAL). Statement
// journals stay in memory (temp_store) and the WAL is checkpointed every
// 64 MiB rather than every 4 MiB: both measured to matter for ingest.
func OpenSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("predsql: database path %q must not contain '?' or '#'", path)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(16384)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	d := dialect{name: "sqlite", serial: "INTEGER PRIMARY KEY", blob: "BLOB", maxRows: 1000, insertIgnore: "INSERT OR IGNORE"}
	s, err := open(ctx, db, d, opts, "")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	return s, nil
}

// migrationLock serializes servers migrating one PostgreSQL database
// ("custpred").
const migrationLock = "SELECT pg_advisory_xact_lock(7166476264424932452)"

// OpenPostgres opens the prediction tables in the PostgreSQL database at
// url (creating them).
func OpenPostgres(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL URL: %w", err)
	}
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	d := dialect{name: "postgres", numbered: true, serial: "BIGSERIAL PRIMARY KEY", blob: "BYTEA", maxRows: 1000, insertIgnore: "INSERT", onConflict: " ON CONFLICT (request_id) DO NOTHING RETURNING request_id", returning: true}
	s, err := open(ctx, db, d, opts, migrationLock)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the PostgreSQL prediction store: %w", err)
	}
	return s, nil
}
