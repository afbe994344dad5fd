package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamClient is the http.RoundTripper the proxy uses for a plain-http
// upstream. It does the whole exchange on the calling goroutine: it writes
// the request (head and body in one write) on an idle persistent connection,
// then reads the response with http.ReadResponse from the connection's
// bufio.Reader. http.Transport runs a reader and a writer goroutine per
// connection and hands every request and response between them and the
// caller; on a busy machine each hand-off is a wake-up that can come late.
//
// Requests it does not handle the simple way go to the fallback transport
// unchanged (see [upstreamClient.lean]): another host or scheme, CONNECT,
// Upgrade, Expect, trailers, a body of unknown length (streamed, chunked)
// or over maxLeanBody, and anything the fallback would reject (invalid
// method, header field, Host or URL): http.Transport then returns its own
// error.
//
// Connections: a bounded LIFO pool of idle connections, each checked for a
// close by the server (a non-blocking peek) before reuse, pruned after
// idleTimeout. A connection returns to the pool only after its response
// body was read to EOF with nothing left over, and when neither side asked
// to close; any error, an early Close of the body or the request's context
// ending (which closes the connection at once) discards it.
//
// Retries follow http.Transport's rule: only on a reused connection, only
// when no byte of the response arrived, once, on a freshly dialled
// connection, and only when the request can be sent again safely: nothing
// of it was written, or it has no body (or GetBody) and an idempotent
// method (GET, HEAD, OPTIONS, TRACE) or an Idempotency-Key header.
type upstreamClient struct {
	host     string // the URL host it serves (http://host)
	addr     string // host:port dialled
	fallback http.RoundTripper
	dialer   net.Dialer
	maxIdle  int
	// idleTimeout closes connections idle for longer.
	idleTimeout time.Duration
	// responseHeaderTimeout, if positive, bounds the wait for the
	// response's header once the request is written.
	responseHeaderTimeout time.Duration
	// maxHeaderBytes caps the response header (1xx responses included).
	maxHeaderBytes int64

	mu     sync.Mutex
	idle   []*upConn // oldest first
	prune  *time.Timer
	armed  bool // prune is scheduled
	closed bool
}

// maxLeanBody is the largest request body the client sends itself. The
// body is read whole before the request is written; bodies this small fit
// in the sockets' buffers, so a server that answers before reading them
// cannot deadlock the exchange. Larger ones stream through the fallback.
const maxLeanBody = 32 << 10

// newUpstreamClient returns a client for target (an http URL) with t's
// connection settings, falling back to t.
func newUpstreamClient(target *url.URL, t *http.Transport) *upstreamClient {
	port := target.Port()
	if port == "" {
		port = "80"
	}
	u := &upstreamClient{
		host: target.Host, addr: net.JoinHostPort(target.Hostname(), port), fallback: t,
		dialer:  net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: t.MaxIdleConnsPerHost, idleTimeout: t.IdleConnTimeout,
		responseHeaderTimeout: t.ResponseHeaderTimeout, maxHeaderBytes: t.MaxResponseHeaderBytes,
	}
	if u.maxIdle <= 0 {
		u.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	if u.idleTimeout <= 0 {
		u.idleTimeout = 90 * time.Second
	}
	if u.maxHeaderBytes <= 0 {
		u.maxHeaderBytes = 10 << 20 // http.Transport's default
	}
	return u
}

// upConn is one persistent connection.
type upConn struct {
	c      net.Conn
	lr     limitedReader
	br     *bufio.Reader
	since  time.Time // idle since
	reused bool
}

// limitedReader reads from the connection at most n bytes, then fails: it
// caps the response header while it is read.
type limitedReader struct {
	c net.Conn
	n int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	r.n -= int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("upstream response header too large")

// RoundTrip implements http.RoundTripper.
func (u *upstreamClient) RoundTrip(req *http.Request) (*http.Response, error) {
	wb := writeBufs.Get().(*[]byte)
	defer putWriteBuf(wb)
	buf, ok := u.lean((*wb)[:0], req)
	if !ok {
		return u.fallback.RoundTrip(req)
	}
	head := len(buf)
	buf, err := appendBody(buf, req)
	*wb = buf
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			err = ctxErr
		}
		return nil, err
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pc, err := u.conn(ctx, attempt == 0)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
			return nil, err
		}
		resp, retry, err := u.exchange(ctx, pc, req, buf, head)
		if err == nil {
			return resp, nil
		}
		if !retry || attempt > 0 {
			return nil, err
		}
	}
}

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putWriteBuf(b *[]byte) {
	if cap(*b) <= 2*maxLeanBody {
		writeBufs.Put(b)
	}
}

// lean appends the request's head to buf, as (*http.Request).Write would
// write it, when the client sends this request itself; otherwise it reports
// false and the request (its body untouched) goes to the fallback.
func (u *upstreamClient) lean(buf []byte, req *http.Request) ([]byte, bool) {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host != u.host || req.Method == http.MethodConnect ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.ContentLength < 0 || req.ContentLength > maxLeanBody ||
		(req.ContentLength == 0) != (req.Body == nil || req.Body == http.NoBody) {
		return buf, false
	}
	h := req.Header
	if _, ok := h["Upgrade"]; ok {
		return buf, false
	}
	if _, ok := h["Expect"]; ok {
		return buf, false
	}
	return appendHead(buf, req)
}

