package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/store"
)

// Gate decides whether an action may happen: policy as code. custody
// server adapts the Rego engine of internal/policy to it.
//
// Decide evaluates decision ("register", "approve", "promote", "rollback"
// or "deploy") for input, the document described in docs/policy.md. It
// returns allow, or the reasons to deny (shown to the client verbatim). An
// error means the gate could not decide; the Service then refuses the
// action (fail closed). Decide is called outside any transaction and may
// be called concurrently.
type Gate interface {
	Decide(ctx context.Context, decision string, input map[string]any) (allow bool, reasons []string, err error)
}

// The decisions the Service asks its Gate for.
const (
	DecisionRegister = "register"
	DecisionApprove  = "approve"
	DecisionPromote  = "promote"
	DecisionRollback = "rollback"
	DecisionDeploy   = "deploy"
)

// StatusBad marks a version rolled back from: it is never a rollback
// target again and promote refuses it.
const StatusBad = "bad"

// maxDecisionAttempts bounds how often a decision is re-evaluated when
// the state it was made on changed before the change could commit.
const maxDecisionAttempts = 4

// errStale aborts a transaction whose decision input no longer matches
// the state; the caller decides again.
var errStale = errors.New("state changed during the policy decision")

// verdict is one evaluated decision.
type verdict struct {
	decision, subject string
	allow             bool
	reasons           []string
	digest            string // sha256 of the input document's JSON
}

func inputDigest(input map[string]any) (string, error) {
	raw, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("failed to encode the policy input: %w", err)
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// evaluate asks the gate. No gate, or a gate error, is ErrPolicyFailed;
// extra reasons (rules the domain enforces whatever the policy says)
// turn an allow into a deny.
func (s *Service) evaluate(ctx context.Context, decision, subject string, input map[string]any, extra []string) (*verdict, error) {
	d, err := inputDigest(input)
	if err != nil {
		return nil, err
	}
	v := &verdict{decision: decision, subject: subject, digest: d}
	if s.opts.Gate == nil {
		return v, fmt.Errorf("%w: no policy gate is configured for %s (refused)", ErrPolicyFailed, decision)
	}
	allow, reasons, err := s.opts.Gate.Decide(ctx, decision, input)
	if err != nil {
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		return v, fmt.Errorf("%w: %s of %s refused: %v", ErrPolicyFailed, decision, subject, err)
	}
	v.reasons = append(append([]string{}, reasons...), extra...)
	v.allow = allow && len(v.reasons) == 0
	if !v.allow && len(v.reasons) == 0 {
		v.reasons = []string{"denied by policy without a reason"}
	}
	return v, nil
}

// recordDecision appends the policy.decision event for v inside tx.
func (s *Service) recordDecision(ctx context.Context, tx store.Tx, actor Actor, v *verdict) error {
	reasons := v.reasons
	if reasons == nil {
		reasons = []string{}
	}
	return s.record(ctx, tx, actor, "policy.decision", v.subject, map[string]any{
		"decision": v.decision, "subject": v.subject, "allow": v.allow, "reasons": reasons, "input_digest": v.digest,
	})
}

// refuse logs a denied (or undecidable) decision in its own transaction,
// without the state change, and returns the error for the caller.
func (s *Service) refuse(ctx context.Context, actor Actor, v *verdict, cause error) error {
	if cause != nil {
		if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
			return cause
		}
		msg := cause.Error()
		if len(msg) > 512 {
			msg = msg[:512]
		}
		v.allow, v.reasons = false, []string{msg}
	}
	if err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error { return s.recordDecision(ctx, tx, actor, v) }); err != nil {
		if cause != nil {
			return errors.Join(cause, err)
		}
		return err
	}
	if cause != nil {
		return cause
	}
	return &DeniedError{Decision: v.decision, Subject: v.subject, Reasons: v.reasons}
}

// gateCase is what a decision is made on: the input document, the
// reasons the domain adds on its own (rules no policy can lift), the
// subject logged, and whether the change is a no-op (nothing to decide).
type gateCase struct {
	input   map[string]any
	extra   []string
	subject string
	noop    bool
}

// decideAndApply is the shape of every gated change: build the case from
// the committed state, decide outside any transaction, then in one
// transaction lock the model, rebuild the case from the locked state, check
// it is the one decided on (otherwise decide again), log the decision and
// apply the change. A denial is logged in its own transaction and changes
// nothing.
func (s *Service) decideAndApply(ctx context.Context, actor Actor, decision, model string,
	build func(ctx context.Context, r store.Reader) (gateCase, error),
	apply func(ctx context.Context, tx store.Tx) error) error {
	for attempt := 0; attempt < maxDecisionAttempts; attempt++ {
		c, err := build(ctx, s.st)
		if err != nil || c.noop {
			return err
		}
		v, err := s.evaluate(ctx, decision, c.subject, c.input, c.extra)
		if err != nil {
			return s.refuse(ctx, actor, v, err)
		}
		if !v.allow {
			return s.refuse(ctx, actor, v, nil)
		}
		err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.LockModel(ctx, model); err != nil {
				return err
			}
			c, err := build(ctx, tx)
			if err != nil {
				return err
			}
			if d, err := inputDigest(c.input); err != nil || d != v.digest || c.noop || len(c.extra) > 0 || c.subject != v.subject {
				return errStale
			}
			if err := s.recordDecision(ctx, tx, actor, v); err != nil {
				return err
			}
			return apply(ctx, tx)
		})
		if errors.Is(err, errStale) {
			continue
		}
		return err
	}
	return fmt.Errorf("%w: %s on %s: the state kept changing during the policy decision; retry", ErrConflict, decision, model)
}

