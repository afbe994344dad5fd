package api

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/custody-ml/custody/internal/monitor/report"
	"github.com/custody-ml/custody/internal/monitor/watch"
)

// MonitorInfo is one monitor in GET /monitors: its configuration and its
// newest stored result (none before the first evaluation).
type MonitorInfo struct {
	Monitor watch.Monitor `json:"monitor"`
	Latest  *watch.Result `json:"latest,omitempty"`
}

func (s *Server) engine(c *call) (*watch.Engine, error) {
	if s.opts.Monitors == nil {
		return nil, errorf(ErrNotFound, "this server runs no monitors (custody server --monitors)")
	}
	e := s.opts.Monitors.Engine(c.path("name"))
	if e == nil {
		return nil, errorf(ErrNotFound, "no monitor named %q", c.path("name"))
	}
	return e, nil
}

// redactHooks keeps only the scheme and host of webhook URLs: their paths
// and queries often carry credentials (chat webhooks), and a viewer token
// is enough to list monitors.
func redactHooks(m watch.Monitor) watch.Monitor {
	hooks := make([]watch.Webhook, len(m.Alerts))
	for i, h := range m.Alerts {
		h.URL = "(invalid)"
		if u, err := url.Parse(m.Alerts[i].URL); err == nil {
			h.URL = u.Scheme + "://" + u.Host + "/..."
		}
		hooks[i] = h
	}
	m.Alerts = hooks
	return m
}

func (s *Server) listMonitors(c *call) (any, int, error) {
	out := []MonitorInfo{}
	if s.opts.Monitors == nil {
		return out, http.StatusOK, nil
	}
	for _, e := range s.opts.Monitors.Engines() {
		info := MonitorInfo{Monitor: redactHooks(e.Monitor())}
		rs, err := e.Results(c.r.Context(), 1)
		if err != nil {
			return nil, 0, err
		}
		if len(rs) > 0 {
			info.Latest = rs[len(rs)-1]
		}
		out = append(out, info)
	}
	return out, http.StatusOK, nil
}

// reportWindow reads ?from=&to= (RFC 3339; the windows starting in
// [from, to) merged) or ?at= (the window holding that time); with
// neither, the newest window with data.
func reportWindow(c *call, e *watch.Engine) (from, to time.Time, err error) {
	q := c.r.URL.Query()
	parse := func(name string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339Nano, q.Get(name))
		if err != nil {
			return t, errorf(ErrBadRequest, "%s: want an RFC 3339 time", name)
		}
		return t, nil
	}
	win := time.Duration(e.Monitor().Window)
	switch {
	case q.Get("from") != "" || q.Get("to") != "":
		if from, err = parse("from"); err != nil {
			return
		}
		if to, err = parse("to"); err != nil {
			return
		}
		if !to.After(from) {
			return from, to, errorf(ErrBadRequest, "to must be after from")
		}
	case q.Get("at") != "":
		t, err := parse("at")
		if err != nil {
			return from, to, err
		}
		from = e.WindowStart(t)
		to = from.Add(win)
	default:
		ws, err := e.Windows(c.r.Context())
		if err != nil {
			return from, to, err
		}
		if len(ws) == 0 {
			return from, to, errorf(ErrNotFound, "monitor %s has no data yet", e.Monitor().Name)
		}
		from = ws[len(ws)-1]
		to = from.Add(win)
	}
	return from, to, nil
}

func (s *Server) report(c *call) (*watch.Result, error) {
	e, err := s.engine(c)
	if err != nil {
		return nil, err
	}
	from, to, err := reportWindow(c, e)
	if err != nil {
		return nil, err
	}
	return e.Report(c.r.Context(), from, to)
}

func (s *Server) monitorReport(c *call) (any, int, error) {
	r, err := s.report(c)
	return r, http.StatusOK, err
}

func (s *Server) monitorReportHTML(c *call) (any, int, error) {
	r, err := s.report(c)
	if err != nil {
		return nil, 0, err
	}
	var b bytes.Buffer
	if err := report.HTML(&b, r); err != nil {
		return nil, 0, err
	}
	return rawResponse{contentType: "text/html; charset=utf-8", body: b.Bytes()}, http.StatusOK, nil
}

func (s *Server) monitorResults(c *call) (any, int, error) {
	e, err := s.engine(c)
	if err != nil {
		return nil, 0, err
	}
	limit, err := queryInt(c.r, "limit", 100)
	if err != nil {
		return nil, 0, err
	}
	rs, err := e.Results(c.r.Context(), limit)
	if rs == nil {
		rs = []*watch.Result{}
	}
	return rs, http.StatusOK, err
}

// evaluateMonitor evaluates the monitor's due windows now (what the
// schedule does every --monitor-interval) and returns their results;
// rollbacks and alerts happen as on the schedule.
func (s *Server) evaluateMonitor(c *call) (any, int, error) {
	e, err := s.engine(c)
	if err != nil {
		return nil, 0, err
	}
	rs, err := e.EvaluateDue(context.WithoutCancel(c.r.Context()))
	if rs == nil {
		rs = []*watch.Result{}
	}
	return rs, http.StatusOK, err
}
