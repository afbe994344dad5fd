// Package api serves the custody registry over HTTP: a versioned JSON API
// under /api/v1, its OpenAPI document at /api/v1/openapi.json, and the
// health (/healthz) and readiness (/readyz) probes, and response counters
// in the Prometheus text format (/metrics). With [Options.Predictions] it
// also ingests logged predictions and labels (docs/predictions.md).
//
// # Envelope
//
// Every /api/v1 response is one JSON object:
//
//	{"status": "success", "data": ...}
//	{"status": "error", "errorType": "conflict", "error": "model version m@1 is already ..."}
//	{"status": "error", "errorType": "policy_denied", "error": "policy denies ...", "reasons": ["..."]}
//
// errorType is one of the [ErrorType] constants; [statusOf] maps each to
// its HTTP status in one place, and [classify] maps domain errors to types.
//
// # Security
//
// Every /api/v1 call except the OpenAPI document needs "Authorization:
// Bearer <token>". The order of checks is fixed so that a refused request
// never changes state and never reads a body it is not entitled to send:
// authenticate (401), rate limit per token (429), authorize the route's
// permission for the token's role (403), then read at most the route's
// body limit (413) and decode strictly (400).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/tlog"
)

// ErrorType classifies API errors.
type ErrorType string

const (
	ErrBadRequest   ErrorType = "bad_request"
	ErrUnauthorized ErrorType = "unauthorized"
	ErrForbidden    ErrorType = "forbidden"
	ErrNotFound     ErrorType = "not_found"
	ErrConflict     ErrorType = "conflict"
	ErrTooLarge     ErrorType = "too_large"
	ErrUnverified   ErrorType = "unverified"
	ErrPolicyDenied ErrorType = "policy_denied"
	ErrPolicyFailed ErrorType = "policy_error"
	ErrRateLimited  ErrorType = "rate_limited"
	ErrInternal     ErrorType = "internal"
	ErrUnavailable  ErrorType = "unavailable"
)

// statusOf is the one place error types become HTTP statuses.
func statusOf(t ErrorType) int {
	switch t {
	case ErrBadRequest:
		return http.StatusBadRequest
	case ErrUnauthorized:
		return http.StatusUnauthorized
	case ErrForbidden, ErrPolicyDenied:
		return http.StatusForbidden
	case ErrNotFound:
		return http.StatusNotFound
	case ErrConflict:
		return http.StatusConflict
	case ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrUnverified:
		return http.StatusUnprocessableEntity
	case ErrRateLimited:
		return http.StatusTooManyRequests
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// apiError is an error with its type.
type apiError struct {
	typ ErrorType
	err error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func errorf(t ErrorType, format string, args ...any) error {
	return &apiError{typ: t, err: fmt.Errorf(format, args...)}
}

// classify maps an error to its type: API errors keep theirs, domain
// sentinels map to theirs, anything else is internal.
func classify(err error) ErrorType {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.typ
	case errors.As(err, &mbe):
		return ErrTooLarge
	case errors.Is(err, predict.ErrTooLarge):
		return ErrTooLarge
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, tlog.ErrBadTilePath), errors.Is(err, predict.ErrMalformed):
		return ErrBadRequest
	case errors.Is(err, tlog.ErrOutOfRange), errors.Is(err, tlog.ErrNoKey):
		return ErrNotFound
	case errors.Is(err, registry.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, registry.ErrConflict):
		return ErrConflict
	case errors.Is(err, registry.ErrUnverified):
		return ErrUnverified
	case errors.Is(err, registry.ErrUnauthenticated):
		return ErrUnauthorized
	case errors.Is(err, registry.ErrForbidden):
		return ErrForbidden
	case errors.Is(err, registry.ErrPolicyDenied):
		return ErrPolicyDenied
	case errors.Is(err, registry.ErrPolicyFailed):
		return ErrPolicyFailed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrUnavailable
	default:
		return ErrInternal
	}
}

// Envelope is the body of every API response.
type Envelope struct {
	Status    string          `json:"status"` // "success" or "error"
	Data      json.RawMessage `json:"data,omitempty"`
	ErrorType ErrorType       `json:"errorType,omitempty"`
	Error     string          `json:"error,omitempty"`
	// Reasons are a policy's deny reasons, verbatim (policy_denied only).
	Reasons []string `json:"reasons,omitempty"`
}

// Options configure the API.
type Options struct {
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// RatePerSecond and RateBurst bound each token's request rate (and
	// each client address's rate of failed authentications).
	RatePerSecond float64
	RateBurst     int
	// MaxBodyBytes caps small request bodies; registration bodies (which
	// carry manifests and signature bundles) may be MaxUploadBytes.
	MaxBodyBytes   int64
	MaxUploadBytes int64
	// Ready reports readiness (e.g. the database answers); nil means ready.
	Ready func(ctx context.Context) error
	// Log is the transparency log served under /api/v1/log; nil answers
	// those endpoints with not_found.
	Log *tlog.Log
	// LogVerifierKey is the log's signed-note verifier key, served at
	// /api/v1/log/key.
	LogVerifierKey string
	// Predictions serves /api/v1/predictions and /api/v1/labels; nil
	// answers them with not_found.
	Predictions *predict.Service
	// Monitors serves /api/v1/monitors and the monitors' HTML reports;
	// nil answers them with not_found.
	Monitors *watch.Set
	// MaxIngestBytes caps an ingest body as sent (compressed or not);
	// PredictLimits cap it decompressed and per record.
	MaxIngestBytes int64
	PredictLimits  predict.Limits
	// Metrics are served at /metrics; nil creates them.
	Metrics *Metrics
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{RatePerSecond: 200, RateBurst: 400, MaxBodyBytes: 1 << 20, MaxUploadBytes: 32 << 20,
		MaxIngestBytes: 16 << 20, PredictLimits: predict.DefaultLimits()}
}

// Server is the HTTP handler of the registry API.
type Server struct {
	svc     *registry.Service
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	limiter *limiter
	metrics *Metrics
}

// New returns the API handler over svc.
func New(svc *registry.Service, opts Options) (*Server, error) {
	d := DefaultOptions()
	if opts.RatePerSecond == 0 {
		opts.RatePerSecond = d.RatePerSecond
	}
	if opts.RateBurst == 0 {
		opts.RateBurst = d.RateBurst
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = d.MaxBodyBytes
	}
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = d.MaxUploadBytes
	}
	if opts.MaxIngestBytes == 0 {
		opts.MaxIngestBytes = d.MaxIngestBytes
	}
	if opts.PredictLimits == (predict.Limits{}) {
		opts.PredictLimits = d.PredictLimits
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.RatePerSecond < 0 || opts.RateBurst < 1 || opts.MaxBodyBytes < 1 || opts.MaxUploadBytes < 1 || opts.MaxIngestBytes < 1 {
		return nil, errors.New("api: rate limits and body caps must be positive")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, opts: opts, log: opts.Logger, mux: http.NewServeMux(),
		limiter: newLimiter(opts.RatePerSecond, opts.RateBurst), metrics: opts.Metrics}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIDocument)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(ErrNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ready")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "panic", p, "stack", string(debug.Stack()))
			if !sw.wrote {
				s.writeError(sw, r, errorf(ErrInternal, "internal error"))
			}
		}
		s.metrics.observe(sw.status)
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "actor", sw.actor, "remote", r.RemoteAddr)
	}()
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	actor  string
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// route is one API endpoint: what it needs and what it does.
type route struct {
	Method, Pattern string
	Perm            registry.Permission
	// Body is the body cap: 0 means the route takes no body.
	Body   int64
	Handle func(c *call) (any, int, error)
}

