package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

type discardSink struct{}

func (discardSink) Enqueue([]byte) bool { return true }

// BenchmarkProxy compares a KServe call to an in-process upstream directly
// (baseline), through a bare httputil.ReverseProxy (the cost of the extra
// hop) and through the proxy, extraction included, over loopback.
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
	// The floor: a bare ReverseProxy, no capture, no headers, no extraction.
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	defer bare.Close()
	body := inferBody([]float64{35, 2, 0, 1})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, tc := range []struct{ name, url string }{{"direct", up.URL}, {"bare-reverseproxy", bare.URL}, {"proxy", ps.URL}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
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