// appendHead appends the request line and header of req as
// (*http.Request).Write writes them (byte for byte; the fuzz test
// FuzzAppendHead checks it), or reports false for anything it does not
// write the same or http.Transport would refuse: an invalid method, URL,
// Host or header field, a non-ASCII or zoned Host, a Trailer.
func appendHead(buf []byte, req *http.Request) ([]byte, bool) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	ruri := req.URL.RequestURI()
	if !validToken(method) || !validHost(host) || !validURI(ruri) || len(req.Trailer) > 0 ||
		req.ContentLength != 0 && (req.Body == nil || req.Body == http.NoBody) {
		return buf, false
	}
	buf = append(buf, method...)
	buf = append(buf, ' ')
	buf = append(buf, ruri...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\n"...)
	ua := "Go-http-client/1.1"
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		if !validValue(ua) {
			return buf, false
		}
		buf = append(buf, "User-Agent: "...)
		buf = append(buf, textproto.TrimString(ua)...)
		buf = append(buf, "\r\n"...)
	}
	if req.Close && !hasCloseToken(req.Header["Connection"]) {
		buf = append(buf, "Connection: close\r\n"...)
	}
	switch {
	case req.ContentLength > 0, req.ContentLength == 0 && (method == "POST" || method == "PUT" || method == "PATCH"):
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, req.ContentLength, 10)
		buf = append(buf, "\r\n"...)
	}
	var small [32]string
	keys := small[:0]
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !validToken(k) {
			return buf, false
		}
		for _, v := range vv {
			if !validValue(v) {
				return buf, false
			}
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			buf = append(buf, k...)
			buf = append(buf, ": "...)
			buf = append(buf, textproto.TrimString(v)...)
			buf = append(buf, "\r\n"...)
		}
	}
	return append(buf, "\r\n"...), true
}

// appendBody appends exactly req.ContentLength bytes of the body, then
// closes it (as http.Transport does, also on error).
func appendBody(buf []byte, req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return buf, nil
	}
	defer req.Body.Close()
	n := int(req.ContentLength)
	buf = slices.Grow(buf, n+1)
	start := len(buf)
	got, err := io.ReadFull(req.Body, buf[start:start+n])
	buf = buf[:start+got]
	if err != nil {
		return buf, fmt.Errorf("reading the request body: %w (ContentLength=%d, read %d)", err, n, got)
	}
	// The body must end there: one more read sees EOF (at once, for a
	// server's request body).
	var one [1]byte
	for {
		m, err := req.Body.Read(one[:])
		if m > 0 {
			return buf, fmt.Errorf("http: ContentLength=%d with a longer body", n)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("reading the request body: %w", err)
		}
	}
}

// conn returns an idle connection (when idleOK) or dials a new one.
func (u *upstreamClient) conn(ctx context.Context, idleOK bool) (*upConn, error) {
	if idleOK {
		now := time.Now()
		for {
			u.mu.Lock()
			n := len(u.idle)
			if n == 0 {
				u.mu.Unlock()
				break
			}
			pc := u.idle[n-1]
			u.idle[n-1] = nil
			u.idle = u.idle[:n-1]
			u.mu.Unlock()
			if now.Sub(pc.since) < u.idleTimeout && connAlive(pc.c) {
				pc.reused = true
				return pc, nil
			}
			pc.c.Close()
		}
	}
	c, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, err
	}
	pc := &upConn{c: c}
	pc.lr.c = c
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	return pc, nil
}

// exchange writes the request on pc and reads the response header. retry
// reports that the request may be sent again on a new connection.
func (u *upstreamClient) exchange(ctx context.Context, pc *upConn, req *http.Request, buf []byte, head int) (resp *http.Response, retry bool, err error) {
	// The context ending closes the connection, which ends any read or
	// write on it; the body's EOF or Close stops this.
	stop := context.AfterFunc(ctx, func() { pc.c.Close() })
	fail := func(e error) (*http.Response, bool, error) {
		stop()
		pc.c.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, false, ctxErr
		}
		return nil, false, e
	}
	n, err := pc.c.Write(buf)
	if err != nil {
		_, _, err = fail(fmt.Errorf("writing the request upstream: %w", err))
		// Nothing of the request was sent: safe to send it again.
		return nil, pc.reused && n == 0 && ctx.Err() == nil, err
	}
	pc.lr.n = u.maxHeaderBytes
	if u.responseHeaderTimeout > 0 {
		pc.c.SetReadDeadline(time.Now().Add(u.responseHeaderTimeout))
	}
	if _, err := pc.br.Peek(1); err != nil {
		_, _, err = fail(fmt.Errorf("reading the upstream response: %w", err))
		// The server closed a kept-alive connection as the request went
		// out: http.Transport retries the requests that are replayable.
		return nil, pc.reused && replayable(req, head == len(buf)) && ctx.Err() == nil, err
	}
	trace := httptrace.ContextClientTrace(ctx)
	for {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			if errors.Is(err, errHeaderTooLarge) {
				err = fmt.Errorf("upstream response header over %d bytes", u.maxHeaderBytes)
			}
			return fail(fmt.Errorf("reading the upstream response: %w", err))
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// Upgrade requests go to the fallback: nobody asked for it.
			return fail(errors.New("unexpected 101 Switching Protocols from upstream"))
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
			pc.lr.n = u.maxHeaderBytes
		}
	}
	if u.responseHeaderTimeout > 0 {
		pc.c.SetReadDeadline(time.Time{})
	}
	pc.lr.n = math.MaxInt64
	keep := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		u.release(pc, stop, keep)
		return resp, false, nil
	}
	resp.Body = &upBody{rc: resp.Body, u: u, pc: pc, stop: stop, keep: keep, ctx: ctx}
	return resp, false, nil
}

