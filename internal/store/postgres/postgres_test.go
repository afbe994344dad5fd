package postgres_test

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/store/storetest"
)

var (
	cluster    *pgtest.Cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunTests(m, func(c *pgtest.Cluster, err error) { cluster, clusterErr = c, err }))
}

func newDB(t *testing.T) string {
	t.Helper()
	if clusterErr != nil {
		if errors.Is(clusterErr, pgtest.ErrUnavailable) && !pgtest.Required() {
			t.Skip(clusterErr)
		}
		t.Fatalf("PostgreSQL: %v", clusterErr)
	}
	url, err := cluster.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func open(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newDB(t)) })
}

func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		url := newDB(t)
		return open(t, url), open(t, url)
	})
}

// Servers starting at once on an empty database migrate it exactly once.
func TestConcurrentMigrations(t *testing.T) {
	url := newDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(t.Context(), url)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.SQL().QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != sqlstore.SchemaVersion {
		t.Fatalf("%d migrations recorded (%v), want %d", n, err, sqlstore.SchemaVersion)
	}
}
