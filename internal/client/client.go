// Package client is a Go client of the custody registry API (internal/api).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/monitor/watch"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
)

// Error is an error response from the server.
type Error struct {
	Status int
	Type   api.ErrorType
	Msg    string
	// Reasons are a policy's deny reasons, verbatim (policy_denied).
	Reasons []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("server: %s (%s, HTTP %d)", e.Msg, e.Type, e.Status)
}

// IsType reports whether err is a server error of type t.
func IsType(err error, t api.ErrorType) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == t
}

// Client talks to one server with one token.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New returns a client for the server at base (e.g. http://127.0.0.1:8420).
func New(base, token string) (*Client, error) {
	if base == "" {
		return nil, errors.New("no server address (--server or CUSTODY_SERVER)")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q is not an http(s) URL", base)
	}
	if token == "" {
		return nil, errors.New("no token (--token or CUSTODY_TOKEN)")
	}
	return &Client{base: u, token: token, hc: &http.Client{Timeout: 5 * time.Minute}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (int, error) {
	// path is already escaped (see seg): keep it as the raw path, so an
	// escaped '/' in a segment (request ids "<id>/<row>") stays one segment
	// instead of being escaped a second time.
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return 0, fmt.Errorf("bad request path %q: %w", path, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + unescaped
	u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	hdr := http.Header{}
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd = b.r
		hdr = b.hdr
	default:
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
		hdr.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("failed to reach the server: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return 0, fmt.Errorf("failed to read the response: %w", err)
	}
	var env api.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return resp.StatusCode, fmt.Errorf("server answered HTTP %d with a body that is not an API envelope", resp.StatusCode)
	}
	if env.Status != "success" {
		return resp.StatusCode, &Error{Status: resp.StatusCode, Type: env.ErrorType, Msg: env.Error, Reasons: env.Reasons}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("failed to decode the response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func seg(s string) string { return url.PathEscape(s) }

// RegisterVersion registers a model version; created is false when the
// same bytes were already registered under it.
func (c *Client) RegisterVersion(ctx context.Context, model, version string, body *api.RegisterBody) (v *store.Version, created bool, err error) {
	v = new(store.Version)
	code, err := c.do(ctx, "PUT", "/api/v1/models/"+seg(model)+"/versions/"+seg(version), nil, body, v)
	return v, code == http.StatusCreated, err
}

// GetVersion returns a model version.
func (c *Client) GetVersion(ctx context.Context, model, version string) (*store.Version, error) {
	v := new(store.Version)
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(model)+"/versions/"+seg(version), nil, nil, v)
	return v, err
}

// ListModels returns every model (following pages).
func (c *Client) ListModels(ctx context.Context) ([]store.Model, error) {
	var all []store.Model
	after := ""
	for {
		var page []store.Model
		if _, err := c.do(ctx, "GET", "/api/v1/models", url.Values{"after": {after}, "limit": {"1000"}}, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].Name
	}
}

// SetAlias points an alias at a version.
func (c *Client) SetAlias(ctx context.Context, model, alias, version string) (*store.AliasEvent, error) {
	e := new(store.AliasEvent)
	_, err := c.do(ctx, "PUT", "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias), nil, api.AliasBody{Version: version}, e)
	return e, err
}

// Approve records the token's approval of a version (policy approve);
// created is false when it had approved it already.
func (c *Client) Approve(ctx context.Context, model, version, comment string) (*store.Approval, bool, error) {
	a := new(store.Approval)
	code, err := c.do(ctx, "POST", "/api/v1/models/"+seg(model)+"/versions/"+seg(version)+"/approvals", nil, api.ApproveBody{Comment: comment}, a)
	return a, code == http.StatusCreated, err
}

// Promote moves an alias to a version through the promote policy.
func (c *Client) Promote(ctx context.Context, model, version, alias string) (*store.AliasEvent, error) {
	e := new(store.AliasEvent)
	_, err := c.do(ctx, "POST", "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias)+"/promote", nil, api.PromoteBody{Version: version}, e)
	return e, err
}

// Rollback moves an alias back to version to ("": the most recent earlier
// target not marked bad) and marks the version it leaves bad.
func (c *Client) Rollback(ctx context.Context, model, alias, to, reason string) (*store.AliasEvent, error) {
	e := new(store.AliasEvent)
	_, err := c.do(ctx, "POST", "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias)+"/rollback", nil, api.RollbackBody{To: to, Reason: reason}, e)
	return e, err
}

// VersionState returns a version's status (ok or bad) and approvals.
func (c *Client) VersionState(ctx context.Context, model, version string) (*registry.VersionState, error) {
	st := new(registry.VersionState)
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(model)+"/versions/"+seg(version)+"/status", nil, nil, st)
	return st, err
}

// ResolveAlias returns the alias's target now (at zero) or at a past time.
func (c *Client) ResolveAlias(ctx context.Context, model, alias string, at time.Time) (*store.AliasEvent, error) {
	q := url.Values{}
	if !at.IsZero() {
		q.Set("at", at.UTC().Format(time.RFC3339Nano))
	}
	e := new(store.AliasEvent)
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias), q, nil, e)
	return e, err
}

// AliasHistory returns every change of an alias.
func (c *Client) AliasHistory(ctx context.Context, model, alias string) ([]store.AliasEvent, error) {
	var h []store.AliasEvent
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(model)+"/aliases/"+seg(alias)+"/history", nil, nil, &h)
	return h, err
}

// RegisterDataset registers a dataset version.
func (c *Client) RegisterDataset(ctx context.Context, name, version string, body *api.DatasetBody) (*store.Dataset, bool, error) {
	d := new(store.Dataset)
	code, err := c.do(ctx, "PUT", "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version), nil, body, d)
	return d, code == http.StatusCreated, err
}

// GetDataset returns a dataset version.
func (c *Client) GetDataset(ctx context.Context, name, version string) (*store.Dataset, error) {
	d := new(store.Dataset)
	_, err := c.do(ctx, "GET", "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version), nil, nil, d)
	return d, err
}

// AttachEvidence attaches signed data-contract evidence to a dataset
// version; created is false if the same document was already attached.
func (c *Client) AttachEvidence(ctx context.Context, name, version string, body *api.EvidenceBody) (*store.Evidence, bool, error) {
	e := new(store.Evidence)
	code, err := c.do(ctx, "POST", "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version)+"/evidence", nil, body, e)
	return e, code == http.StatusCreated, err
}

// ListEvidence returns the evidence attached to a dataset version.
func (c *Client) ListEvidence(ctx context.Context, name, version string) ([]store.Evidence, error) {
	var out []store.Evidence
	_, err := c.do(ctx, "GET", "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version)+"/evidence", nil, nil, &out)
	return out, err
}

// Upstream returns a model version's lineage.
func (c *Client) Upstream(ctx context.Context, model, version string) (*registry.Lineage, error) {
	l := new(registry.Lineage)
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(model)+"/versions/"+seg(version)+"/lineage", nil, nil, l)
	return l, err
}

// Downstream returns what was produced from a dataset version.
func (c *Client) Downstream(ctx context.Context, name, version string) (*registry.Downstream, error) {
	d := new(registry.Downstream)
	_, err := c.do(ctx, "GET", "/api/v1/datasets/"+seg(name)+"/versions/"+seg(version)+"/lineage", nil, nil, d)
	return d, err
}

// PutModel creates a model or replaces its metadata.
func (c *Client) PutModel(ctx context.Context, name string, body api.ModelBody) (*store.Model, error) {
	m := new(store.Model)
	_, err := c.do(ctx, "PUT", "/api/v1/models/"+seg(name), nil, body, m)
	return m, err
}

// GetModel returns a registered model's metadata.
func (c *Client) GetModel(ctx context.Context, name string) (*store.Model, error) {
	m := new(store.Model)
	_, err := c.do(ctx, "GET", "/api/v1/models/"+seg(name), nil, nil, m)
	return m, err
}

// getRaw fetches a non-envelope resource (checkpoints, tiles), at most max
// bytes. Errors still come as envelopes.
func (c *Client) getRaw(ctx context.Context, path string, max int64) ([]byte, error) {
	// path is already escaped (see seg): keep it as the raw path, so an
	// escaped '/' in a segment (request ids "<id>/<row>") stays one segment
	// instead of being escaped a second time.
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + unescaped
	u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + path
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to reach the server: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var env api.Envelope
		if err := json.Unmarshal(raw, &env); err != nil || env.Status != "error" {
			return nil, fmt.Errorf("server answered HTTP %d with a body that is not an API envelope", resp.StatusCode)
		}
		return nil, &Error{Status: resp.StatusCode, Type: env.ErrorType, Msg: env.Error}
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%s: response larger than %d bytes", path, max)
	}
	return raw, nil
}

// LogCheckpoint returns the log's current signed checkpoint (unverified).
func (c *Client) LogCheckpoint(ctx context.Context) ([]byte, error) {
	return c.getRaw(ctx, "/api/v1/log/checkpoint", 16<<10)
}

// LogTile returns a tile (path as in tlog.Tile.Path: "tile/...").
func (c *Client) LogTile(ctx context.Context, path string) ([]byte, error) {
	return c.getRaw(ctx, "/api/v1/log/"+path, 256*(2+1<<16))
}

func sizeQuery(size int64) url.Values {
	if size <= 0 {
		return nil
	}
	return url.Values{"size": {fmt.Sprint(size)}}
}

// LogEntry returns entry index with its inclusion proof in the tree of
// the given size (0: current).
func (c *Client) LogEntry(ctx context.Context, index, size int64) (*api.InclusionProof, error) {
	var p api.InclusionProof
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/log/entries/%d", index), sizeQuery(size), nil, &p)
	return &p, err
}

// LogConsistency returns the consistency proof from tree size from to the
// tree of the given size (0: current).
func (c *Client) LogConsistency(ctx context.Context, from, size int64) (*api.ConsistencyProof, error) {
	var p api.ConsistencyProof
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/log/consistency/%d", from), sizeQuery(size), nil, &p)
	return &p, err
}

// Get reads any API resource (path under the server, e.g.
// "/api/v1/runs/r1") into out.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := c.do(ctx, "GET", path, query, nil, out)
	return err
}

// rawBody is a request body sent as is, with its headers.
type rawBody struct {
	r   io.Reader
	hdr http.Header
}

func ingestBody(body io.Reader, ndjson, gzipped bool) rawBody {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if ndjson {
		h.Set("Content-Type", "application/x-ndjson")
	}
	if gzipped {
		h.Set("Content-Encoding", "gzip")
	}
	return rawBody{r: body, hdr: h}
}

// IngestPredictions posts a batch of prediction records (a JSON array, or
// NDJSON if ndjson; gzip-compressed if gzipped) to POST /api/v1/predictions.
// A nil error means every stored record is durable on the server; records
// it rejected are listed in the result.
func (c *Client) IngestPredictions(ctx context.Context, body io.Reader, ndjson, gzipped bool) (*api.IngestResult, error) {
	res := new(api.IngestResult)
	_, err := c.do(ctx, "POST", "/api/v1/predictions", nil, ingestBody(body, ndjson, gzipped), res)
	return res, err
}

// IngestLabels posts labels to POST /api/v1/labels.
func (c *Client) IngestLabels(ctx context.Context, body io.Reader, ndjson, gzipped bool) (*api.LabelResult, error) {
	res := new(api.LabelResult)
	_, err := c.do(ctx, "POST", "/api/v1/labels", nil, ingestBody(body, ndjson, gzipped), res)
	return res, err
}

// GetPrediction looks a logged prediction up by request id.
func (c *Client) GetPrediction(ctx context.Context, requestID string) (*api.PredictionLookup, error) {
	l := new(api.PredictionLookup)
	_, err := c.do(ctx, "GET", "/api/v1/predictions/"+seg(requestID), nil, nil, l)
	return l, err
}

// ReportDeployment reports that this process started a verified version.
func (c *Client) ReportDeployment(ctx context.Context, body *api.DeploymentBody) (*store.Deployment, error) {
	d := new(store.Deployment)
	_, err := c.do(ctx, "POST", "/api/v1/deployments", nil, body, d)
	return d, err
}

// ListDeployments returns deployment reports with ID > after (model "":
// every model), at most limit.
func (c *Client) ListDeployments(ctx context.Context, model string, after int64, limit int) ([]store.Deployment, error) {
	var ds []store.Deployment
	q := url.Values{"after": {fmt.Sprint(after)}, "limit": {fmt.Sprint(limit)}}
	if model != "" {
		q.Set("model", model)
	}
	_, err := c.do(ctx, "GET", "/api/v1/deployments", q, nil, &ds)
	return ds, err
}

// GetDeployment returns one deployment report.
func (c *Client) GetDeployment(ctx context.Context, id int64) (*store.Deployment, error) {
	d := new(store.Deployment)
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/deployments/%d", id), nil, nil, d)
	return d, err
}

// MonitorReport fetches a monitor's report: the windows starting in
// [from, to) merged, or (zero times) the newest window with data.
func (c *Client) MonitorReport(ctx context.Context, name string, from, to time.Time) (*watch.Result, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	r := new(watch.Result)
	_, err := c.do(ctx, "GET", "/api/v1/monitors/"+seg(name)+"/report", q, nil, r)
	return r, err
}

// EvaluateMonitor evaluates a monitor's due windows now.
func (c *Client) EvaluateMonitor(ctx context.Context, name string) ([]*watch.Result, error) {
	var rs []*watch.Result
	_, err := c.do(ctx, "POST", "/api/v1/monitors/"+seg(name)+"/evaluate", nil, nil, &rs)
	return rs, err
}
