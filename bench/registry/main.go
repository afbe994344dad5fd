// Command registry benchmarks the registry server end to end, over HTTP on
// loopback, against SQLite and PostgreSQL:
//
//   - registrations/s: N signed versions registered by C concurrent clients
//     (each verified by the server, one transaction each);
//   - `model show` latency (p50/p99) under closed-loop load from C clients;
//   - alias resolution latency (p50/p99) under an open-loop load of R req/s.
//
// Usage: go run ./bench/registry [-store sqlite|postgres|both] [-n 10000]
// [-c 16] [-rate 500] [-duration 10s]. PostgreSQL runs on a throwaway
// cluster (internal/store/postgres/pgtest, fsync off: figures are for the
// server and queries, not the disk).
package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/custody-ml/custody/internal/trust"
)

func main() {
	which := flag.String("store", "both", "sqlite, postgres or both")
	n := flag.Int("n", 10000, "versions to register")
	c := flag.Int("c", 16, "concurrent clients")
	rate := flag.Int("rate", 500, "alias resolutions per second (open loop)")
	dur := flag.Duration("duration", 10*time.Second, "duration of each latency phase")
	sqliteSync := flag.String("sqlite-sync", "full", "SQLite synchronous setting: full or normal")
	flag.Parse()
	ctx := context.Background()
	for _, s := range []string{"sqlite", "postgres"} {
		if *which != "both" && *which != s {
			continue
		}
		st, cleanup, err := open(ctx, s, *sqliteSync)
		if err != nil {
			log.Fatalf("%s: %v", s, err)
		}
		label := s
		if s == "sqlite" {
			label += "/" + *sqliteSync
		}
		if err := bench(ctx, label, st, *n, *c, *rate, *dur); err != nil {
			log.Fatalf("%s: %v", s, err)
		}
		cleanup()
	}
}

func open(ctx context.Context, which, sqliteSync string) (store.Store, func(), error) {
	if which == "sqlite" {
		dir, err := os.MkdirTemp("", "custody-bench-")
		if err != nil {
			return nil, nil, err
		}
		st, err := sqlite.OpenWith(ctx, filepath.Join(dir, "registry.db"), sqlite.Options{Sync: sqliteSync})
		return st, func() { st.Close(); os.RemoveAll(dir) }, err
	}
	cl, err := pgtest.Start()
	if err != nil {
		return nil, nil, err
	}
	url, err := cl.NewDatabase(ctx)
	if err != nil {
		cl.Stop()
		return nil, nil, err
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		cl.Stop()
		return nil, nil, err
	}
	return st, func() { st.Close(); cl.Stop() }, nil
}

// manifest returns a valid single-file manifest for synthetic content i.
func manifest(i int) *digest.Manifest {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(i))
	sum := sha256.Sum256(buf[:])
	rs := []digest.Resource{{Name: "model.bin", Algorithm: "sha256", Digest: hex.EncodeToString(sum[:])}}
	root, _ := digest.OMSRoot(rs)
	return &digest.Manifest{Kind: digest.KindFile, Name: "model.bin", Digest: sum, OMSRoot: root,
		Serialization: digest.Serialization{Method: "files", HashType: "sha256"}, Resources: rs,
		Files: []digest.File{{Name: "model.bin", Size: 8}}}
}

func bench(ctx context.Context, name string, st store.Store, n, conc, rate int, dur time.Duration) error {
	key, err := oms.GenerateKey(oms.AlgoECDSAP256)
	if err != nil {
		return err
	}
	ver, _ := trust.NewKeys([]crypto.PublicKey{key.Public()})
	svc := registry.New(st, registry.Options{Verifier: ver, Hooks: []registry.TxHook{tlog.Hook{}}})
	h, err := api.New(svc, api.Options{RatePerSecond: 1e9, RateBurst: 1e9})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	tok, _, err := svc.CreateToken(ctx, registry.Actor{Name: "bench", Role: registry.RoleAdmin}, registry.RoleAdmin, "bench")
	if err != nil {
		return err
	}
	cl, err := client.New("http://"+ln.Addr().String(), tok)
	if err != nil {
		return err
	}
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = 256

	// Bodies are signed up front: the client's signing is not the server's cost.
	const models = 10
	bodies := make([]*api.RegisterBody, n)
	for i := range bodies {
		m := manifest(i)
		b, err := trust.SignManifest(ctx, key, m)
		if err != nil {
			return err
		}
		bodies[i] = &api.RegisterBody{Manifest: *m, Signatures: []json.RawMessage{b}, URI: "s3://bench/model", Format: "safetensors"}
	}
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, _, err := cl.RegisterVersion(ctx, fmt.Sprintf("model-%d", i%models), fmt.Sprint(i/models), bodies[i]); err != nil {
					failed.Add(1)
					log.Printf("register %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("%-13s register: %d versions in %.2fs = %.0f registrations/s (%d clients, %d failed)\n",
		name, n, el.Seconds(), float64(n)/el.Seconds(), conc, failed.Load())
	for m := range models {
		if _, err := cl.SetAlias(ctx, fmt.Sprintf("model-%d", m), "production", "0"); err != nil {
			return err
		}
	}

	// model show, closed loop.
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			var mine []time.Duration
			for time.Now().Before(deadline) {
				i := r.IntN(n)
				t0 := time.Now()
				if _, err := cl.GetVersion(ctx, fmt.Sprintf("model-%d", i%models), fmt.Sprint(i/models)); err != nil {
					failed.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	report(name, "model show", lat, dur, fmt.Sprintf("%d clients, closed loop", conc))

	// Alias resolution, open loop at rate req/s.
	lat = lat[:0]
	interval := time.Second / time.Duration(rate)
	total := int(dur / interval)
	t0 := time.Now()
	for i := range total {
		at := t0.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			if _, err := cl.ResolveAlias(ctx, fmt.Sprintf("model-%d", i%models), "production", time.Time{}); err != nil {
				failed.Add(1)
			}
			d := time.Since(s)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	report(name, "alias resolve", lat, time.Since(t0), fmt.Sprintf("open loop at %d req/s", rate))
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d requests failed", f)
	}
	return nil
}

func report(store, what string, lat []time.Duration, el time.Duration, how string) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("%-13s %s: %d requests, %.0f req/s, p50 %.2f ms, p99 %.2f ms (%s)\n", store, what, len(lat),
		float64(len(lat))/el.Seconds(), float64(q(0.50).Microseconds())/1000, float64(q(0.99).Microseconds())/1000, how)
}
