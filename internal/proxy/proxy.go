// Package proxy implements the custody sidecar's HTTP side: a reverse proxy
// in front of a model server that forwards every request unchanged, tags
// responses with X-Request-Id and X-Model-Sha256, and turns JSON inference
// calls into prediction records (KServe v2 / Open Inference Protocol out of
// the box, other shapes through a JSON-pointer [Mapping]). Records go to a
// [Sink] that must not block; see docs/proxy.md.
package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives encoded records (one JSON object each). Enqueue must not
// block; it reports whether the record was accepted and owns rec after the
// call.
type Sink interface {
	Enqueue(rec []byte) bool
}

// Options configure a Proxy.
type Options struct {
	Upstream    *url.URL
	Model       string // registered model name
	ModelDigest string // "sha256:<64 hex>"
	Mapping     *Mapping
	CaptureMax  int64 // bodies larger than this are forwarded but not extracted
	Sink        Sink
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	// Transport forwards to the upstream. Default: for an http:// upstream
	// (and no proxy from the environment), the proxy's own client, which
	// exchanges on the request's goroutine (see upstream.go), falling
	// back for what it does not handle to a tuned clone of
	// http.DefaultTransport, the default for https.
	Transport http.RoundTripper
}

// DefaultCaptureMax is the default cap on captured request and response
// bodies.
const DefaultCaptureMax = 1 << 20

// Proxy is an http.Handler. Extraction runs on a background goroutine, off
// the request path; stop it with [Proxy.Close] after the server stopped.
type Proxy struct {
	opts Options
	rp   *httputil.ReverseProxy
	tr   http.RoundTripper // the transport New made, if it did
	m    *metrics
	log  *slog.Logger
	jobs chan job
	done chan struct{}
	// closing is closed by Close, so extraction stops pausing.
	closing chan struct{}
	once    sync.Once
	// digestHeader is the X-Model-Sha256 value, shared by every response.
	digestHeader []string
	// scratch is the extraction goroutine's record encoding buffer.
	scratch []byte
}

// job is a completed exchange waiting for extraction.
type job struct {
	path      string
	id        string
	start     time.Time
	upDur     time.Duration
	req, resp []byte
	encoding  string
}

// extractQueue bounds the exchanges waiting for extraction; beyond it they
// are dropped and counted (result "dropped").
const extractQueue = 4096

// Record is the wire form of one prediction record (WIRE.md).
type Record struct {
	TS          time.Time         `json:"ts"`
	RequestID   string            `json:"request_id"`
	Model       string            `json:"model"`
	ModelSHA256 string            `json:"model_sha256"`
	Features    map[string]any    `json:"features"`
	Prediction  any               `json:"prediction"`
	Segment     map[string]string `json:"segment,omitempty"`
	LatencyMS   float64           `json:"latency_ms"`
}

type ctxKey struct{}

// exchange is the per-request state shared with the transport and
// ModifyResponse through the request context.
type exchange struct {
	id       string
	extract  bool
	req      *capture
	resp     *capture
	status   int
	upStart  time.Time
	upDur    time.Duration
	encoding string
	caps     [2]capture // the request's and the response's, when captured
}

// New validates opts and builds the proxy.
func New(opts Options) (*Proxy, error) {
	if opts.Upstream == nil || (opts.Upstream.Scheme != "http" && opts.Upstream.Scheme != "https") || opts.Upstream.Host == "" {
		return nil, errors.New("upstream must be an http(s) URL")
	}
	if opts.Model == "" || !strings.HasPrefix(opts.ModelDigest, "sha256:") || len(opts.ModelDigest) != 71 {
		return nil, errors.New("model name and sha256:<64 hex> digest are required")
	}
	if opts.CaptureMax <= 0 {
		opts.CaptureMax = DefaultCaptureMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sink == nil {
		return nil, errors.New("a sink is required")
	}
	tr, own := opts.Transport, http.RoundTripper(nil)
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 1024
		// Forward Accept-Encoding and compressed bodies as they are.
		t.DisableCompression = true
		tr = t
		if opts.Upstream.Scheme == "http" {
			if pu, err := t.Proxy(&http.Request{URL: opts.Upstream}); err == nil && pu == nil {
				tr = newUpstreamClient(opts.Upstream, t)
			}
		}
		own = tr
	}
	p := &Proxy{opts: opts, tr: own, m: newMetrics(opts.Registerer), log: opts.Logger, digestHeader: []string{opts.ModelDigest},
		jobs: make(chan job, extractQueue), done: make(chan struct{}), closing: make(chan struct{})}
	go p.extractLoop()
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(opts.Upstream)
			pr.Out.Host = pr.In.Host // forward the Host header unchanged
		},
		Transport:      timingTransport{tr},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// ServeHTTP forwards the request and records the exchange.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{id: r.Header.Get("X-Request-Id")}
	if !ValidRequestID(ex.id) {
		if ex.id == "" {
			ex.id = newRequestID()
			r.Header.Set("X-Request-Id", ex.id)
		} else {
			ex.id = newRequestID()
		}
	}
	ex.extract = p.wantsExtraction(r)
	if ex.extract {
		if r.ContentLength > p.opts.CaptureMax {
			ex.extract = false
			p.m.extractions.WithLabelValues("too_large").Inc()
		} else {
			ex.req = ex.caps[0].init(r.Body, r.ContentLength, p.opts.CaptureMax)
			r.Body = ex.req
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ex))
	p.rp.ServeHTTP(w, r)
	// Queue the exchange (a non-blocking send) before the last bytes of the
	// response go out: a client that waits for each answer before sending
	// the next request sees its records in its own order.
	if ex.extract {
		p.submit(r, ex, start)
	}
	_ = http.NewResponseController(w).Flush()
	total := time.Since(start)
	p.m.request(ex.status)
	if ex.status != 0 {
		p.m.upstream.Observe(ex.upDur.Seconds())
		p.m.overhead.Observe(max(total-ex.upDur, 0).Seconds())
	}
}

