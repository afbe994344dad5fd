package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

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

// MaxWriters bounds the write transactions running at once; the others wait
// in the process, and one whose context ends while waiting gives up without
// running.
func TestMaxWriters(t *testing.T) {
	url := newDB(t)
	if _, err := postgres.OpenOptions(t.Context(), url, postgres.Options{MaxWriters: -1}); err == nil {
		t.Fatal("a negative MaxWriters was accepted")
	}
	s, err := postgres.OpenOptions(t.Context(), url, postgres.Options{MaxWriters: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu          sync.Mutex
		running, hi int
		wg          sync.WaitGroup
	)
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
				mu.Lock()
				running++
				hi = max(hi, running)
				mu.Unlock()
				entered <- struct{}{}
				<-release
				_, err := tx.CreateModel(ctx, &store.Model{Name: fmt.Sprintf("m%d", i), CreatedAt: time.Now(), UpdatedAt: time.Now()})
				mu.Lock()
				running--
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	<-entered
	<-entered
	// Two writers are inside; a third waits for a slot until its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err = s.Update(ctx, func(context.Context, store.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Fatalf("a writer beyond the limit: err %v, ran %v; want it to wait and give up", err, ran)
	}
	close(release)
	wg.Wait()
	if hi != 2 {
		t.Fatalf("%d write transactions ran at once, want 2", hi)
	}
	ms, err := s.ListModels(t.Context(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("%d models, want 8", len(ms))
	}
}
