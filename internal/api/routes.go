package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
)

// routes is the API: every endpoint with the permission it needs. The
// OpenAPI document lists exactly these (checked by a test).
func (s *Server) routes() []route {
	small, upload := s.opts.MaxBodyBytes, s.opts.MaxUploadBytes
	return []route{
		{"GET", "/api/v1/models", registry.PermRead, 0, s.listModels},
		{"GET", "/api/v1/models/{name}", registry.PermRead, 0, s.getModel},
		{"PUT", "/api/v1/models/{name}", registry.PermPublish, small, s.putModel},
		{"GET", "/api/v1/models/{name}/versions", registry.PermRead, 0, s.listVersions},
		{"GET", "/api/v1/models/{name}/versions/{version}", registry.PermRead, 0, s.getVersion},
		{"PUT", "/api/v1/models/{name}/versions/{version}", registry.PermPublish, upload, s.registerVersion},
		{"GET", "/api/v1/models/{name}/versions/{version}/lineage", registry.PermRead, 0, s.upstream},
		{"GET", "/api/v1/models/{name}/versions/{version}/status", registry.PermRead, 0, s.versionState},
		{"POST", "/api/v1/models/{name}/versions/{version}/approvals", registry.PermApprove, small, s.approve},
		{"GET", "/api/v1/models/{name}/aliases", registry.PermRead, 0, s.listAliases},
		{"GET", "/api/v1/models/{name}/aliases/{alias}", registry.PermRead, 0, s.resolveAlias},
		{"PUT", "/api/v1/models/{name}/aliases/{alias}", registry.PermAlias, small, s.setAlias},
		{"DELETE", "/api/v1/models/{name}/aliases/{alias}", registry.PermAlias, 0, s.removeAlias},
		{"GET", "/api/v1/models/{name}/aliases/{alias}/history", registry.PermRead, 0, s.aliasHistory},
		{"POST", "/api/v1/models/{name}/aliases/{alias}/promote", registry.PermAlias, small, s.promote},
		{"POST", "/api/v1/models/{name}/aliases/{alias}/rollback", registry.PermAlias, small, s.rollback},
		{"GET", "/api/v1/datasets/{name}/versions/{version}", registry.PermRead, 0, s.getDataset},
		{"PUT", "/api/v1/datasets/{name}/versions/{version}", registry.PermPublish, upload, s.registerDataset},
		{"GET", "/api/v1/datasets/{name}/versions/{version}/lineage", registry.PermRead, 0, s.downstream},
		{"GET", "/api/v1/datasets/{name}/versions/{version}/evidence", registry.PermRead, 0, s.listEvidence},
		{"POST", "/api/v1/datasets/{name}/versions/{version}/evidence", registry.PermPublish, upload, s.attachEvidence},
		{"GET", "/api/v1/runs/{id}", registry.PermRead, 0, s.getRun},
		{"POST", "/api/v1/tokens", registry.PermAdminTok, small, s.createToken},
		{"POST", "/api/v1/deployments", registry.PermDeploy, small, s.reportDeployment},
		{"GET", "/api/v1/deployments", registry.PermRead, 0, s.listDeployments},
		{"GET", "/api/v1/deployments/{id}", registry.PermRead, 0, s.getDeployment},
		{"GET", "/api/v1/log/checkpoint", registry.PermRead, 0, s.logCheckpoint},
		{"GET", "/api/v1/log/key", registry.PermRead, 0, s.logKey},
		{"GET", "/api/v1/log/tile/{path...}", registry.PermRead, 0, s.logTile},
		{"GET", "/api/v1/log/entries/{index}", registry.PermRead, 0, s.logEntry},
		{"GET", "/api/v1/log/consistency/{from}", registry.PermRead, 0, s.logConsistency},
		{"POST", "/api/v1/predictions", registry.PermIngest, s.opts.MaxIngestBytes, s.ingestPredictions},
		{"GET", "/api/v1/predictions/{request_id}", registry.PermRead, 0, s.getPrediction},
		{"POST", "/api/v1/labels", registry.PermIngest, s.opts.MaxIngestBytes, s.ingestLabels},
		{"GET", "/api/v1/monitors", registry.PermRead, 0, s.listMonitors},
		{"GET", "/api/v1/monitors/{name}/report", registry.PermRead, 0, s.monitorReport},
		{"GET", "/api/v1/monitors/{name}/results", registry.PermRead, 0, s.monitorResults},
		{"POST", "/api/v1/monitors/{name}/evaluate", registry.PermAlias, 0, s.evaluateMonitor},
		{"GET", "/monitors/{name}/report.html", registry.PermRead, 0, s.monitorReportHTML},
	}
}

