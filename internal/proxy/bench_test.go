package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type discardSink struct{}

func (discardSink) Enqueue([]byte) bool { return true }

// BenchmarkProxy compares a KServe call to an in-process upstream directly
// (baseline), through a bare httputil.ReverseProxy (the cost of the extra
// hop), through the proxy (its upstream client), extraction included, and
// through the proxy with http.Transport as before, over loopback.
// cpu-µs/op is the process's CPU time per exchange: client, proxy and
// upstream together.
func BenchmarkProxy(b *testing.B) {
	resp := []byte(`{"model_name":"win-probability","outputs":[{"name":"probabilities","shape":[1,2],"datatype":"FP64","data":[0.38,0.62]},{"name":"label","shape":[1],"datatype":"BYTES","data":["win"]}]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := New(Options{Upstream: u, Model: "win-probability", ModelDigest: testDigest, Sink: discardSink{}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ps := httptest.NewServer(p)
	defer ps.Close()
	pt, err := New(Options{Upstream: u, Model: "win-probability", ModelDigest: testDigest, Sink: discardSink{}, Transport: stdTransport()})
	if err != nil {
		b.Fatal(err)
	}
	defer pt.Close()
	pts := httptest.NewServer(pt)
	defer pts.Close()
	// The floor: a bare ReverseProxy, no capture, no headers, no extraction.
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	defer bare.Close()
	body := inferBody([]float64{35, 2, 0, 1})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, tc := range []struct{ name, url string }{{"direct", up.URL}, {"bare-reverseproxy", bare.URL}, {"proxy", ps.URL}, {"proxy-http.Transport", pts.URL}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0, n := cpuTime(), 0
			defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/op") }()
			for b.Loop() {
				n++
				resp, err := client.Post(tc.url+inferPath, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// benchRequest is the bench/proxyload request: one row, one tensor per
// feature.
var benchRequest = []byte(`{"inputs":[{"name":"elo_diff","shape":[1],"datatype":"FP64","data":[-41.87344170403657]},{"name":"rest_days","shape":[1],"datatype":"FP64","data":[3]},{"name":"injuries","shape":[1],"datatype":"FP64","data":[0]},{"name":"home","shape":[1],"datatype":"FP64","data":[1]}]}`)

// benchResponse is what the demo model server answers to it.
var benchResponse = []byte(`{"model_name":"win-probability","outputs":[{"name":"probabilities","shape":[1,2],"datatype":"FP64","data":[0.4521373455212466,0.5478626544787534]},{"name":"label","shape":[1],"datatype":"BYTES","data":["win"]}]}`)

// cannedUpstream answers every request with benchResponse without a
// network hop, so the handler benchmark measures the proxy's own code.
type cannedUpstream struct{}

func (cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(benchResponse))}},
		ContentLength: int64(len(benchResponse)),
		Body:          io.NopCloser(bytes.NewReader(benchResponse)),
		Request:       r,
	}, nil
}

type countSink struct{ n atomic.Int64 }

func (s *countSink) Enqueue([]byte) bool { s.n.Add(1); return true }

// BenchmarkHandler is the proxy's CPU per request without the network:
// ServeHTTP against an in-memory upstream, plus the background extraction
// and record encoding (waited for, so nothing is dropped). cpu-µs/op is the
// process's user+system time per request (getrusage), which includes the
// extraction goroutine and the garbage collector.
func BenchmarkHandler(b *testing.B) {
	m, err := ParseMapping([]byte(`{"classes": ["loss", "win"], "output": "probabilities", "feature_names": ["elo_diff", "rest_days", "injuries", "home"]}`))
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	sink := &countSink{}
	p, err := New(Options{Upstream: u, Model: "win-probability", ModelDigest: testDigest, Mapping: m, Sink: sink, Transport: cannedUpstream{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, inferPath, bytes.NewReader(benchRequest))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
		if n++; n%1000 == 0 {
			// Let extraction catch up (its queue holds 4096), without
			// spinning: the wait must not count as CPU.
			for sink.n.Load() < int64(n) {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	p.Close()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/op")
	if got := sink.n.Load(); got != int64(n) {
		b.Fatalf("%d records for %d requests", got, n)
	}
}

// BenchmarkRecord is the off-path work for one exchange: KServe extraction
// and the record's JSON encoding.
func BenchmarkRecord(b *testing.B) {
	m, err := ParseMapping([]byte(`{"classes": ["loss", "win"], "output": "probabilities", "feature_names": ["elo_diff", "rest_days", "injuries", "home"]}`))
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("http://127.0.0.1:1")
	sink := &countSink{}
	p, err := New(Options{Upstream: u, Model: "win-probability", ModelDigest: testDigest, Mapping: m, Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	j := job{path: inferPath, id: "0123456789abcdef0123456789abcdef", start: time.Now(), upDur: 300 * time.Microsecond, req: benchRequest, resp: benchResponse}
	b.ReportAllocs()
	for b.Loop() {
		p.record(j)
	}
	if sink.n.Load() == 0 {
		b.Fatal("no record")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
