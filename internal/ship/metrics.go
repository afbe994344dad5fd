package ship

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queued      prometheus.Counter
	shipped     prometheus.Counter
	spilled     prometheus.Counter
	rejected    prometheus.Counter
	duplicates  prometheus.Counter
	dropped     *prometheus.CounterVec
	requests    *prometheus.CounterVec
	sendSeconds prometheus.Histogram
	spillBytes  prometheus.Gauge
	queueDepth  prometheus.GaugeFunc
}

// newMetrics builds the shipper's metrics; with a nil registerer they are
// counted but not exported.
func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_ship_records_queued_total", Help: "Records accepted into the in-memory queue.",
		}),
		shipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_ship_records_shipped_total", Help: "Records acknowledged by the server (stored or duplicates).",
		}),
		spilled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_ship_records_spilled_total", Help: "Records written to the spill directory.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_ship_records_rejected_total", Help: "Records the server rejected individually (dropped).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_ship_records_duplicate_total", Help: "Records the server already held (re-sent after a retry).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_ship_records_dropped_total", Help: "Records dropped before reaching the server, by reason.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_ship_requests_total", Help: "Ingest requests by answer class (2xx, 4xx, 5xx, error).",
		}, []string{"code"}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_ship_request_duration_seconds", Help: "Duration of ingest requests.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		spillBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "custody_ship_spill_bytes", Help: "Bytes in the spill directory.",
		}),
	}
	for _, reason := range []string{"queue_full", "spill_full", "spill_error", "too_large", "refused", "corrupt", "shutdown", "closed"} {
		m.dropped.WithLabelValues(reason)
	}
	for _, c := range []string{"2xx", "4xx", "5xx", "error"} {
		m.requests.WithLabelValues(c)
	}
	m.register(r, m.queued, m.shipped, m.spilled, m.rejected, m.duplicates, m.dropped, m.requests, m.sendSeconds, m.spillBytes)
	return m
}

func (m *metrics) register(r prometheus.Registerer, cs ...prometheus.Collector) {
	if r == nil {
		return
	}
	for _, c := range cs {
		r.MustRegister(c)
	}
}