func (s *Server) listModels(c *call) (any, int, error) {
	limit, err := queryInt(c.r, "limit", 100)
	if err != nil {
		return nil, 0, err
	}
	ms, err := s.svc.ListModels(c.r.Context(), c.r.URL.Query().Get("after"), limit)
	return ms, http.StatusOK, err
}

func (s *Server) getModel(c *call) (any, int, error) {
	m, err := s.svc.GetModel(c.r.Context(), c.path("name"))
	return m, http.StatusOK, err
}

// ModelBody is the body of PUT /models/{name}.
type ModelBody struct {
	Description string   `json:"description"`
	Owners      []string `json:"owners"`
	Tags        []string `json:"tags"`
}

func (s *Server) putModel(c *call) (any, int, error) {
	var b ModelBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	m, err := s.svc.PutModel(c.r.Context(), c.actor, registry.ModelSpec{Name: c.path("name"), Description: b.Description, Owners: b.Owners, Tags: b.Tags})
	return m, http.StatusOK, err
}

func (s *Server) listVersions(c *call) (any, int, error) {
	limit, err := queryInt(c.r, "limit", 100)
	if err != nil {
		return nil, 0, err
	}
	vs, err := s.svc.ListVersions(c.r.Context(), c.path("name"), c.r.URL.Query().Get("after"), limit)
	return vs, http.StatusOK, err
}

func (s *Server) getVersion(c *call) (any, int, error) {
	v, err := s.svc.GetVersion(c.r.Context(), c.path("name"), c.path("version"))
	return v, http.StatusOK, err
}

func (s *Server) registerVersion(c *call) (any, int, error) {
	req, err := decodeRegister(c.r.Body, c.limit)
	if err != nil {
		return nil, 0, err
	}
	req.Model, req.Version = c.path("name"), c.path("version")
	v, created, err := s.svc.RegisterVersion(c.r.Context(), c.actor, *req)
	if err != nil {
		return nil, 0, err
	}
	if created {
		return v, http.StatusCreated, nil
	}
	return v, http.StatusOK, nil
}

func (s *Server) upstream(c *call) (any, int, error) {
	l, err := s.svc.Upstream(c.r.Context(), c.path("name"), c.path("version"))
	return l, http.StatusOK, err
}

func (s *Server) listAliases(c *call) (any, int, error) {
	as, err := s.svc.ListAliases(c.r.Context(), c.path("name"))
	return as, http.StatusOK, err
}

func (s *Server) resolveAlias(c *call) (any, int, error) {
	var at time.Time
	if v := c.r.URL.Query().Get("at"); v != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, 0, errorf(ErrBadRequest, "at: want an RFC 3339 time: %v", err)
		}
	}
	e, err := s.svc.ResolveAlias(c.r.Context(), c.path("name"), c.path("alias"), at)
	return e, http.StatusOK, err
}

// AliasBody is the body of PUT /models/{name}/aliases/{alias}.
type AliasBody struct {
	Version string `json:"version"`
}

func (s *Server) setAlias(c *call) (any, int, error) {
	var b AliasBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	if b.Version == "" {
		return nil, 0, errorf(ErrBadRequest, "version is required (DELETE removes an alias)")
	}
	e, err := s.svc.SetAlias(c.r.Context(), c.actor, c.path("name"), c.path("alias"), b.Version)
	return e, http.StatusOK, err
}

func (s *Server) removeAlias(c *call) (any, int, error) {
	e, err := s.svc.SetAlias(c.r.Context(), c.actor, c.path("name"), c.path("alias"), "")
	return e, http.StatusOK, err
}

func (s *Server) aliasHistory(c *call) (any, int, error) {
	h, err := s.svc.AliasHistory(c.r.Context(), c.path("name"), c.path("alias"))
	return h, http.StatusOK, err
}

func (s *Server) versionState(c *call) (any, int, error) {
	st, err := s.svc.VersionState(c.r.Context(), c.path("name"), c.path("version"))
	return st, http.StatusOK, err
}

// ApproveBody is the body of POST /models/{name}/versions/{version}/approvals.
type ApproveBody struct {
	Comment string `json:"comment"`
}

func (s *Server) approve(c *call) (any, int, error) {
	var b ApproveBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	a, created, err := s.svc.Approve(c.r.Context(), c.actor, c.path("name"), c.path("version"), b.Comment)
	if err != nil {
		return nil, 0, err
	}
	if created {
		return a, http.StatusCreated, nil
	}
	return a, http.StatusOK, nil
}

// PromoteBody is the body of POST /models/{name}/aliases/{alias}/promote.
type PromoteBody struct {
	Version string `json:"version"`
}

