package watch

import "github.com/prometheus/client_golang/prometheus"

// MonitorMetrics are the Prometheus metrics of monitors. One serves
// every engine of a process (labels: the monitor's name, and metric and
// feature names from its configuration and reference, all bounded).
type MonitorMetrics struct {
	observations *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	evaluations  *prometheus.CounterVec
	breaches     *prometheus.CounterVec
	rollbacks    *prometheus.CounterVec
	alerts       *prometheus.CounterVec
	consecutive  *prometheus.GaugeVec
	value        *prometheus.GaugeVec
}

// NewMonitorMetrics registers the monitor metrics with r (never the global
// registry by default).
func NewMonitorMetrics(r prometheus.Registerer) *MonitorMetrics {
	m := &MonitorMetrics{
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_observations_total",
			Help: "Predictions and labels folded into monitor summaries."}, []string{"monitor", "kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_dropped_total",
			Help: "Records older than the kept windows, not counted."}, []string{"monitor"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_evaluations_total",
			Help: "Window evaluations by resulting status."}, []string{"monitor", "status"}),
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_breaches_total",
			Help: "Overall threshold breaches by metric."}, []string{"monitor", "metric"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_rollbacks_total",
			Help: "Automatic rollbacks by result (ok, failed)."}, []string{"monitor", "result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "custody_monitor_alerts_total",
			Help: "Alerts by event and delivery result (sent, failed)."}, []string{"monitor", "event", "result"}),
		consecutive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "custody_monitor_consecutive_breaches",
			Help: "Current streak of windows breaching a rollback metric."}, []string{"monitor"}),
		value: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "custody_monitor_metric_value",
			Help: "Value of each overall metric in the last evaluated window."}, []string{"monitor", "metric", "feature"}),
	}
	if r != nil {
		r.MustRegister(m.observations, m.dropped, m.evaluations, m.breaches, m.rollbacks, m.alerts, m.consecutive, m.value)
	}
	return m
}

// observe records an evaluation's outcome.
func (m *MonitorMetrics) observe(r *Result) {
	if m == nil {
		return
	}
	m.evaluations.WithLabelValues(r.Monitor, r.Status).Inc()
	for _, mr := range r.Metrics {
		if mr.Segment != "" {
			continue
		}
		m.value.WithLabelValues(r.Monitor, mr.Metric, mr.Feature).Set(float64(mr.Value))
		if mr.Breached {
			m.breaches.WithLabelValues(r.Monitor, mr.Metric).Inc()
		}
	}
	if !r.Reevaluated {
		m.consecutive.WithLabelValues(r.Monitor).Set(float64(r.Consecutive))
	}
	if a := r.Action; a != nil {
		res := "ok"
		if a.Error != "" {
			res = "failed"
		}
		m.rollbacks.WithLabelValues(r.Monitor, res).Inc()
	}
	for _, a := range r.Alerts {
		res := "sent"
		if a.Status != "sent" {
			res = "failed"
		}
		m.alerts.WithLabelValues(r.Monitor, a.Event, res).Inc()
	}
}

func (m *MonitorMetrics) count(monitor, kind string, accepted bool) {
	if m == nil {
		return
	}
	if accepted {
		m.observations.WithLabelValues(monitor, kind).Inc()
	} else {
		m.dropped.WithLabelValues(monitor).Inc()
	}
}
