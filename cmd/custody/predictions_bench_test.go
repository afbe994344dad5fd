package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func pct(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkIngest is the ingest load generator: CUSTODY_BENCH_CLIENTS
// concurrent clients (default 8) post NDJSON batches of
// CUSTODY_BENCH_BATCH records (default 1000; gzip if CUSTODY_BENCH_GZIP=1,
// compressed by the client per request, which costs client CPU)
// over loopback to a real `custody server` on SQLite (synchronous=FULL)
// for CUSTODY_BENCH_SECONDS (default 10). It reports durable predictions/s
// and the p50/p99 acknowledgement latency, and as the baseline the rate of
// the same records appended straight to a prediction store in the same
// process (no HTTP, no parsing), with the ratio.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 1x ./cmd/custody
func BenchmarkIngest(b *testing.B) {
	clients, per, secs := envInt("CUSTODY_BENCH_CLIENTS", 8), envInt("CUSTODY_BENCH_BATCH", 1000), envInt("CUSTODY_BENCH_SECONDS", 10)
	gz := os.Getenv("CUSTODY_BENCH_GZIP") == "1"
	e := newPredictionEnv(b)
	srv, url, _ := startServer(b, e.dir, "--trusted-key", e.keyPub)
	e.register(b, url)
	ctx := context.Background()

	// Baseline: the store alone, same batch size, same concurrency.
	base := func() float64 {
		st, err := predsql.OpenDir(ctx, b.TempDir(), predsql.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		var n int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		deadline := time.Now().Add(time.Duration(secs) * time.Second / 2)
		start := time.Now()
		for w := range clients {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					in, _ := predict.ParseBatch(bytes.NewReader(batch(fmt.Sprintf("w%d-%d", w, i), per, e.digest)), true, false, predict.DefaultLimits())
					recs := make([]predstore.Record, len(in))
					for k := range in {
						recs[k] = in[k].Record
						recs[k].Version, recs[k].Digest = "1", e.digest
					}
					if _, err := st.Append(ctx, recs); err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					n += int64(per)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}()

	// Pre-build the bodies so the load generator costs little.
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = batch("x", per, e.digest)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		mu   sync.Mutex
		lats []time.Duration
		n    int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	cpu0 := procCPU(b, srv.Process.Pid)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				// Unique request ids: rewrite the prefix "x-" in place.
				body := bytes.ReplaceAll(bodies[i%len(bodies)], []byte(`"x-`), fmt.Appendf(nil, `"c%d-%d-`, w, i))
				if gz {
					var z bytes.Buffer
					zw := gzip.NewWriter(&z)
					zw.Write(body)
					zw.Close()
					body = z.Bytes()
				}
				req, _ := http.NewRequest("POST", url+"/api/v1/predictions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.ingester)
				req.Header.Set("Content-Type", "application/x-ndjson")
				if gz {
					req.Header.Set("Content-Encoding", "gzip")
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != 200 {
					b.Errorf("HTTP %d: %s", resp.StatusCode, buf.Bytes()[:min(200, buf.Len())])
					return
				}
				mu.Lock()
				lats = append(lats, d)
				n += int64(per)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu := procCPU(b, srv.Process.Pid) - cpu0
	b.StopTimer()
	rate := float64(n) / el.Seconds()
	b.ReportMetric(rate, "predictions/s")
	b.ReportMetric(float64(pct(lats, 0.99).Microseconds())/1000, "p99_ack_ms")
	b.ReportMetric(float64(pct(lats, 0.50).Microseconds())/1000, "p50_ack_ms")
	b.ReportMetric(base, "baseline_store_predictions/s")
	fmt.Printf("ingest over HTTP: %d records in %.1fs = %.0f predictions/s durable (batch %d, %d clients, gzip %v); ack p50 %v p99 %v\n",
		n, el.Seconds(), rate, per, clients, gz, pct(lats, 0.5), pct(lats, 0.99))
	fmt.Printf("baseline (store.Append in process, parsing included, no HTTP): %.0f predictions/s; HTTP/baseline ratio %.2f\n", base, rate/base)
	perRec := cpu.Seconds() / float64(n) * 1e6
	b.ReportMetric(perRec, "server_cpu_us/record")
	fmt.Printf("server CPU: %.1fs for %d records = %.1f µs/record (%.2f cores busy on average; machine load average %s)\n",
		cpu.Seconds(), n, perRec, cpu.Seconds()/el.Seconds(), loadavg())
	srv.Process.Kill()
	srv.Wait()
}

// BenchmarkLookup fills a prediction store with CUSTODY_BENCH_LOOKUP_N
// records (default 10,000,000) straight through the Store in big batches,
// then looks random request ids up through a real server's API
// (GET /api/v1/predictions/{id}) and reports p50/p99 latency; the
// baseline is the same lookups on an empty-ish store (10,000 records).
//
//	go test -run '^$' -bench BenchmarkLookup -benchtime 1x -timeout 1h ./cmd/custody
func BenchmarkLookup(b *testing.B) {
	total := envInt("CUSTODY_BENCH_LOOKUP_N", 10_000_000)
	lookups := envInt("CUSTODY_BENCH_LOOKUPS", 20_000)
	measure := func(n int) (time.Duration, time.Duration) {
		e := newPredictionEnv(b)
		srv, url, _ := startServer(b, e.dir, "--trusted-key", e.keyPub)
		defer func() { srv.Process.Kill(); srv.Wait() }()
		e.register(b, url)
		ctx := context.Background()
		st, err := predsql.OpenDir(ctx, e.dir, predsql.Options{MaxGroup: 1})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		const chunk = 50_000
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		recs := make([]predstore.Record, chunk)
		lat := 2.0
		for done := 0; done < n; done += chunk {
			k := min(chunk, n-done)
			for i := range k {
				id := done + i
				recs[i] = predstore.Record{RequestID: fmt.Sprintf("req-%09d", id), TS: t0.Add(time.Duration(id) * time.Millisecond),
					Model: "m", Version: "1", Digest: e.digest,
					Features:   fmt.Appendf(nil, `{"f1":%d,"f2":"v%d","f3":0.5}`, id, id%7),
					Prediction: fmt.Appendf(nil, "%g", float64(id%100)/100), LatencyMS: &lat}
			}
			if _, err := st.Append(ctx, recs[:k]); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if n >= 1_000_000 {
			fmt.Printf("loaded %d records through the Store in %v (%.0f/s)\n", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
		}
		c, _ := client.New(url, e.admin)
		lats := make([]time.Duration, 0, lookups)
		r := rand.New(rand.NewPCG(1, 2))
		for range 200 { // warm the connection
			c.GetPrediction(ctx, fmt.Sprintf("req-%09d", r.IntN(n)))
		}
		for range lookups {
			id := fmt.Sprintf("req-%09d", r.IntN(n))
			t0 := time.Now()
			l, err := c.GetPrediction(ctx, id)
			lats = append(lats, time.Since(t0))
			if err != nil || l.Record.RequestID != id {
				b.Fatalf("lookup %s: %v", id, err)
			}
		}
		return pct(lats, 0.5), pct(lats, 0.99)
	}
	bp50, bp99 := measure(10_000)
	b.ResetTimer()
	p50, p99 := measure(total)
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	fmt.Printf("lookup by request id in %d records through the API: p50 %v p99 %v; baseline (10,000 records) p50 %v p99 %v; p99 ratio %.2f\n",
		total, p50, p99, bp50, bp99, float64(p99)/float64(bp99))
}

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 (1-based) of the whole line, in clock ticks (100/s).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}
