package api

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/custody-ml/custody/internal/registry"
)

// BenchmarkIngestHTTP posts NDJSON batches of 1000 records from 8
// goroutines to an in-process server (httptest, loopback, SQLite with
// synchronous=FULL): for profiling the whole ingest path in one process
// (-cpuprofile). The end-to-end figure is cmd/custody's BenchmarkIngest.
func BenchmarkIngestHTTP(b *testing.B) {
	e := newEnv(b, Options{RatePerSecond: 1e6, RateBurst: 1e6})
	e.seed()
	pfx := e.registerBody("seed weights").Manifest.Digest.Hex()[:16]
	ing := e.tokens[registry.RoleIngester]
	body := func(i int) []byte {
		var buf bytes.Buffer
		for k := range 1000 {
			fmt.Fprintf(&buf, `{"ts":%d,"request_id":"b%d-%d","model":"m","model_sha256":"%s","features":{"f1":%d,"f2":"v%d","f3":0.5},"prediction":0.%d,"latency_ms":1.25}`+"\n",
				1_780_000_000+k, i, k, pfx, k, k%7, k%10)
		}
		return buf.Bytes()
	}
	var next sync.Mutex
	n := 0
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				next.Lock()
				i := n
				n++
				next.Unlock()
				if i >= b.N {
					return
				}
				req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/predictions", bytes.NewReader(body(i)))
				req.Header.Set("Authorization", "Bearer "+ing)
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("HTTP %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "predictions/s")
}
