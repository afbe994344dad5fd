// Package ship sends prediction records to the custody server
// (POST /api/v1/predictions, docs/proxy.md) asynchronously: a bounded
// in-memory queue, a background shipper that batches records as gzipped
// NDJSON, and an optional spill directory that keeps records on disk while
// the server is unreachable and drains them, in order, when it returns.
//
// # Guarantees
//
// [Shipper.Enqueue] never blocks: when the queue is full the record is
// dropped and counted. Records reach the server in the order they were
// enqueued (per Shipper); a record is removed from memory or disk only after
// a 2xx answer acknowledged it, so delivery is at least once and the server's
// request_id deduplication makes it exactly once. Records the server rejects
// individually are dropped, counted and logged (request id and reason, never
// the payload).
//
// # Ordering
//
// The collector goroutine moves records from the queue into batches and
// hands them to the sender through a small channel. When that channel is
// full, or a send fails, the spill becomes active: the failed batch and
// every batch still waiting in memory are written before the head of the
// spill (they are older than anything on disk), and the collector appends
// new batches at the tail until the sender has drained the spill completely.
package ship

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Shipper. Zero values take the defaults of
// [DefaultOptions].
type Options struct {
	Server string // base URL of the custody server
	Token  string // bearer token (role ingester or admin)

	QueueSize     int           // records held in memory
	BatchSize     int           // records per request
	BatchBytes    int           // uncompressed bytes per request
	FlushInterval time.Duration // send a partial batch after this long
	MaxRecord     int           // larger records are dropped

	SpillDir      string // "" disables spilling: records are dropped while the server is down and the queue is full
	SpillMaxBytes int64
	SegmentBytes  int64

	Timeout    time.Duration // per request
	RetryMin   time.Duration
	RetryMax   time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultOptions returns the defaults documented in docs/proxy.md.
func DefaultOptions() Options {
	return Options{
		QueueSize:     10000,
		BatchSize:     500,
		BatchBytes:    4 << 20,
		FlushInterval: 200 * time.Millisecond,
		MaxRecord:     1 << 20,
		SpillMaxBytes: 1 << 30,
		SegmentBytes:  8 << 20,
		Timeout:       10 * time.Second,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      5 * time.Second,
	}
}

// Shipper ships records in the background. Create it with [New], start it
// with [Shipper.Start] and stop it with [Shipper.Close].
type Shipper struct {
	opts    Options
	url     string
	client  *http.Client
	log     *slog.Logger
	m       *metrics
	in      chan []byte
	inMu    sync.RWMutex
	closed  bool
	mem     chan [][]byte
	kick    chan struct{}
	stop    chan struct{} // closed by Close: collector drains and exits
	abort   chan struct{} // closed when Close's context ends: give up sending
	done    chan struct{} // closed when the sender exits
	started bool

	mu          sync.Mutex // guards spill and spillActive
	spill       *spill
	spillActive bool

	// Sender only: lines of the head segment already acknowledged, so a
	// retry resumes after them (a restart re-sends them: duplicates).
	headSeq  uint64
	headDone int
	// Sender only: the gzip writer, reset for every batch (a new one
	// allocates about 800 KiB).
	zw *gzip.Writer
}

// New validates opts and opens the spill directory (a previous run's
// backlog there is shipped first).
func New(opts Options) (*Shipper, error) {
	d := DefaultOptions()
	setDefault(&opts.QueueSize, d.QueueSize)
	setDefault(&opts.BatchSize, d.BatchSize)
	setDefault(&opts.BatchBytes, d.BatchBytes)
	setDefault(&opts.FlushInterval, d.FlushInterval)
	setDefault(&opts.MaxRecord, d.MaxRecord)
	setDefault(&opts.SpillMaxBytes, d.SpillMaxBytes)
	setDefault(&opts.SegmentBytes, d.SegmentBytes)
	setDefault(&opts.Timeout, d.Timeout)
	setDefault(&opts.RetryMin, d.RetryMin)
	setDefault(&opts.RetryMax, d.RetryMax)
	if opts.QueueSize < 0 || opts.BatchSize < 0 || opts.FlushInterval < 0 || opts.SpillMaxBytes < 0 {
		return nil, errors.New("queue, batch, flush and spill sizes must be positive")
	}
	u, err := url.Parse(opts.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]", opts.Server)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{
		opts:   opts,
		url:    strings.TrimSuffix(opts.Server, "/") + "/api/v1/predictions",
		client: opts.HTTPClient,
		log:    opts.Logger,
		m:      newMetrics(opts.Registerer),
		in:     make(chan []byte, opts.QueueSize),
		mem:    make(chan [][]byte, 2),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		abort:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "custody_ship_queue_depth", Help: "Records waiting in the in-memory queue.",
	}, func() float64 { return float64(len(s.in)) })
	s.m.register(opts.Registerer, s.m.queueDepth)
	if opts.SpillDir != "" {
		sp, err := openSpill(opts.SpillDir, opts.SpillMaxBytes, opts.SegmentBytes)
		if err != nil {
			return nil, err
		}
		s.spill = sp
		s.spillActive = !sp.empty()
		s.m.spillBytes.Set(float64(sp.total))
	}
	return s, nil
}

