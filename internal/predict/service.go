// Package predict is the domain of prediction logging: it parses and
// validates batches of logged predictions and labels (strictly, with size
// caps, rejecting bad records one by one and keeping the good ones),
// resolves each record's model_sha256 to a registered model version,
// stores them durably through a [predstore.Store], tells [Observer]s about
// what was stored, answers lookups by request id with the version, its
// signatures and the aliases at the record's time, enforces retention and
// exports records as Parquet or NDJSON.
//
// The registry is the source of truth for versions; predict reads it
// through the small [Registry] interface (a *registry.Service satisfies
// it) and caches the versions of each model it has seen.
//
// See docs/predictions.md for the wire format and the guarantees.
package predict

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
)

// Registry is what predict reads from the model registry.
type Registry interface {
	ListVersions(ctx context.Context, model, after string, limit int) ([]store.Version, error)
	GetVersion(ctx context.Context, model, version string) (*store.Version, error)
	ListAliases(ctx context.Context, model string) ([]store.AliasEvent, error)
	ResolveAlias(ctx context.Context, model, alias string, at time.Time) (*store.AliasEvent, error)
}

// Observer receives every batch of records right after it is committed,
// before the client is answered (the monitoring work updates its
// summaries here). Observe must be fast and must not keep recs.
type Observer interface {
	Observe(ctx context.Context, recs []predstore.Record)
}

// LabelObserver receives, after each committed label batch, the labels
// that are the first label of their request id (a label replacing an
// earlier one is not passed again: monitors' summaries only add), each
// joined with its stored prediction. It must be fast and must not keep
// the slice.
type LabelObserver interface {
	ObserveLabels(ctx context.Context, labels []JoinedLabel)
}

// JoinedLabel is a label with the prediction it resolves.
type JoinedLabel struct {
	Record predstore.Record
	Label  predstore.Label
}

