package predsql_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/predstore/predtest"
)

// BenchmarkAppend appends batches of 1000 records to a SQLite store
// (synchronous=FULL), one caller: the store's own ceiling.
func BenchmarkAppend(b *testing.B) {
	s, err := predsql.OpenDir(b.Context(), b.TempDir(), predsql.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1.78e9, 0)
	recs := make([]predstore.Record, 1000)
	b.ResetTimer()
	for i := range b.N {
		for k := range recs {
			recs[k] = predtest.Rec(fmt.Sprintf("%08d-%04d", i, k), "m", t0.Add(time.Duration(i*1000+k)), 0.5)
		}
		if _, err := s.Append(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}
