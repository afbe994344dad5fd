package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingRT counts the requests that reach the fallback.
type countingRT struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func (c *countingRT) CloseIdleConnections() {
	c.rt.(*http.Transport).CloseIdleConnections()
}

// stdTransport is the transport the proxy used before (and falls back to).
func stdTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.DisableCompression = 1024, 1024, true
	return t
}

// pair is the upstream client and http.Transport, side by side.
type pair struct {
	lean     *upstreamClient
	fallback *countingRT
	std      *http.Transport
}

func newPair(t *testing.T, base string) *pair {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{std: stdTransport(), fallback: &countingRT{rt: stdTransport()}}
	p.lean = newUpstreamClient(u, stdTransport())
	p.lean.fallback = p.fallback
	t.Cleanup(func() { p.lean.CloseIdleConnections(); p.std.CloseIdleConnections() })
	return p
}

// outcome is what a caller of RoundTrip sees.
type outcome struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
	Err     string
	Infos   []int // 1xx codes, through httptrace
}

func roundTrip(rt http.RoundTripper, newReq func() *http.Request) outcome {
	req := newReq()
	var o outcome
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { o.Infos = append(o.Infos, code); return nil },
	})
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		o.Err = "error"
		return o
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		o.Err = "body error"
	}
	o.Status, o.Body, o.Trailer = resp.StatusCode, string(b), resp.Trailer
	o.Header = resp.Header.Clone()
	o.Header.Del("Date")
	return o
}

// same sends the request through both and fails unless they agree; it
// returns the upstream client's outcome.
func (p *pair) same(t *testing.T, newReq func() *http.Request) outcome {
	t.Helper()
	want := roundTrip(p.std, newReq)
	got := roundTrip(p.lean, newReq)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("upstream client:\n%+v\nhttp.Transport:\n%+v", got, want)
	}
	return got
}

func request(method, target string, body []byte, hdr ...string) func() *http.Request {
	return func() *http.Request {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, target, r)
		if err != nil {
			panic(err)
		}
		req.GetBody = nil // as a server's request forwarded by ReverseProxy
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		return req
	}
}

// seenRequest is what the upstream received.
type seenRequest struct {
	Method, URI, Host, Body string
	Header                  http.Header
	ContentLength           int64
	TE                      []string
}

// recorder is an upstream handler that records what it receives and
// answers through answer.
type recorder struct {
	mu    sync.Mutex
	seen  []seenRequest
	conns atomic.Int64 // connections accepted
}

func (rec *recorder) server(t *testing.T, answer http.HandlerFunc) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{r.Method, r.RequestURI, r.Host, string(b), r.Header.Clone(), r.ContentLength, r.TransferEncoding})
		rec.mu.Unlock()
		answer(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func (rec *recorder) last(n int) []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen[len(rec.seen)-n:]...)
}