func setDefault[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// Start starts the collector and the sender.
func (s *Shipper) Start() {
	s.started = true
	go s.collect()
	go s.send()
}

// Enqueue queues one record (a JSON object, no trailing newline) and
// reports whether it was accepted. It never blocks; the Shipper owns rec
// afterwards.
func (s *Shipper) Enqueue(rec []byte) bool {
	if len(rec) > s.opts.MaxRecord {
		s.m.dropped.WithLabelValues("too_large").Inc()
		return false
	}
	s.inMu.RLock()
	defer s.inMu.RUnlock()
	if s.closed {
		s.m.dropped.WithLabelValues("closed").Inc()
		return false
	}
	select {
	case s.in <- rec:
		s.m.queued.Inc()
		return true
	default:
		s.m.dropped.WithLabelValues("queue_full").Inc()
		return false
	}
}

// Close stops accepting records, sends what is queued until ctx ends, then
// writes what is left to the spill directory (or drops it, counted, without
// one) and seals the active segment.
func (s *Shipper) Close(ctx context.Context) error {
	s.inMu.Lock()
	already := s.closed
	s.closed = true
	s.inMu.Unlock()
	if already {
		return nil
	}
	close(s.stop)
	if !s.started {
		close(s.abort)
		return s.closeSpill()
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		close(s.abort)
		<-s.done
	}
	return s.closeSpill()
}

func (s *Shipper) closeSpill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spill == nil {
		return nil
	}
	return s.spill.close()
}

// collectPause bounds how often the collector wakes under load; records
// wait at most that much longer for their batch (QueueSize records must
// not arrive within it, or Enqueue drops).
const collectPause = 5 * time.Millisecond

