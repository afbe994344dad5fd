package api

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, in a registry of their own
// (never the global one), served at /metrics. Label values are bounded:
// model names and 16-hex digest prefixes only (never request ids), and at
// most [MaxModelLabels] distinct (model, prefix) pairs; further pairs are
// counted under model="other", model_sha256_prefix="other". Records
// rejected before their model was resolved count under model="unresolved".
type Metrics struct {
	Requests     atomic.Int64 // all responses
	ClientErrors atomic.Int64 // 4xx
	ServerErrors atomic.Int64 // 5xx

	reg         *prometheus.Registry
	predictions *prometheus.CounterVec
	labels      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	score       *prometheus.HistogramVec
	batch       prometheus.Histogram
	commit      prometheus.Histogram
	commitRecs  prometheus.Histogram
	ack         prometheus.Histogram

	mu   sync.Mutex
	sets map[[2]string]bool
}

// MaxModelLabels caps the distinct (model, prefix) label pairs.
const MaxModelLabels = 256

// NewMetrics returns the server's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), sets: map[[2]string]bool{}}
	counterFunc := func(name, help string, v *atomic.Int64) prometheus.CounterFunc {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	model := []string{"model", "model_sha256_prefix"}
	m.predictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custody_predictions_total",
		Help: "Prediction records received, by model, digest prefix and outcome (stored, duplicate, rejected).",
	}, append(model, "outcome"))
	m.labels = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custody_prediction_labels_total",
		Help: "Labels received, by outcome (stored, rejected).",
	}, []string{"outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "custody_prediction_latency_seconds",
		Help:    "Model inference latency reported by stored records (latency_ms), in seconds.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, model)
	m.score = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "custody_prediction_score",
		Help:    "Scores of stored records: the numeric prediction or the highest class probability.",
		Buckets: prometheus.LinearBuckets(0.05, 0.05, 20),
	}, model)
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "custody_prediction_ingest_batch_records",
		Help:    "Records per ingest request.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 9),
	})
	m.ack = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "custody_prediction_ingest_seconds",
		Help:    "Time to answer an ingest request (parse, resolve, durable commit).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "custody_prediction_commit_seconds",
		Help:    "Duration of one group commit of the prediction store (transaction and fsync).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	m.commitRecs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "custody_prediction_commit_records",
		Help:    "Records and labels written by one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	})
	m.reg.MustRegister(
		counterFunc("custody_api_requests_total", "HTTP responses served.", &m.Requests),
		counterFunc("custody_api_client_errors_total", "HTTP responses with a 4xx status.", &m.ClientErrors),
		counterFunc("custody_api_server_errors_total", "HTTP responses with a 5xx status.", &m.ServerErrors),
		m.predictions, m.labels, m.latency, m.score, m.batch, m.ack, m.commit, m.commitRecs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registerer lets other parts of the server add their metrics.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) observe(status int) {
	m.Requests.Add(1)
	switch {
	case status >= 500:
		m.ServerErrors.Add(1)
	case status >= 400:
		m.ClientErrors.Add(1)
	}
}

// bound returns the label values for (model, prefix), folding pairs past
// the cap into "other".
func (m *Metrics) bound(model, prefix string) (string, string) {
	if model == "" {
		return "unresolved", ""
	}
	k := [2]string{model, prefix}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sets[k] {
		return model, prefix
	}
	if len(m.sets) >= MaxModelLabels {
		return "other", "other"
	}
	m.sets[k] = true
	return model, prefix
}

// ObserveIngest counts the outcome of an ingest request.
func (m *Metrics) ObserveIngest(res *predict.IngestResult, d time.Duration) {
	m.batch.Observe(float64(len(res.Outcomes)))
	m.ack.Observe(d.Seconds())
	type key struct{ model, prefix, kind string }
	counts := map[key]int{}
	for _, o := range res.Outcomes {
		counts[key{o.Model, o.Prefix, o.Kind}]++
	}
	for k, n := range counts {
		model, prefix := m.bound(k.model, k.prefix)
		m.predictions.WithLabelValues(model, prefix, k.kind).Add(float64(n))
	}
}

// ObserveLabels counts the outcome of a labels request.
func (m *Metrics) ObserveLabels(res *predict.LabelResult) {
	m.labels.WithLabelValues("stored").Add(float64(res.Stored))
	m.labels.WithLabelValues("rejected").Add(float64(len(res.Rejected)))
}

// ObserveCommit records one group commit (the prediction store's hook).
func (m *Metrics) ObserveCommit(records int, d time.Duration) {
	m.commit.Observe(d.Seconds())
	m.commitRecs.Observe(float64(records))
}

// Observe implements predict.Observer: score and latency histograms of
// stored records.
func (m *Metrics) Observe(_ context.Context, recs []predstore.Record) {
	for i := range recs {
		r := &recs[i]
		model, prefix := m.bound(r.Model, r.Digest[7:min(23, len(r.Digest))])
		if s, ok := predict.Score(r.Prediction); ok {
			m.score.WithLabelValues(model, prefix).Observe(s)
		}
		if r.LatencyMS != nil {
			m.latency.WithLabelValues(model, prefix).Observe(*r.LatencyMS / 1000)
		}
	}
}