// The upstream client and http.Transport give the same answers, and the
// upstream sees the same requests, for the shapes of exchange the proxy
// forwards.
func TestUpstreamDifferential(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Up", r.URL.Path)
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		switch r.URL.Path {
		case "/fixed":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		case "/chunked":
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
		case "/empty":
		case "/head":
			w.Header().Set("Content-Length", "42")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/big":
			io.WriteString(w, big)
		case "/echo":
			w.Write([]byte(r.Header.Get("X-Echo")))
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "data")
			w.Header().Set("X-Sum", "7")
		case "/1xx":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "created")
		case "/error":
			http.Error(w, "nope", http.StatusServiceUnavailable)
		}
	})
	p := newPair(t, srv.URL)
	base := srv.URL
	cases := []struct {
		name    string
		req     func() *http.Request
		fallbck bool // goes to the fallback transport
	}{
		{"fixed", request("POST", base+"/fixed", []byte(`{"inputs":[]}`), "Content-Type", "application/json", "X-Request-Id", "abc"), false},
		{"get", request("GET", base+"/fixed?q=1&r=%2F", nil, "Accept", "*/*", "User-Agent", "curl/8"), false},
		{"chunked response", request("GET", base+"/chunked", nil), false},
		{"empty", request("GET", base+"/empty", nil), false},
		{"empty post", request("POST", base+"/empty", []byte{}), false},
		{"head", request("HEAD", base+"/head", nil), false},
		{"204", request("DELETE", base+"/204", nil), false},
		{"304", request("GET", base+"/304", nil, "If-None-Match", `"x"`), false},
		{"server closes", request("GET", base+"/close", nil), false},
		{"big response", request("GET", base+"/big", nil), false},
		{"body at the limit", request("PUT", base+"/echo", bytes.Repeat([]byte("x"), maxLeanBody), "X-Echo", "max"), false},
		{"big request body", request("PUT", base+"/echo", []byte(big), "X-Echo", "big"), true},
		{"chunked request", func() *http.Request {
			r := request("POST", base+"/echo", nil, "X-Echo", "stream")()
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("streamed")), -1
			return r
		}, true},
		{"expect", request("POST", base+"/echo", []byte("x"), "Expect", "100-continue"), true},
		{"trailer", request("GET", base+"/trailer", nil), false},
		{"1xx", request("GET", base+"/1xx", nil), false},
		{"error status", request("GET", base+"/error", nil), false},
		{"multi header", request("GET", base+"/echo", nil, "X-Echo", " padded\t", "X-A", "1", "X-A", "2", "x-lower", "v"), false},
		{"no user agent", func() *http.Request {
			r := request("GET", base+"/empty", nil)()
			r.Header["User-Agent"] = []string{""}
			return r
		}, false},
		{"host header", func() *http.Request {
			r := request("GET", base+"/empty", nil)()
			r.Host = "models.example:8080"
			return r
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fb := p.fallback.n.Load()
			o := p.same(t, tc.req)
			if o.Err != "" {
				t.Fatalf("failed: %+v", o)
			}
			if used := p.fallback.n.Load() > fb; used != tc.fallbck {
				t.Fatalf("fallback used: %v", used)
			}
			// The upstream saw the same request from both.
			s := rec.last(2)
			if !reflect.DeepEqual(s[0], s[1]) {
				t.Fatalf("upstream saw\n%+v\nfrom http.Transport and\n%+v\nfrom the upstream client", s[0], s[1])
			}
		})
	}
	if o := p.same(t, request("GET", base+"/trailer", nil)); o.Trailer.Get("X-Sum") != "7" {
		t.Fatalf("trailer %v", o.Trailer)
	}
	if o := p.same(t, request("GET", base+"/1xx", nil)); len(o.Infos) != 1 || o.Infos[0] != 103 || o.Status != 201 {
		t.Fatalf("1xx %+v", o)
	}
}

// Sequential exchanges share one connection; one the server closes
// (Connection: close) or whose body the caller abandons is not reused.
func TestUpstreamConnectionReuse(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, strings.Repeat("y", 10000))
	})
	p := newPair(t, srv.URL)
	for range 20 {
		if o := roundTrip(p.lean, request("POST", srv.URL+"/", []byte("x"))); o.Err != "" || o.Status != 200 {
			t.Fatalf("%+v", o)
		}
	}
	if n := rec.conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential requests", n)
	}
	roundTrip(p.lean, request("GET", srv.URL+"/close", nil))
	roundTrip(p.lean, request("GET", srv.URL+"/", nil))
	if n := rec.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a new one after Connection: close", n)
	}
	// An abandoned body closes its connection.
	resp, err := p.lean.RoundTrip(request("GET", srv.URL+"/", nil)())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 10)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	roundTrip(p.lean, request("GET", srv.URL+"/", nil))
	if n := rec.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want a new one after an early Close", n)
	}
	if p.fallback.n.Load() != 0 {
		t.Fatal("fallback used")
	}
}

// Many goroutines share the pool (run with -race).
func TestUpstreamConcurrent(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("X-N")))
	})
	p := newPair(t, srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				n := fmt.Sprint(g*1000 + i)
				o := roundTrip(p.lean, request("POST", srv.URL+"/", []byte(n), "X-N", n))
				if o.Err != "" || o.Body != n {
					errs <- fmt.Errorf("request %s: %+v", n, o)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := rec.conns.Load(); n > 16 {
		t.Fatalf("%d connections for 16 concurrent callers", n)
	}
}

// rawServer is an upstream speaking HTTP/1.1 by hand, so a test decides
// when connections close. handle gets each accepted connection and its
// index.
func rawServer(t *testing.T, handle func(i int, c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(i, c, bufio.NewReader(c))
			})
		}
	})
	return "http://" + ln.Addr().String()
}