// call is one authorized request.
type call struct {
	r     *http.Request
	actor registry.Actor
	limit int64
}

func (c *call) path(name string) string { return c.r.PathValue(name) }

// decode reads the body strictly into v (see decodeStrict).
func (c *call) decode(v any) error { return decodeStrict(c.r.Body, c.limit, v) }

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := w.(*statusWriter)
		actor, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if sw != nil {
			sw.actor = actor.Name
		}
		if !s.limiter.allow(actor.Name) {
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, errorf(ErrRateLimited, "rate limit exceeded for %s", actor.Name))
			return
		}
		if err := actor.Require(rt.Perm); err != nil {
			s.writeError(w, r, err)
			return
		}
		if rt.Body == 0 {
			r.Body = http.NoBody
		} else {
			r.Body = http.MaxBytesReader(w, r.Body, rt.Body)
		}
		data, status, err := rt.Handle(&call{r: r, actor: actor, limit: rt.Body})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if raw, ok := data.(rawResponse); ok {
			w.Header().Set("Content-Type", raw.contentType)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if strings.HasPrefix(raw.contentType, "text/html") {
				// The report pages are self-contained: no script, no
				// external fetch, no framing.
				w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
				w.Header().Set("Cache-Control", "no-store")
			}
			w.WriteHeader(status)
			w.Write(raw.body)
			return
		}
		s.writeData(w, status, data)
	})
}

func (s *Server) authenticate(r *http.Request) (registry.Actor, error) {
	addr := "addr:" + clientHost(r)
	// Failed authentications are charged to the client address, so that
	// guessing tokens costs rate budget; a blocked address is refused
	// before its token is even looked up.
	if s.limiter.exhausted(addr) {
		return registry.Actor{}, errorf(ErrRateLimited, "too many failed authentications from %s", clientHost(r))
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		s.limiter.allow(addr)
		return registry.Actor{}, errorf(ErrUnauthorized, "missing bearer token")
	}
	a, err := s.svc.Authenticate(r.Context(), strings.TrimSpace(tok))
	if errors.Is(err, registry.ErrUnauthenticated) {
		s.limiter.allow(addr)
		return registry.Actor{}, errorf(ErrUnauthorized, "invalid token")
	}
	if err != nil {
		return registry.Actor{}, err
	}
	return a, nil
}

func clientHost(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return host
}

func (s *Server) writeData(w http.ResponseWriter, status int, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		s.log.Error("failed to encode response", "err", err)
		s.writeEnvelope(w, http.StatusInternalServerError, Envelope{Status: "error", ErrorType: ErrInternal, Error: "failed to encode response"})
		return
	}
	s.writeEnvelope(w, status, Envelope{Status: "success", Data: raw})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	t := classify(err)
	env := Envelope{Status: "error", ErrorType: t, Error: err.Error()}
	switch t {
	case ErrInternal:
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		env.Error = "internal error"
	case ErrPolicyFailed:
		// The cause (a Rego runtime error, a file name) stays in the
		// server log and the transparency log.
		s.log.Error("policy evaluation failed", "method", r.Method, "path", r.URL.Path, "err", err)
		env.Error = "policy evaluation failed: the action is refused (fail closed); see the server log"
	case ErrPolicyDenied:
		var de *registry.DeniedError
		if errors.As(err, &de) {
			env.Reasons = de.Reasons
		}
	}
	s.writeEnvelope(w, statusOf(t), env)
}

func (s *Server) writeEnvelope(w http.ResponseWriter, status int, e Envelope) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(e)
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf(ErrBadRequest, "%s: want a non-negative integer", name)
	}
	return n, nil
}