// replayable is http.Transport's rule for sending a written request again:
// no body to send twice, and a method or header saying that doing it twice
// is harmless.
func replayable(req *http.Request, noBody bool) bool {
	if !noBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// release returns pc to the pool when it can carry another request.
func (u *upstreamClient) release(pc *upConn, stop func() bool, keep bool) {
	if !stop() || !keep || pc.br.Buffered() != 0 {
		pc.c.Close() // (already closing, if the context ended)
		return
	}
	pc.since = time.Now()
	u.mu.Lock()
	if u.closed || len(u.idle) >= u.maxIdle {
		u.mu.Unlock()
		pc.c.Close()
		return
	}
	u.idle = append(u.idle, pc)
	if !u.armed {
		u.armed = true
		if u.prune == nil {
			u.prune = time.AfterFunc(u.idleTimeout, u.pruneIdle)
		} else {
			u.prune.Reset(u.idleTimeout)
		}
	}
	u.mu.Unlock()
}

// pruneIdle closes the connections idle for longer than idleTimeout and
// schedules itself for the next one to expire.
func (u *upstreamClient) pruneIdle() {
	now := time.Now()
	u.mu.Lock()
	i := 0
	for i < len(u.idle) && now.Sub(u.idle[i].since) >= u.idleTimeout {
		i++
	}
	expired := slices.Clone(u.idle[:i])
	u.idle = slices.Delete(u.idle, 0, i)
	u.armed = len(u.idle) > 0 && !u.closed
	if u.armed {
		u.prune.Reset(u.idleTimeout - now.Sub(u.idle[0].since))
	}
	u.mu.Unlock()
	for _, pc := range expired {
		pc.c.Close()
	}
}

// CloseIdleConnections closes the idle connections, its own and the
// fallback's.
func (u *upstreamClient) CloseIdleConnections() {
	u.mu.Lock()
	idle := u.idle
	u.idle = nil
	u.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
	if c, ok := u.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// upBody is a response body on a pooled connection: EOF returns the
// connection to the pool, an error or an early Close closes it.
type upBody struct {
	rc   io.ReadCloser // from http.ReadResponse; never closed (it would drain)
	u    *upstreamClient
	pc   *upConn
	stop func() bool
	keep bool
	ctx  context.Context
	// state: bodyOpen, then bodyEOF (the connection went back to the
	// pool) or bodyClosed (it was closed).
	state atomic.Int32
}

const (
	bodyOpen = iota
	bodyEOF
	bodyClosed
)

var errBodyClosed = errors.New("http: read on closed response body")

func (b *upBody) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEOF:
		return 0, io.EOF
	case bodyClosed:
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		if b.state.CompareAndSwap(bodyOpen, bodyEOF) {
			b.u.release(b.pc, b.stop, b.keep)
		}
	case err != nil:
		if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
			b.stop()
			b.pc.c.Close()
		}
		if ctxErr := b.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
	}
	return n, err
}

// Close before EOF closes the connection: what is left of the body is not
// read.
func (b *upBody) Close() error {
	if b.state.CompareAndSwap(bodyOpen, bodyClosed) {
		b.stop()
		b.pc.c.Close()
	}
	return nil
}

// validToken: an RFC 9110 token (methods, header field names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue: no control character but horizontal tab (a header field
// value as httpguts.ValidHeaderFieldValue, a URL without control bytes).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost: printable ASCII a Host header may hold, no IPv6 zone ('%'),
// which http.Request.Write would rewrite.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validURI: a request target without control bytes or spaces.
func validURI(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// hasCloseToken is net/http's hasToken(first value, "close"): the token
// bounded by the value's ends, spaces, tabs or commas.
func hasCloseToken(vv []string) bool {
	if len(vv) == 0 {
		return false
	}
	v := vv[0]
	bound := func(c byte) bool { return c == ' ' || c == ',' || c == '\t' }
	for i := 0; i+5 <= len(v); i++ {
		if strings.EqualFold(v[i:i+5], "close") && (i == 0 || bound(v[i-1])) && (i+5 == len(v) || bound(v[i+5])) {
			return true
		}
	}
	return false
}