func answer(c net.Conn, body string) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// A connection the server closed while it sat idle is noticed before it
// is used: the next request, a POST that must not be retried, goes out
// once, on a new connection.
func TestUpstreamServerClosedIdle(t *testing.T) {
	var posts atomic.Int64
	closed := make(chan struct{})
	base := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if req.Method == "POST" {
				posts.Add(1)
			}
			answer(c, "ok")
			if i == 0 {
				c.Close() // no Connection: close: the client learns it from the socket
				close(closed)
				return
			}
		}
	})
	p := newPair(t, base)
	if o := roundTrip(p.lean, request("GET", base+"/", nil)); o.Body != "ok" {
		t.Fatalf("%+v", o)
	}
	<-closed
	// Wait for the FIN to reach the client's socket.
	waitFor(t, "the idle connection to look closed", func() bool {
		p.lean.mu.Lock()
		defer p.lean.mu.Unlock()
		return len(p.lean.idle) == 1 && !connAlive(p.lean.idle[0].c)
	})
	if o := roundTrip(p.lean, request("POST", base+"/", []byte("once"))); o.Body != "ok" || o.Err != "" {
		t.Fatalf("%+v", o)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("the POST reached the server %d times", n)
	}
}

// A reused connection that fails after the request went out and before any
// byte of the answer: http.Transport's rule decides whether to send the
// request again, and both clients do the same.
func TestUpstreamRetryRule(t *testing.T) {
	cases := []struct {
		name  string
		req   func(base string) func() *http.Request
		retry bool
	}{
		{"GET", func(b string) func() *http.Request { return request("GET", b+"/2", nil) }, true},
		{"HEAD", func(b string) func() *http.Request { return request("HEAD", b+"/2", nil) }, true},
		{"POST with body", func(b string) func() *http.Request { return request("POST", b+"/2", []byte("x")) }, false},
		{"POST without body", func(b string) func() *http.Request { return request("POST", b+"/2", nil) }, false},
		{"POST with Idempotency-Key", func(b string) func() *http.Request {
			return request("POST", b+"/2", nil, "Idempotency-Key", "k")
		}, true},
		{"DELETE", func(b string) func() *http.Request { return request("DELETE", b+"/2", nil) }, false},
	}
	for _, tc := range cases {
		for _, which := range []string{"http.Transport", "upstream client"} {
			t.Run(tc.name+"/"+which, func(t *testing.T) {
				var seen atomic.Int64
				base := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
					for n := 0; ; n++ {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						io.Copy(io.Discard, req.Body)
						if req.URL.Path == "/2" {
							seen.Add(1)
						}
						if i == 0 && n == 1 {
							return // the second request on the first connection: no answer, close
						}
						answer(c, "ok")
					}
				})
				p := newPair(t, base)
				var rt http.RoundTripper = p.std
				if which != "http.Transport" {
					rt = p.lean
				}
				if o := roundTrip(rt, request("GET", base+"/1", nil)); o.Body != "ok" {
					t.Fatalf("first request: %+v", o)
				}
				o := roundTrip(rt, tc.req(base))
				if ok := o.Err == ""; ok != tc.retry {
					t.Fatalf("second request %+v, want retried=%v", o, tc.retry)
				}
				if want := map[bool]int64{true: 2, false: 1}[tc.retry]; seen.Load() != want {
					t.Fatalf("server saw the request %d times, want %d", seen.Load(), want)
				}
			})
		}
	}
}

// A slow upstream and a caller that gives up: RoundTrip returns the
// context's error and the upstream sees its connection closed; the same
// while the body streams.
func TestUpstreamCancel(t *testing.T) {
	gone := make(chan struct{}, 2)
	release := make(chan struct{})
	defer close(release)
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-release:
		}
	})
	p := newPair(t, srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	req := request("POST", srv.URL+"/slow", []byte("x"))().WithContext(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := p.lean.RoundTrip(req)
		errc <- err
	}()
	waitFor(t, "the upstream to get the request", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.seen) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("RoundTrip: %v", err)
	}
	<-gone

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	resp, err := p.lean.RoundTrip(request("GET", srv.URL+"/body", nil)().WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("%q %v", first, err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("body read after cancel: %v", err)
	}
	resp.Body.Close()
	<-gone
}