// collect moves records from the queue into batches.
func (s *Shipper) collect() {
	defer close(s.mem)
	var (
		batch  [][]byte
		nbytes int
		timer  = time.NewTimer(time.Hour)
	)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			s.emit(batch)
			batch, nbytes = nil, 0
		}
		timer.Stop()
	}
	add := func(rec []byte) {
		if len(batch) == 0 {
			timer.Reset(s.opts.FlushInterval)
		}
		batch = append(batch, rec)
		nbytes += len(rec) + 1
		if len(batch) >= s.opts.BatchSize || nbytes >= s.opts.BatchBytes {
			flush()
		}
	}
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	for {
		select {
		case rec := <-s.in:
			add(rec)
			// Take what else is queued, then let records accumulate
			// for collectPause: under load the collector wakes a
			// bounded number of times a second, not once per record.
			for n := len(s.in); n > 0; n-- {
				add(<-s.in)
			}
			pause.Reset(collectPause)
			select {
			case <-pause.C:
			case <-s.stop:
				pause.Stop()
			}
		case <-timer.C:
			flush()
		case <-s.stop:
			for {
				select {
				case rec := <-s.in:
					add(rec)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// emit hands a batch to the sender, or to the spill while it is active.
func (s *Shipper) emit(batch [][]byte) {
	s.mu.Lock()
	if !s.spillActive {
		select {
		case s.mem <- batch:
			s.mu.Unlock()
			return
		default:
		}
		if s.spill == nil {
			s.mu.Unlock()
			// No spill: wait for the sender; meanwhile the queue fills
			// and Enqueue drops.
			select {
			case s.mem <- batch:
			case <-s.abort:
				s.m.dropped.WithLabelValues("shutdown").Add(float64(len(batch)))
			}
			return
		}
		s.spillActive = true
	}
	s.spillAppend(batch)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// spillAppend writes at the tail; s.mu held.
func (s *Shipper) spillAppend(batch [][]byte) {
	s.spilled(batch, s.spill.appendLines(batch))
}

// spilled accounts for lines written to the spill, or dropped when writing
// them failed with err; s.mu held.
func (s *Shipper) spilled(lines [][]byte, err error) {
	if err != nil {
		reason := "spill_error"
		if errors.Is(err, errSpillFull) {
			reason = "spill_full"
		}
		s.m.dropped.WithLabelValues(reason).Add(float64(len(lines)))
		s.log.Warn("prediction records dropped", "records", len(lines), "error", err)
	} else {
		s.m.spilled.Add(float64(len(lines)))
	}
	s.m.spillBytes.Set(float64(s.spill.total))
}

// send ships memory batches first (they are older than the spill), then
// the spill, until the collector has exited and memory is drained.
func (s *Shipper) send() {
	defer close(s.done)
	retry := s.opts.RetryMin
	for {
		select {
		case b, ok := <-s.mem:
			if !ok {
				return
			}
			if !s.sendMem(b) {
				retry = s.backoff(retry)
			} else {
				retry = s.opts.RetryMin
			}
			continue
		default:
		}
		if s.spillPending() {
			select {
			case <-s.abort:
				return
			default:
			}
			if s.sendSpill() {
				retry = s.opts.RetryMin
			} else {
				retry = s.backoff(retry)
			}
			continue
		}
		select {
		case b, ok := <-s.mem:
			if !ok {
				return
			}
			if !s.sendMem(b) {
				retry = s.backoff(retry)
			} else {
				retry = s.opts.RetryMin
			}
		case <-s.kick:
		}
	}
}

func (s *Shipper) spillPending() bool {
	if s.spill == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spillActive
}

// backoff sleeps (or returns early on abort) and returns the next delay.
func (s *Shipper) backoff(d time.Duration) time.Duration {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	select {
	case <-t.C:
	case <-s.abort:
		t.Stop()
	}
	return min(2*d, s.opts.RetryMax)
}

// sendMem ships one batch from memory, retrying without a spill; with one,
// a failure moves the batch and the rest of memory before the spill's head.
// It reports whether the batch was acknowledged.
func (s *Shipper) sendMem(b [][]byte) bool {
	retry := s.opts.RetryMin
	for {
		err := s.post(b)
		if err == nil {
			return true
		}
		if !isRetryable(err) {
			s.m.dropped.WithLabelValues("refused").Add(float64(len(b)))
			s.log.Error("prediction batch refused by the server; dropped", "records", len(b), "error", err)
			return true
		}
		s.log.Warn("prediction server unavailable", "error", err)
		if s.spill != nil {
			s.mu.Lock()
			s.spillActive = true
			lines := append([][]byte(nil), b...)
			for {
				select {
				case more, ok := <-s.mem:
					if ok {
						lines = append(lines, more...)
						continue
					}
				default:
				}
				break
			}
			s.spilled(lines, s.spill.prependLines(lines))
			s.mu.Unlock()
			return false
		}
		select {
		case <-s.abort:
			s.m.dropped.WithLabelValues("shutdown").Add(float64(len(b)))
			return false
		default:
		}
		retry = s.backoff(retry)
	}
}

// sendSpill ships the head segment, then deletes it. When the spill is empty
// it deactivates it, so the collector uses memory again.
func (s *Shipper) sendSpill() bool {
	s.mu.Lock()
	seg, ok, err := s.spill.head()
	if !ok && err == nil {
		s.spillActive = false
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("spill", "error", err)
		return false
	}
	if !ok {
		return true
	}
	lines, skipped, err := readSegment(s.spill.path(seg.seq), s.opts.MaxRecord)
	if err != nil {
		s.log.Error("spill", "error", err)
		return false
	}
	if seg.seq != s.headSeq {
		s.headSeq, s.headDone = seg.seq, 0
		if skipped > 0 {
			s.m.dropped.WithLabelValues("corrupt").Add(float64(skipped))
			s.log.Warn("skipped unreadable lines in spill segment", "segment", segmentName(seg.seq), "lines", skipped)
		}
	}
	lines = lines[min(s.headDone, len(lines)):]
	for len(lines) > 0 {
		n, size := 0, 0
		for n < len(lines) && n < s.opts.BatchSize && (n == 0 || size+len(lines[n])+1 <= s.opts.BatchBytes) {
			size += len(lines[n]) + 1
			n++
		}
		err := s.post(lines[:n])
		if err != nil && isRetryable(err) {
			s.log.Warn("prediction server unavailable", "error", err)
			return false
		}
		if err != nil {
			s.m.dropped.WithLabelValues("refused").Add(float64(n))
			s.log.Error("prediction batch refused by the server; dropped", "records", n, "error", err)
		}
		lines = lines[n:]
		s.headDone += n
	}
	s.mu.Lock()
	err = s.spill.remove(seg.seq)
	s.m.spillBytes.Set(float64(s.spill.total))
	s.mu.Unlock()
	// A later prepended segment may reuse this number.
	s.headSeq, s.headDone = 0, 0
	if err != nil {
		s.log.Error("spill", "error", err)
		return false
	}
	return true
}

// statusError is a non-2xx answer.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.code, e.msg)
}

// isRetryable: transport errors, 5xx, 429, 408 and the answers that mean
// "not (yet) configured" (401, 403, 404) are retried; other 4xx refuse the
// batch as a whole and retrying would block every later record.
func isRetryable(err error) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return true
	}
	switch se.code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return se.code >= 500
}

// ingestResult is the data of the server's answer (WIRE.md).
type ingestResult struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Index     int    `json:"index"`
		RequestID string `json:"request_id"`
		Reason    string `json:"reason"`
	} `json:"rejected"`
}

