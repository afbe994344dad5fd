package sqlite_test

import (
	"go.uber.org/goleak"
	"path/filepath"
	"testing"

	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "r.db"))
	})
}

func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		p := filepath.Join(t.TempDir(), "r.db")
		return open(t, p), open(t, p)
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := s.SQL().QueryRow("SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil || v != sqlstore.SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", v, err, sqlstore.SchemaVersion)
	}
	if _, err := s.SQL().Exec("INSERT INTO models (name, description, owners, tags, created_by, created_at, updated_at) VALUES ('m', '', '[]', '[]', 'x', 0, 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.OpenDir(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetModel(t.Context(), "m"); err != nil {
		t.Fatalf("model lost on reopen: %v", err)
	}
	var n int
	if err := s.SQL().QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != sqlstore.SchemaVersion {
		t.Fatalf("%d migrations recorded after reopen (%v), want %d", n, err, sqlstore.SchemaVersion)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SQL().Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

func TestSyncOption(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{Sync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	var mode int
	if err := s.SQL().QueryRow("PRAGMA synchronous").Scan(&mode); err != nil || mode != 1 {
		t.Fatalf("synchronous = %d, %v; want 1 (NORMAL)", mode, err)
	}
	s.Close()
	if _, err := sqlite.OpenDir(t.Context(), dir, sqlite.Options{Sync: "off"}); err == nil {
		t.Fatal("accepted sync=off")
	}
}