// An upstream header over the cap fails the exchange.
func TestUpstreamHeaderCap(t *testing.T) {
	base := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", strings.Repeat("z", 8000))
	})
	p := newPair(t, base)
	p.lean.maxHeaderBytes = 4096
	if _, err := p.lean.RoundTrip(request("GET", base+"/", nil)()); err == nil || !strings.Contains(err.Error(), "header over 4096 bytes") {
		t.Fatalf("err %v", err)
	}
}

// Idle connections close after the idle timeout.
func TestUpstreamIdleTimeout(t *testing.T) {
	rec := &recorder{}
	srv := rec.server(t, func(w http.ResponseWriter, r *http.Request) {})
	p := newPair(t, srv.URL)
	p.lean.idleTimeout = 20 * time.Millisecond
	roundTrip(p.lean, request("GET", srv.URL+"/", nil))
	roundTrip(p.lean, request("GET", srv.URL+"/", nil))
	waitFor(t, "the pool to empty", func() bool { p.lean.mu.Lock(); defer p.lean.mu.Unlock(); return len(p.lean.idle) == 0 })
}

// Through the proxy: the upstream down is a 502, and an Upgrade (through
// the fallback transport) still switches protocols.
func TestProxyUpstreamDownAndUpgrade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close()
	s := newStack(t, down, "", nil, 0)
	if _, ok := s.proxy.tr.(*upstreamClient); !ok {
		t.Fatalf("transport %T", s.proxy.tr)
	}
	resp, _ := post(t, s.srv.URL, inferPath, inferBody([]float64{1, 2, 3, 4}), nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d %v", resp.StatusCode, resp.Header)
	}

	up := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "echo" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		io.Copy(c, br)
	})
	u, _ := url.Parse(up)
	s = newStack(t, u, "", nil, 0)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(c, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q %v", got, err)
	}
}

// appendHead writes what (*http.Request).Write writes, byte for byte,
// whenever it accepts a request.
func FuzzAppendHead(f *testing.F) {
	f.Add("POST", "/v2/models/m/infer?x=1", "127.0.0.1:8080", "Content-Type", "application/json", "X-Request-Id", "abc", "", []byte(`{"inputs":[]}`), false)
	f.Add("GET", "/", "", "Accept", "*/*", "X-A", " padded\t", "curl/8", []byte(nil), true)
	f.Add("DELETE", "/a%2Fb", "[::1]:80", "Connection", "keep-alive, close", "x-lower", "v", "", []byte(nil), true)
	f.Add("PATCH", "/p", "h", "User-Agent", "", "Trailer", "X", "ua", []byte("b"), false)
	f.Fuzz(func(t *testing.T, method, target, host, k1, v1, k2, v2, ua string, body []byte, close bool) {
		u, err := url.Parse("http://upstream" + target)
		if err != nil || u.Host != "upstream" {
			return
		}
		req := &http.Request{Method: method, URL: u, Host: host, Header: http.Header{}, Close: close,
			ContentLength: int64(len(body))}
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		req.Header[k1] = append(req.Header[k1], v1)
		req.Header[k2] = append(req.Header[k2], v2)
		if ua != "" {
			req.Header["User-Agent"] = []string{ua}
		}
		got, ok := appendHead(nil, req)
		if !ok {
			return
		}
		got = append(got, body...)
		var want bytes.Buffer
		if err := req.Write(&want); err != nil {
			t.Fatalf("appendHead accepted what Write refuses (%v):\n%q", err, got)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendHead:\n%q\nWrite:\n%q", got, want.Bytes())
		}
		// And the server side reads back the same request.
		back, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(got)))
		if err != nil {
			return // Write's bytes are not always a request a server takes
		}
		b, _ := io.ReadAll(back.Body)
		if !bytes.Equal(b, body) {
			t.Fatalf("body %q, want %q", b, body)
		}
	})
}