func (s *Server) promote(c *call) (any, int, error) {
	var b PromoteBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	e, err := s.svc.Promote(c.r.Context(), c.actor, c.path("name"), b.Version, c.path("alias"))
	return e, http.StatusOK, err
}

// RollbackBody is the body of POST /models/{name}/aliases/{alias}/rollback.
// To "" rolls back to the most recent earlier known-good target.
type RollbackBody struct {
	To     string `json:"to"`
	Reason string `json:"reason"`
}

func (s *Server) rollback(c *call) (any, int, error) {
	var b RollbackBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	e, err := s.svc.RollbackTo(c.r.Context(), c.actor, c.path("name"), c.path("alias"), b.To, b.Reason)
	return e, http.StatusOK, err
}

func (s *Server) getDataset(c *call) (any, int, error) {
	d, err := s.svc.GetDataset(c.r.Context(), c.path("name"), c.path("version"))
	return d, http.StatusOK, err
}

func (s *Server) registerDataset(c *call) (any, int, error) {
	spec, err := decodeDataset(c.r.Body, c.limit)
	if err != nil {
		return nil, 0, err
	}
	spec.Name, spec.Version = c.path("name"), c.path("version")
	d, created, err := s.svc.RegisterDataset(c.r.Context(), c.actor, *spec)
	if err != nil {
		return nil, 0, err
	}
	if created {
		return d, http.StatusCreated, nil
	}
	return d, http.StatusOK, nil
}

func (s *Server) downstream(c *call) (any, int, error) {
	d, err := s.svc.DatasetUsage(c.r.Context(), c.path("name"), c.path("version"))
	return d, http.StatusOK, err
}

func (s *Server) listEvidence(c *call) (any, int, error) {
	evs, err := s.svc.ListEvidence(c.r.Context(), c.path("name"), c.path("version"))
	return evs, http.StatusOK, err
}

func (s *Server) attachEvidence(c *call) (any, int, error) {
	req, err := decodeEvidence(c.r.Body, c.limit)
	if err != nil {
		return nil, 0, err
	}
	req.Dataset, req.Version = c.path("name"), c.path("version")
	e, created, err := s.svc.AttachEvidence(c.r.Context(), c.actor, *req)
	if err != nil {
		return nil, 0, err
	}
	if created {
		return e, http.StatusCreated, nil
	}
	return e, http.StatusOK, nil
}

func (s *Server) getRun(c *call) (any, int, error) {
	r, err := s.svc.GetRun(c.r.Context(), c.path("id"))
	return r, http.StatusOK, err
}

// TokenBody is the body of POST /tokens.
type TokenBody struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

// TokenCreated is the response to POST /tokens. Token is shown once.
type TokenCreated struct {
	Token string       `json:"token"`
	Info  *store.Token `json:"info"`
}

func (s *Server) createToken(c *call) (any, int, error) {
	var b TokenBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	role, err := registry.ParseRole(b.Role)
	if err != nil {
		return nil, 0, err
	}
	plain, tok, err := s.svc.CreateToken(c.r.Context(), c.actor, role, b.Name)
	if err != nil {
		return nil, 0, err
	}
	return TokenCreated{Token: plain, Info: tok}, http.StatusCreated, nil
}

// DeploymentBody is the body of POST /deployments: what a serving process
// (custody exec --server) verified and started.
type DeploymentBody = registry.DeploymentSpec

func (s *Server) reportDeployment(c *call) (any, int, error) {
	var b DeploymentBody
	if err := c.decode(&b); err != nil {
		return nil, 0, err
	}
	d, err := s.svc.ReportDeployment(c.r.Context(), c.actor, b)
	return d, http.StatusCreated, err
}

func (s *Server) listDeployments(c *call) (any, int, error) {
	limit, err := queryInt(c.r, "limit", 100)
	if err != nil {
		return nil, 0, err
	}
	after := int64(0)
	if v := c.r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return nil, 0, errorf(ErrBadRequest, "after: want a deployment id")
		}
	}
	ds, err := s.svc.ListDeployments(c.r.Context(), c.r.URL.Query().Get("model"), after, limit)
	return ds, http.StatusOK, err
}

func (s *Server) getDeployment(c *call) (any, int, error) {
	id, err := strconv.ParseInt(c.path("id"), 10, 64)
	if err != nil || id < 1 {
		return nil, 0, errorf(ErrBadRequest, "deployment id %.40q: want a positive integer", c.path("id"))
	}
	d, err := s.svc.GetDeployment(c.r.Context(), id)
	return d, http.StatusOK, err
}