// trustedSignatures re-verifies each stored signature bundle of v against
// the server's current trust: a key removed from the trust since
// registration no longer vouches for the version.
func (s *Service) trustedSignatures(ctx context.Context, v *store.Version) []bool {
	out := make([]bool, len(v.Signatures))
	if s.opts.Verifier == nil {
		return out
	}
	for i, sg := range v.Signatures {
		_, err := s.opts.Verifier.Verify(ctx, sg.Bundle, &v.Manifest)
		out[i] = err == nil
	}
	return out
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// contractInput returns the dataset contract results of a version for
// the policy input: version.contracts, one entry per piece of signed
// contract evidence attached to the datasets its training run read
// ({"name" (the contract), "dataset", "dataset_version", "passed",
// "outcome", "failed", "signer", "evidence_digest", "checked_at"}), and
// version.datasets, one entry per training input ({"name", "version",
// "evidence" (count), "passed" (some evidence passed and none failed)}), so
// that a policy can require every input to have passed its contract
// (config.require_contracts in the default policies).
func contractInput(ctx context.Context, r store.Reader, inputs []store.DatasetRef) (contracts, datasets []any, err error) {
	results, err := contractResults(ctx, r, inputs)
	if err != nil {
		return nil, nil, err
	}
	contracts, datasets = []any{}, []any{}
	for _, c := range results {
		contracts = append(contracts, map[string]any{
			"name": c.Contract, "dataset": c.Dataset, "dataset_version": c.Version, "passed": c.Passed,
			"outcome": c.Outcome, "failed": c.Failed, "signer": c.Signer,
			"evidence_digest": c.EvidenceDigest.String(), "checked_at": timeString(c.CheckedAt),
		})
	}
	for _, in := range inputs {
		n, passed := 0, true
		for _, c := range results {
			if c.Dataset == in.Name && c.Version == in.Version {
				n++
				passed = passed && c.Passed
			}
		}
		datasets = append(datasets, map[string]any{"name": in.Name, "version": in.Version, "evidence": n, "passed": n > 0 && passed})
	}
	return contracts, datasets, nil
}

// versionInput is input.version of docs/policy.md for a stored version.
// trusted[i] says whether signature i verifies under the current trust.
func versionInput(ctx context.Context, r store.Reader, v *store.Version, trusted []bool) (map[string]any, error) {
	sigs := []any{}
	for i, sg := range v.Signatures {
		ids := sg.KeyIDs
		if len(ids) == 0 {
			ids = []string{""}
		}
		for _, id := range ids {
			sigs = append(sigs, map[string]any{"key_id": id, "signer": sg.Signer, "trusted": i < len(trusted) && trusted[i]})
		}
	}
	metrics := map[string]any{}
	var inputs []store.DatasetRef
	if v.RunID != "" {
		run, err := r.GetRun(ctx, v.RunID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if run != nil {
			for k, x := range run.Metrics {
				metrics[k] = x
			}
			inputs = run.Inputs
		}
	}
	approvals := []any{}
	as, err := r.ListApprovals(ctx, v.Model, v.Version)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		approvals = append(approvals, map[string]any{"approver": a.Approver, "comment": a.Comment, "time": timeString(a.At)})
	}
	// One entry per alias the version has held, with the latest time it
	// moved there: the input stays small however often an alias flips.
	promotions := []any{}
	held, err := r.VersionAliases(ctx, v.Model, v.Version)
	if err != nil {
		return nil, err
	}
	for _, e := range held {
		promotions = append(promotions, map[string]any{"alias": e.Alias, "time": timeString(e.At)})
	}
	contracts, datasets, err := contractInput(ctx, r, inputs)
	if err != nil {
		return nil, err
	}
	status := map[string]any{"status": "ok"}
	if st, err := r.GetVersionStatus(ctx, v.Model, v.Version); err == nil {
		status = map[string]any{"status": st.Status, "reason": st.Reason, "time": timeString(st.At)}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	scan := map[string]any{}
	if v.ScanVerdict != "" {
		scan["verdict"] = v.ScanVerdict
	}
	return map[string]any{
		"name": v.Model, "version": v.Version, "digest": v.Manifest.Digest.String(), "publisher": v.CreatedBy,
		"signatures": sigs, "scan": scan, "contracts": contracts, "datasets": datasets, "metrics": metrics,
		"approvals": approvals, "promotions": promotions, "status": status,
	}, nil
}

// actorInput is input.actor: token id, subject (the actor's name, as
// recorded in created_by and approvals) and role.
func actorInput(a Actor) map[string]any {
	return map[string]any{"token_id": strings.TrimPrefix(a.Name, "token:"), "subject": a.Name, "role": string(a.Role)}
}

func (s *Service) policyInput(decision string, actor Actor, version map[string]any) map[string]any {
	cfg := s.opts.PolicyConfig
	if cfg == nil {
		cfg = map[string]any{}
	}
	return map[string]any{"decision": decision, "version": version, "actor": actorInput(actor), "config": cfg}
}
