package api

import (
	"sync/atomic"
)

// Metrics counts API responses by class. They are exposed to whoever
// embeds the server (tests, the server's log on shutdown); a Prometheus
// exposition endpoint can be built over them.
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
