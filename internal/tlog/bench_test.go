package tlog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/tlog"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// BenchmarkStateChanges measures logged state changes per second (model
// updates through the registry, each one transaction with its log append)
// with concurrent writers, on both stores.
//
//	go test ./internal/tlog -run XXX -bench StateChanges -benchtime 5000x -cpu 16
func BenchmarkStateChanges(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(t testing.TB) *sqlstore.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		for _, logged := range []bool{true, false} {
			name := st.name
			var hooks []registry.TxHook
			if logged {
				hooks = []registry.TxHook{tlog.Hook{}}
			} else {
				name += "-unlogged" // the baseline: the same changes without the log
			}
			b.Run(name, func(b *testing.B) {
				s := st.open(b)
				svc := registry.New(s, registry.Options{Hooks: hooks})
				admin := registry.Actor{Name: "bench", Role: registry.RoleAdmin}
				var n atomic.Int64
				if p, err := strconv.Atoi(os.Getenv("CUSTODY_BENCH_PARALLELISM")); err == nil && p > 0 {
					b.SetParallelism(p) // p x GOMAXPROCS writers
				}
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if _, err := svc.PutModel(context.Background(), admin, registry.ModelSpec{Name: "m" + strconv.FormatInt(i%64, 10), Description: strconv.FormatInt(i, 10)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "changes/s")
			})
		}
	}
}

// BenchmarkInclusionProof measures inclusion proofs on a log of
// $CUSTODY_BENCH_LOG_SIZE entries (default 1,000,000) stored in SQLite,
// bulk-loaded with the same stored-hash layout the appender writes.
func BenchmarkInclusionProof(b *testing.B) {
	size := int64(1_000_000)
	if v := os.Getenv("CUSTODY_BENCH_LOG_SIZE"); v != "" {
		size, _ = strconv.ParseInt(v, 10, 64)
	}
	s := bulkLog(b, size)
	l := tlog.New(s, nil)
	ctx := context.Background()
	_, root, err := l.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	c := tlog.Checkpoint{Size: size, Hash: root}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		i := rng.Int64N(size)
		p, _, err := l.ProveInclusion(ctx, i, size)
		if err != nil {
			b.Fatal(err)
		}
		if len(p) == 0 && size > 1 {
			b.Fatal("empty proof")
		}
	}
	b.StopTimer()
	i := rng.Int64N(size)
	p, _, _ := l.ProveInclusion(ctx, i, size)
	e, _ := l.Entry(ctx, i)
	if err := tlog.VerifyInclusion(c, i, e, p); err != nil {
		b.Fatal(err)
	}
}

func bulkLog(b *testing.B, size int64) *sqlstore.DB {
	b.Helper()
	s := openSQLite(b)
	db := s.SQL()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	insE, _ := tx.Prepare("INSERT INTO log_entries (idx, entry) VALUES (?, ?)")
	insH, _ := tx.Prepare("INSERT INTO log_hashes (idx, hash) VALUES (?, ?)")
	var hashes []xtlog.Hash
	mem := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for n := int64(0); n < size; n++ {
		e := fmt.Appendf(nil, `{"actor":"bench","data":{"n":%d},"event":%d,"subject":"s","time":"2026-01-01T00:00:00Z","type":"model.update"}`, n, n)
		hs, err := xtlog.StoredHashes(n, e, mem)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := insE.Exec(n, e); err != nil {
			b.Fatal(err)
		}
		for j, h := range hs {
			if _, err := insH.Exec(int64(len(hashes)+j), h[:]); err != nil {
				b.Fatal(err)
			}
		}
		hashes = append(hashes, hs...)
	}
	if _, err := tx.Exec("UPDATE log_head SET size = ?", size); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s
}