var newline = []byte{'\n'}

// post sends one batch as gzipped NDJSON; sender goroutine only.
func (s *Shipper) post(lines [][]byte) error {
	var body bytes.Buffer
	if s.zw == nil {
		s.zw, _ = gzip.NewWriterLevel(&body, gzip.BestSpeed)
	} else {
		s.zw.Reset(&body)
	}
	for _, l := range lines {
		s.zw.Write(l)
		s.zw.Write(newline)
	}
	if err := s.zw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	if s.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		s.m.requests.WithLabelValues("error").Inc()
		return err
	}
	defer resp.Body.Close()
	s.m.requests.WithLabelValues(statusClass(resp.StatusCode)).Inc()
	s.m.sendSeconds.Observe(time.Since(start).Seconds())
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var env struct {
			Error string `json:"error"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(raw, &env) == nil && env.Error != "" {
			msg = env.Error
		}
		return &statusError{code: resp.StatusCode, msg: msg}
	}
	// 2xx: every record not rejected is stored (WIRE.md).
	var env struct {
		Data ingestResult `json:"data"`
	}
	if err != nil || json.Unmarshal(raw, &env) != nil {
		s.log.Warn("unreadable answer from the prediction server; counting the batch as stored")
		s.m.shipped.Add(float64(len(lines)))
		return nil
	}
	r := env.Data
	for _, rej := range r.Rejected {
		s.log.Warn("prediction record rejected", "request_id", rej.RequestID, "index", rej.Index, "reason", rej.Reason)
	}
	s.m.rejected.Add(float64(len(r.Rejected)))
	s.m.duplicates.Add(float64(r.Duplicates))
	s.m.shipped.Add(float64(len(lines) - len(r.Rejected)))
	return nil
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return fmt.Sprintf("%dxx", code/100)
}
