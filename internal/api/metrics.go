package api

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics counts API responses by class. They are served at /metrics in the
// Prometheus text exposition format (no client library: three counters).
type Metrics struct {
	Requests     atomic.Int64 // all responses
	ClientErrors atomic.Int64 // 4xx
	ServerErrors atomic.Int64 // 5xx
}

func newMetrics() *Metrics { return &Metrics{} }

func (m *Metrics) observe(status int) {
	m.Requests.Add(1)
	switch {
	case status >= 500:
		m.ServerErrors.Add(1)
	case status >= 400:
		m.ClientErrors.Add(1)
	}
}

// WriteText writes the counters in the Prometheus text format 0.0.4.
func (m *Metrics) WriteText(w io.Writer) error {
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"custody_api_requests_total", "HTTP responses served.", m.Requests.Load()},
		{"custody_api_client_errors_total", "HTTP responses with a 4xx status.", m.ClientErrors.Load()},
		{"custody_api_server_errors_total", "HTTP responses with a 5xx status.", m.ServerErrors.Load()},
	} {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v); err != nil {
			return err
		}
	}
	return nil
}
