package predsql_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/predstore/predtest"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
)

var (
	cluster    *pgtest.Cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunTests(m, func(c *pgtest.Cluster, err error) { cluster, clusterErr = c, err }))
}

func TestSQLite(t *testing.T) {
	predtest.Run(t, func(t *testing.T) predstore.Store {
		s, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgres(t *testing.T) {
	predtest.Run(t, func(t *testing.T) predstore.Store {
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
		s, err := predsql.OpenPostgres(t.Context(), url, predsql.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Reopening finds what was committed, and migrating twice is a no-op.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := predsql.OpenDir(t.Context(), dir, predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), []predstore.Record{predtest.Rec("a", "m", time.Unix(1e9, 0), 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = predsql.OpenDir(t.Context(), dir, predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Get(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), []predstore.Record{predtest.Rec("b", "m", time.Unix(1e9, 0), 1)}); err != nil {
		t.Fatal(err)
	}
}

// Appends racing with Close either complete or fail with an error; none
// hangs.
func TestCloseWhileAppending(t *testing.T) {
	s, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(t.Context(), []predstore.Record{predtest.Rec(fmt.Sprintf("%d-%d", w, i), "m", time.Unix(1e9, 0), 1)})
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
