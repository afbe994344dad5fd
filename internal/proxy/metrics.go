package proxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests    *prometheus.CounterVec
	upstream    prometheus.Histogram
	overhead    prometheus.Histogram
	extractions *prometheus.CounterVec
	records     prometheus.Counter

	// Children looked up once: these are counted on every request.
	byClass   [6]prometheus.Counter // [2..5]: 2xx..5xx; [0]: error
	extractOK prometheus.Counter
}

// request counts one request by its upstream status class.
func (m *metrics) request(code int) {
	switch {
	case code < 100 || code > 599:
		m.byClass[0].Inc()
	case code < 200:
		m.requests.WithLabelValues("1xx").Inc() // 101 Switching Protocols
	default:
		m.byClass[code/100].Inc()
	}
}

// newMetrics builds the proxy's metrics; the CLI wraps the registerer with
// the model name and 16-hex digest prefix as constant labels. With a nil
// registerer they are counted but not exported.
func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_proxy_requests_total", Help: "Proxied requests by upstream status class (error: no upstream answer).",
		}, []string{"code"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_proxy_upstream_duration_seconds", Help: "Time from forwarding a request to the upstream's response headers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "custody_proxy_overhead_seconds", Help: "Time spent in the proxy per request, excluding the upstream's time to headers.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		extractions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_proxy_extractions_total", Help: "Inference exchanges by extraction result (ok, error, too_large, not_json, upstream_error, incomplete, dropped).",
		}, []string{"result"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custody_proxy_records_total", Help: "Prediction records extracted and handed to the shipper.",
		}),
	}
	m.byClass[0] = m.requests.WithLabelValues("error")
	for i, c := range []string{"2xx", "3xx", "4xx", "5xx"} {
		m.byClass[i+2] = m.requests.WithLabelValues(c)
	}
	m.extractOK = m.extractions.WithLabelValues("ok")
	for _, res := range []string{"ok", "error", "too_large", "not_json", "upstream_error", "incomplete", "dropped"} {
		m.extractions.WithLabelValues(res)
	}
	if r != nil {
		r.MustRegister(m.requests, m.upstream, m.overhead, m.extractions, m.records)
	}
	return m
}
