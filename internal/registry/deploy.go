package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// MaxHostLen bounds a deployment report's host name.
const MaxHostLen = 255

// DeploymentSpec is what a serving process reports when it starts a
// model version it verified.
type DeploymentSpec struct {
	Model   string        `json:"model"`
	Alias   string        `json:"alias"`
	Version string        `json:"version"`
	Digest  digest.Digest `json:"digest"`
	// AliasLogIndex is the log index of the alias change the process
	// verified; -1 when it was not deployed through an alias.
	AliasLogIndex int64     `json:"log_index"`
	Host          string    `json:"host"`
	PID           int64     `json:"pid"`
	StartedAt     time.Time `json:"started_at"`
}

func (d *DeploymentSpec) validate() error {
	if err := CheckName(d.Model); err != nil {
		return err
	}
	if d.Alias != "" {
		if err := CheckAlias(d.Alias); err != nil {
			return err
		}
	}
	if err := CheckVersion(d.Version); err != nil {
		return err
	}
	if d.Digest.IsZero() {
		return invalidf("digest is required")
	}
	if d.AliasLogIndex < -1 {
		return invalidf("log_index %d: want an entry index, or -1", d.AliasLogIndex)
	}
	if d.Host == "" {
		return invalidf("host is required")
	}
	if err := checkText("host", d.Host, MaxHostLen); err != nil {
		return err
	}
	if d.PID < 0 || d.PID > 1<<31 {
		return invalidf("pid %d out of range", d.PID)
	}
	if d.StartedAt.IsZero() {
		return invalidf("started_at is required")
	}
	return nil
}

// ReportDeployment records that a serving process started a version,
// after the "deploy" policy allowed it. The version must exist and the
// reported digest must be its pinned digest (ErrConflict otherwise): a
// report can only name what the registry holds. The decision is logged
// with the deployment ("policy.decision", then "deployment", in one
// transaction); a denial is logged alone and returns a [DeniedError], on
// which the serving process refuses to start.
func (s *Service) ReportDeployment(ctx context.Context, actor Actor, spec DeploymentSpec) (*store.Deployment, error) {
	if err := actor.Require(PermDeploy); err != nil {
		return nil, err
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	v, err := s.st.GetVersion(ctx, spec.Model, spec.Version)
	if err != nil {
		return nil, err
	}
	if v.Manifest.Digest != spec.Digest {
		return nil, fmt.Errorf("%w: %s@%s has digest %s, the report says %s", ErrConflict, spec.Model, spec.Version, v.Manifest.Digest, spec.Digest)
	}
	trusted := s.trustedSignatures(ctx, v)
	build := func(ctx context.Context, r store.Reader) (gateCase, error) {
		vin, err := versionInput(ctx, r, v, trusted)
		if err != nil {
			return gateCase{}, err
		}
		c := gateCase{input: s.policyInput(DecisionDeploy, actor, vin), subject: spec.Model + "@" + spec.Version + " on " + spec.Host}
		c.input["deployment"] = map[string]any{"alias": spec.Alias, "host": spec.Host}
		st, err := versionStatus(ctx, r, spec.Model, spec.Version)
		if err != nil {
			return gateCase{}, err
		}
		if st != nil && st.Status == StatusBad {
			c.extra = append(c.extra, badReason(st))
		}
		return c, nil
	}
	var out *store.Deployment
	apply := func(ctx context.Context, tx store.Tx) error {
		d := &store.Deployment{Model: spec.Model, Alias: spec.Alias, Version: spec.Version, Digest: spec.Digest,
			AliasLogIndex: spec.AliasLogIndex, Host: spec.Host, PID: spec.PID, StartedAt: spec.StartedAt.UTC(),
			Actor: actor.Name, At: s.now()}
		if err := tx.CreateDeployment(ctx, d); err != nil {
			return err
		}
		ev, err := s.recordEvent(ctx, tx, actor, "deployment", fmt.Sprintf("deployment:%d", d.ID), map[string]any{
			"id": d.ID, "model": d.Model, "alias": d.Alias, "version": d.Version, "digest": d.Digest.String(),
			"alias_log_index": d.AliasLogIndex, "host": d.Host, "pid": d.PID,
			"started_at": d.StartedAt.Format(time.RFC3339Nano),
		})
		if err != nil {
			return err
		}
		withLogIndex(tx, ev, func(ctx context.Context, tx store.Tx, idx int64) error {
			d.LogIndex = &idx
			return tx.SetDeploymentLogIndex(ctx, d.ID, idx)
		})
		out = d
		return nil
	}
	if err := s.decideAndApply(ctx, actor, DecisionDeploy, spec.Model, build, apply); err != nil {
		return nil, err
	}
	return out, nil
}

// ListDeployments lists deployment reports, oldest first, after the cursor
// (a deployment ID); model "" lists every model's.
func (s *Service) ListDeployments(ctx context.Context, model string, after int64, limit int) ([]store.Deployment, error) {
	if model != "" {
		if err := CheckName(model); err != nil {
			return nil, err
		}
	}
	return s.st.ListDeployments(ctx, model, after, limit)
}

// GetDeployment returns one deployment report.
func (s *Service) GetDeployment(ctx context.Context, id int64) (*store.Deployment, error) {
	return s.st.GetDeployment(ctx, id)
}
