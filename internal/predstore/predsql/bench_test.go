package predsql_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/predstore/predtest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppend appends batches of 1000 records to a SQLite store
// (synchronous=FULL), one caller: the store's own ceiling. It reports the
// process CPU time per record (records are built before the clock starts).
func BenchmarkAppend(b *testing.B) {
	s, err := predsql.OpenDir(b.Context(), b.TempDir(), predsql.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1.78e9, 0)
	batches := make([][]predstore.Record, b.N)
	for i := range batches {
		recs := make([]predstore.Record, 1000)
		for k := range recs {
			recs[k] = predtest.Rec(fmt.Sprintf("%08d-%04d", i, k), "m", t0.Add(time.Duration(i*1000+k)), 0.5)
		}
		batches[i] = recs
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Append(b.Context(), batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*1000), "cpu-µs/record")
}
