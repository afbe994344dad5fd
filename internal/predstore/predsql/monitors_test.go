package predsql_test

import (
	"errors"
	"testing"

	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/monitor/watch/watchtest"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
)

// The prediction database is a monitor SummaryStore on both engines.
func TestSummaryStoreSQLite(t *testing.T) {
	watchtest.TestStore(t, func(t *testing.T) watch.SummaryStore {
		s, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSummaryStorePostgres(t *testing.T) {
	watchtest.TestStore(t, func(t *testing.T) watch.SummaryStore {
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
		t.Cleanup(func() { s.Close() })
		return s
	})
}