// Close stops the extraction goroutine after it has handled every
// submitted exchange. Call it once the HTTP server has shut down.
func (p *Proxy) Close() {
	p.once.Do(func() { close(p.closing); close(p.jobs) })
	<-p.done
	if c, ok := p.tr.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// extractPause is how long the extraction goroutine lets exchanges
// accumulate after a batch. Waking it once per request cost a futex call
// and a context switch next to every response; under load it now wakes at
// most about 1/extractPause times a second and takes what is queued (the
// queue holds extractQueue, far more than arrives in a pause). Records
// reach the shipper that much later, which batches them for 200 ms anyway.
const extractPause = 10 * time.Millisecond

func (p *Proxy) extractLoop() {
	defer close(p.done)
	for {
		j, ok := <-p.jobs // idle: wait for the next exchange
		if !ok {
			return
		}
		p.record(j)
		for n := len(p.jobs); n > 0; n-- {
			if j, ok = <-p.jobs; !ok {
				return
			}
			p.record(j)
		}
		select {
		case <-p.closing:
		default:
			time.Sleep(extractPause)
		}
	}
}

// wantsExtraction: POST with a JSON (or untyped) body on a KServe v2
// inference path or a mapped path.
func (p *Proxy) wantsExtraction(r *http.Request) bool {
	if r.Method != http.MethodPost || !isJSON(r.Header.Get("Content-Type")) {
		return false
	}
	if IsKServeInfer(r.URL.Path) {
		return true
	}
	m := p.opts.Mapping
	if m == nil || m.Features == nil {
		return false
	}
	if len(m.Paths) == 0 {
		return true
	}
	for _, path := range m.Paths {
		if path == r.URL.Path {
			return true
		}
	}
	return false
}

func isJSON(ct string) bool {
	switch ct {
	case "", "application/json", "application/json; charset=utf-8":
		return true // the common cases, without parsing (every request)
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	ex, _ := resp.Request.Context().Value(ctxKey{}).(*exchange)
	if ex == nil {
		return nil
	}
	ex.status = resp.StatusCode
	ex.upDur = time.Since(ex.upStart)
	resp.Header.Set("X-Request-Id", ex.id)
	resp.Header["X-Model-Sha256"] = p.digestHeader // read only: copied into the response
	if !ex.extract {
		return nil
	}
	switch {
	case resp.StatusCode/100 != 2:
		ex.extract = false
		p.m.extractions.WithLabelValues("upstream_error").Inc()
	case !isJSON(resp.Header.Get("Content-Type")):
		ex.extract = false
		p.m.extractions.WithLabelValues("not_json").Inc()
	case resp.ContentLength > p.opts.CaptureMax:
		ex.extract = false
		p.m.extractions.WithLabelValues("too_large").Inc()
	default:
		ex.encoding = resp.Header.Get("Content-Encoding")
		ex.resp = ex.caps[1].init(resp.Body, resp.ContentLength, p.opts.CaptureMax)
		resp.Body = ex.resp
	}
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(ctxKey{}).(*exchange)
	if ex != nil {
		ex.extract = false
		w.Header().Set("X-Request-Id", ex.id)
	}
	w.Header().Set("X-Model-Sha256", p.opts.ModelDigest)
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads this answer.
		w.WriteHeader(499)
		return
	}
	p.log.Warn("upstream request failed", "error", err)
	w.WriteHeader(http.StatusBadGateway)
}

// submit hands a completed exchange to the extraction goroutine without
// blocking. Nothing here can fail the request: the response is already sent.
func (p *Proxy) submit(r *http.Request, ex *exchange, start time.Time) {
	if ex.req == nil || ex.resp == nil {
		return
	}
	reqBody, reqOK := ex.req.body()
	respBody, respOK := ex.resp.body()
	if !reqOK || !respOK {
		if ex.req.overflowed() || ex.resp.overflowed() {
			p.m.extractions.WithLabelValues("too_large").Inc()
		} else {
			p.m.extractions.WithLabelValues("incomplete").Inc()
		}
		return
	}
	select {
	case p.jobs <- job{path: r.URL.Path, id: ex.id, start: start, upDur: ex.upDur, req: reqBody, resp: respBody, encoding: ex.encoding}:
	default:
		p.m.extractions.WithLabelValues("dropped").Inc()
	}
}

// record extracts the rows of an exchange and hands them to the sink.
func (p *Proxy) record(j job) {
	reqBody, respBody := j.req, j.resp
	if j.encoding != "" && j.encoding != "identity" {
		if j.encoding != "gzip" {
			p.m.extractions.WithLabelValues("not_json").Inc()
			return
		}
		var ok bool
		if respBody, ok = gunzipCapped(respBody, p.opts.CaptureMax); !ok {
			p.m.extractions.WithLabelValues("too_large").Inc()
			return
		}
	}
	var (
		rows []row
		err  error
	)
	if IsKServeInfer(j.path) {
		rows, err = p.opts.Mapping.ExtractKServe(reqBody, respBody)
	} else {
		rows, err = p.opts.Mapping.ExtractPointers(reqBody, respBody)
	}
	if err != nil {
		p.m.extractions.WithLabelValues("error").Inc()
		// The error names shapes and pointers, never payload values.
		p.log.Debug("no record extracted", "request_id", j.id, "path", j.path, "error", err)
		return
	}
	p.m.extractOK.Inc()
	latency := float64(j.upDur.Microseconds()) / 1000
	for i, row := range rows {
		id := j.id
		if len(rows) > 1 {
			id = j.id + "/" + strconv.Itoa(i)
		}
		var err error
		p.scratch, err = appendRecord(p.scratch[:0], &Record{
			TS: j.start.UTC(), RequestID: id, Model: p.opts.Model, ModelSHA256: p.opts.ModelDigest,
			Features: row.Features, Prediction: row.Prediction, Segment: row.Segment, LatencyMS: latency,
		})
		if err != nil {
			p.m.extractions.WithLabelValues("error").Inc()
			continue
		}
		p.m.records.Inc()
		// The sink owns what it is given: an exact-size copy.
		p.opts.Sink.Enqueue(bytes.Clone(p.scratch))
	}
}

func gunzipCapped(b []byte, limit int64) ([]byte, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil || int64(len(out)) > limit {
		return nil, false
	}
	return out, true
}

// ValidRequestID reports whether an incoming X-Request-Id is reused: 1 to
// 100 characters from [A-Za-z0-9._:+=~-] ('/' is reserved for row
// suffixes).
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("._:+=~-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// timingTransport stamps the start of the upstream round trip.
type timingTransport struct{ rt http.RoundTripper }

func (t timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if ex, _ := r.Context().Value(ctxKey{}).(*exchange); ex != nil {
		ex.upStart = time.Now()
	}
	return t.rt.RoundTrip(r)
}

// capture tees a body into a buffer of at most max bytes while it streams
// through. It is safe for the transport's writer goroutine and the handler.
type capture struct {
	rc   io.ReadCloser
	max  int64
	n    int64 // the announced length, -1 when unknown
	mu   sync.Mutex
	buf  []byte
	over bool
	eof  bool
}

// init sets up c (part of the exchange: no allocation of its own) and
// returns it.
func (c *capture) init(rc io.ReadCloser, length, max int64) *capture {
	c.rc, c.max, c.n = rc, max, length
	if length > 0 && length <= max {
		c.buf = make([]byte, 0, length)
	}
	return c
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.mu.Lock()
	if !c.over {
		if int64(len(c.buf)+n) > c.max {
			c.over, c.buf = true, nil
		} else {
			c.buf = append(c.buf, p[:n]...)
		}
	}
	if err == io.EOF {
		c.eof = true
	}
	c.mu.Unlock()
	return n, err
}

func (c *capture) Close() error { return c.rc.Close() }

// body returns the captured bytes if the whole body was read within the cap.
func (c *capture) body() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf, (c.eof || c.n >= 0 && int64(len(c.buf)) == c.n) && !c.over
}

func (c *capture) overflowed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.over
}

var pool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *pool.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { pool.Put(&b) }

// ListenAndServe is a convenience for the CLI: serve h on addr until ctx
// ends, then shut down gracefully within grace.
func ListenAndServe(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}
