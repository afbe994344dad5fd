// Package sqlite is the embedded registry store: one SQLite database file
// (pure Go, modernc.org/sqlite), in WAL mode with full synchronous commits.
// It serializes writers (every write transaction begins IMMEDIATE), so
// several goroutines, or processes on one machine, may share a database.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/custody-ml/custody/internal/store/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the database file's name inside a data directory.
const FileName = "registry.db"

var dialect = sqlstore.Dialect{
	Name:      "sqlite",
	Serial:    "INTEGER PRIMARY KEY AUTOINCREMENT",
	Blob:      "BLOB",
	ForUpdate: "", // writers are serialized by BEGIN IMMEDIATE
	// Within a process, writers queue on a mutex; across processes,
	// BEGIN IMMEDIATE and the busy timeout serialize them.
	LocalSavepoints: true,
	IsUniqueViolation: func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	},
	IsRetryable: func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
	},
}

// Options tune the database.
type Options struct {
	// Sync is SQLite's synchronous setting: "full" (the default) fsyncs
	// the WAL at every commit, so an acknowledged change survives power
	// loss; "normal" fsyncs only at checkpoints: commits survive a crash
	// of the process but the last ones may be lost on power loss or an OS
	// crash (the database stays consistent either way). "normal" is about
	// twice as fast for registrations on a disk where fsync is slow.
	Sync string
}

// OpenDir opens (creating it if needed) the registry database in the data
// directory dir and migrates it to the current schema.
func OpenDir(ctx context.Context, dir string, opts Options) (*sqlstore.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create data directory: %w", err)
	}
	return OpenWith(ctx, filepath.Join(dir, FileName), opts)
}

// Open opens (creating it if needed) the SQLite database at path with the
// default options and migrates it to the current schema.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*sqlstore.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: database path %q must not contain '?' or '#'", path)
	}
	sync := "FULL"
	switch opts.Sync {
	case "", "full":
	case "normal":
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("sqlite: sync %q is neither full nor normal", opts.Sync)
	}
	dsn := "file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	s, err := sqlstore.Open(ctx, db, dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open %s: %w", path, err)
	}
	return s, nil
}