// Options configure a Service.
type Options struct {
	Observers      []Observer
	LabelObservers []LabelObserver
	// OnObserveError is told when the predictions of a label batch could
	// not be looked up for the label observers (nil: ignored).
	OnObserveError func(error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RefreshAfter is how long an unresolved digest waits before the
	// versions of its model are read again from the registry (default 2s).
	RefreshAfter time.Duration
}

// Service ingests, stores and looks up predictions.
type Service struct {
	reg  Registry
	st   predstore.Store
	opts Options
	res  resolver
}

// New returns a Service.
func New(reg Registry, st predstore.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshAfter == 0 {
		opts.RefreshAfter = 2 * time.Second
	}
	return &Service{reg: reg, st: st, opts: opts, res: resolver{reg: reg, every: opts.RefreshAfter, now: opts.Now, models: map[string]*modelVersions{}}}
}

// Store returns the prediction store.
func (s *Service) Store() predstore.Store { return s.st }

// Rejection says why one input record was not stored.
type Rejection struct {
	Index     int    `json:"index"`
	RequestID string `json:"request_id"`
	Reason    string `json:"reason"`
}

// IngestResult is the answer to an ingest (the data of the API response).
type IngestResult struct {
	Stored     int         `json:"stored"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
	// RequestIDs has one entry per input record, in input order: the
	// stored (or duplicate) record's id, "" for a rejected one.
	RequestIDs []string `json:"request_ids"`
	// Outcomes has one entry per input record (for metrics).
	Outcomes []Outcome `json:"-"`
}

// Outcome is what happened to one input record, with bounded labels.
type Outcome struct {
	Kind   string // "stored", "duplicate", "rejected"
	Model  string // the model name if it is registered, else ""
	Prefix string // the 16-hex prefix of the resolved digest, or ""
}

// ConflictReason is the rejection reason of a request id reused for
// different content.
const ConflictReason = "request_id already used by a different record"

// Ingest resolves and stores parsed records. Records are stored durably
// before it returns; an error means none of the valid records is known to
// be stored (the client retries: request ids make that safe).
func (s *Service) Ingest(ctx context.Context, in []Input) (*IngestResult, error) {
	res := &IngestResult{Rejected: []Rejection{}, RequestIDs: make([]string, len(in)), Outcomes: make([]Outcome, len(in))}
	recs := make([]predstore.Record, 0, len(in))
	idx := make([]int, 0, len(in))
	reject := func(i int, reason string) {
		res.Rejected = append(res.Rejected, Rejection{Index: i, RequestID: in[i].Record.RequestID, Reason: reason})
		res.Outcomes[i].Kind = "rejected"
	}
	var lastModel, lastDigest string
	var last resolved
	for i := range in {
		if in[i].Reason != "" {
			reject(i, in[i].Reason)
			continue
		}
		r := in[i].Record
		var v resolved
		var err error
		if r.Model == lastModel && r.Digest == lastDigest {
			v = last // records of a batch usually share model and digest
		} else if v, err = s.res.resolve(ctx, r.Model, r.Digest); err == nil {
			lastModel, lastDigest, last = r.Model, r.Digest, v
		}
		if err != nil {
			var re *resolveError
			if !errors.As(err, &re) {
				return nil, err
			}
			if re.modelKnown {
				res.Outcomes[i].Model = r.Model
			}
			reject(i, re.msg)
			continue
		}
		r.Version, r.Digest = v.version, v.digest
		if r.RequestID == "" {
			r.RequestID = NewRequestID(s.opts.Now())
		}
		res.Outcomes[i].Model, res.Outcomes[i].Prefix = r.Model, v.digest[7:23]
		recs = append(recs, r)
		idx = append(idx, i)
	}
	if len(recs) == 0 {
		return res, nil
	}
	outs, err := s.st.Append(ctx, recs)
	if err != nil {
		return nil, fmt.Errorf("failed to store predictions: %w", err)
	}
	stored := recs[:0:0]
	all := true // every record stored: observers get recs itself
	for k, o := range outs {
		i := idx[k]
		switch o {
		case predstore.Stored:
			res.Stored++
			res.RequestIDs[i] = recs[k].RequestID
			res.Outcomes[i].Kind = "stored"
			if !all {
				stored = append(stored, recs[k])
			}
		case predstore.Duplicate:
			if all {
				all, stored = false, append(stored, recs[:k]...)
			}
			res.Duplicates++
			res.RequestIDs[i] = recs[k].RequestID
			res.Outcomes[i].Kind = "duplicate"
		default:
			if all {
				all, stored = false, append(stored, recs[:k]...)
			}
			in[i].Record.RequestID = recs[k].RequestID
			reject(i, ConflictReason)
		}
	}
	if len(res.Rejected) > 1 {
		sortRejections(res.Rejected)
	}
	if all {
		stored = recs
	}
	if len(stored) > 0 {
		for _, o := range s.opts.Observers {
			o.Observe(ctx, stored)
		}
	}
	return res, nil
}

func sortRejections(r []Rejection) {
	// Insertion sort: rejections are nearly sorted (conflicts come last).
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].Index < r[j-1].Index; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// LabelResult is the answer to a labels ingest.
type LabelResult struct {
	Stored   int         `json:"stored"`
	Rejected []Rejection `json:"rejected"`
}

// UnknownReason is the rejection reason of a label whose request id has
// no stored prediction.
const UnknownReason = "no prediction with this request_id"

// Label stores parsed labels; a label for a request id replaces an
// earlier one.
func (s *Service) Label(ctx context.Context, in []LabelInput) (*LabelResult, error) {
	res := &LabelResult{Rejected: []Rejection{}}
	var ls []predstore.Label
	var idx []int
	for i := range in {
		if in[i].Reason != "" {
			res.Rejected = append(res.Rejected, Rejection{Index: i, RequestID: in[i].Label.RequestID, Reason: in[i].Reason})
			continue
		}
		ls = append(ls, in[i].Label)
		idx = append(idx, i)
	}
	if len(ls) > 0 {
		outs, err := s.st.Label(ctx, ls)
		if err != nil {
			return nil, fmt.Errorf("failed to store labels: %w", err)
		}
		var first []int
		for k, o := range outs {
			switch o {
			case predstore.Stored:
				first = append(first, k)
				res.Stored++
				continue
			case predstore.Replaced:
				res.Stored++
				continue
			}
			res.Rejected = append(res.Rejected, Rejection{Index: idx[k], RequestID: ls[k].RequestID, Reason: UnknownReason})
		}
		sortRejections(res.Rejected)
		if len(first) > 0 && len(s.opts.LabelObservers) > 0 {
			s.observeLabels(ctx, ls, first)
		}
	}
	return res, nil
}

// observeLabels joins the first labels ls[first...] with their stored
// predictions (one batched lookup) and passes them to the label
// observers. On a failed lookup the labels stay stored,
// only the monitors miss them (the answer to the client is unchanged);
// OnObserveError hears of it.
func (s *Service) observeLabels(ctx context.Context, ls []predstore.Label, first []int) {
	ids := make([]string, len(first))
	for i, k := range first {
		ids[i] = ls[k].RequestID
	}
	// The labels are committed: finish the join even if the client left.
	recs, err := s.st.Records(context.WithoutCancel(ctx), ids)
	if err != nil {
		if s.opts.OnObserveError != nil {
			s.opts.OnObserveError(err)
		}
		return
	}
	byID := make(map[string]*predstore.Record, len(recs))
	for i := range recs {
		byID[recs[i].RequestID] = &recs[i]
	}
	joined := make([]JoinedLabel, 0, len(first))
	for _, k := range first {
		if r := byID[ls[k].RequestID]; r != nil {
			joined = append(joined, JoinedLabel{Record: *r, Label: ls[k]})
		}
	}
	for _, o := range s.opts.LabelObservers {
		o.ObserveLabels(ctx, joined)
	}
}

// Lookup is everything known about one prediction.
type Lookup struct {
	Record *predstore.Record `json:"record"`
	Label  *predstore.Label  `json:"label,omitempty"`
	// Version is the registered version that produced the record, with
	// its pinned digest (manifest.digest) and signatures.
	Version *store.Version `json:"version"`
	// Aliases are the model's aliases that pointed somewhere at the
	// record's ts, with their target then.
	Aliases []AliasAt `json:"aliases"`
}

// AliasAt is an alias's target at a moment.
type AliasAt struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
	// Since is when the alias was set to Version.
	Since time.Time `json:"since"`
	// Current is true if the alias still points there now.
	Current bool `json:"current"`
}

// Get looks a prediction up by request id: one index lookup in the
// prediction store, one in the registry for the version, and one per
// alias of the model.
func (s *Service) Get(ctx context.Context, requestID string) (*Lookup, error) {
	if err := CheckRequestID(requestID); err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalid, err)
	}
	r, l, err := s.st.Get(ctx, requestID)
	if errors.Is(err, predstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: no prediction with request_id %q", registry.ErrNotFound, requestID)
	}
	if err != nil {
		return nil, err
	}
	v, err := s.reg.GetVersion(ctx, r.Model, r.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to read version %s@%s of prediction %s: %w", r.Model, r.Version, requestID, err)
	}
	out := &Lookup{Record: r, Label: l, Version: v, Aliases: []AliasAt{}}
	cur, err := s.reg.ListAliases(ctx, r.Model)
	if err != nil {
		return nil, err
	}
	for _, a := range cur {
		e, err := s.reg.ResolveAlias(ctx, r.Model, a.Alias, r.TS)
		if errors.Is(err, registry.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			continue // did not exist yet, or removed then
		}
		if err != nil {
			return nil, err
		}
		out.Aliases = append(out.Aliases, AliasAt{Alias: a.Alias, Version: e.Version, Since: e.At, Current: e.Seq == a.Seq})
	}
	return out, nil
}

// NewRequestID returns a new request id: a UUIDv7 (RFC 9562), time-ordered
// so that ids generated together sit together in the index.
func NewRequestID(now time.Time) string {
	var b [16]byte
	rand.Read(b[6:])
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// resolver maps (model, digest or prefix) to a registered version,
// caching each model's versions.
type resolver struct {
	reg   Registry
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	models map[string]*modelVersions
}

type modelVersions struct {
	mu      sync.Mutex
	fetched time.Time
	known   bool // the model exists
	list    []resolved
}

type resolved struct{ version, digest string }

type resolveError struct {
	msg        string
	modelKnown bool
}

func (e *resolveError) Error() string { return e.msg }

func (r *resolver) resolve(ctx context.Context, model, hexd string) (resolved, error) {
	r.mu.Lock()
	mv := r.models[model]
	if mv == nil {
		if len(r.models) >= 10_000 {
			clear(r.models) // bounded: names of unknown models come from clients
		}
		mv = &modelVersions{}
		r.models[model] = mv
	}
	r.mu.Unlock()
	mv.mu.Lock()
	defer mv.mu.Unlock()
	if v, n := mv.match(hexd); n == 1 {
		return v, nil
	}
	if mv.fetched.IsZero() || r.now().Sub(mv.fetched) >= r.every {
		if err := mv.load(ctx, r.reg, model); err != nil {
			return resolved{}, err
		}
		mv.fetched = r.now()
	}
	if !mv.known {
		return resolved{}, &resolveError{msg: fmt.Sprintf("model %q is not registered", model)}
	}
	switch v, n := mv.match(hexd); n {
	case 1:
		return v, nil
	case 0:
		return resolved{}, &resolveError{msg: fmt.Sprintf("no registered version of %s has digest sha256:%s", model, hexd), modelKnown: true}
	default:
		return resolved{}, &resolveError{msg: fmt.Sprintf("digest sha256:%s matches %d versions of %s", hexd, n, model), modelKnown: true}
	}
}

func (mv *modelVersions) match(hexd string) (resolved, int) {
	var out resolved
	n := 0
	for _, v := range mv.list {
		if strings.HasPrefix(v.digest[7:], hexd) {
			out = v
			n++
		}
	}
	return out, n
}

func (mv *modelVersions) load(ctx context.Context, reg Registry, model string) error {
	var list []resolved
	after := ""
	for {
		page, err := reg.ListVersions(ctx, model, after, 1000)
		if errors.Is(err, registry.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			mv.known, mv.list = false, nil
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read the versions of %s: %w", model, err)
		}
		for _, v := range page {
			list = append(list, resolved{version: v.Version, digest: v.Manifest.Digest.String()})
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Version
	}
	mv.known, mv.list = true, list
	return nil
}
