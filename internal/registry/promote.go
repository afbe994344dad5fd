package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custody-ml/custody/internal/store"
)

// MaxReasonLen caps approval comments and rollback reasons.
const MaxReasonLen = 1024

// Protected reports whether alias may move only through [Service.Promote]
// and [Service.Rollback].
func (s *Service) Protected(alias string) bool {
	return slices.Contains(s.opts.ProtectedAliases, alias)
}

func checkRef(model, version string) error {
	if err := CheckName(model); err != nil {
		return err
	}
	return CheckVersion(version)
}

// Approve records the actor's approval of a model version after the
// approve policy allows it. Approvals are idempotent per approver: if the
// actor already approved the version, the existing approval is returned
// with created == false and nothing is decided or logged.
func (s *Service) Approve(ctx context.Context, actor Actor, model, version, comment string) (*store.Approval, bool, error) {
	if err := actor.Require(PermApprove); err != nil {
		return nil, false, err
	}
	if err := checkRef(model, version); err != nil {
		return nil, false, err
	}
	if err := checkText("comment", comment, MaxReasonLen); err != nil {
		return nil, false, err
	}
	v, err := s.st.GetVersion(ctx, model, version)
	if err != nil {
		return nil, false, err
	}
	trusted := s.trustedSignatures(ctx, v)
	var out *store.Approval
	created := false
	build := func(ctx context.Context, r store.Reader) (gateCase, error) {
		as, err := r.ListApprovals(ctx, model, version)
		if err != nil {
			return gateCase{}, err
		}
		for _, a := range as {
			if a.Approver == actor.Name {
				out, created = &a, false
				return gateCase{noop: true}, nil
			}
		}
		vin, err := versionInput(ctx, r, v, trusted)
		if err != nil {
			return gateCase{}, err
		}
		return gateCase{input: s.policyInput(DecisionApprove, actor, vin), subject: model + "@" + version}, nil
	}
	apply := func(ctx context.Context, tx store.Tx) error {
		a := &store.Approval{Model: model, Version: version, Approver: actor.Name, Comment: comment, At: s.now()}
		if err := tx.CreateApproval(ctx, a); err != nil {
			return err
		}
		out, created = a, true
		return s.record(ctx, tx, actor, "approval.create", model+"@"+version, map[string]any{
			"model": model, "version": version, "approver": actor.Name, "comment": comment,
		})
	}
	if err := s.decideAndApply(ctx, actor, DecisionApprove, model, build, apply); err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// badReason is the reason the domain adds to a decision on a version
// marked bad, whatever the policy says.
func badReason(st *store.VersionStatus) string {
	r := fmt.Sprintf("version %s@%s is marked bad since %s", st.Model, st.Version, timeString(st.At))
	if st.Reason != "" {
		r += ": " + st.Reason
	}
	return r
}

func versionStatus(ctx context.Context, r store.Reader, model, version string) (*store.VersionStatus, error) {
	st, err := r.GetVersionStatus(ctx, model, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return st, err
}

// currentTarget returns the alias's current version ("" if it never
// existed or was removed).
func currentTarget(ctx context.Context, r store.Reader, model, alias string) (*store.AliasEvent, error) {
	cur, err := r.ResolveAlias(ctx, model, alias, time.Time{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return cur, err
}

// appendAlias appends the alias change from prev (nil: no event yet) to
// version and logs it as alias.set, with extra payload fields.
func (s *Service) appendAlias(ctx context.Context, tx store.Tx, actor Actor, model, alias, version string, prev *store.AliasEvent, extra map[string]any) (*store.AliasEvent, error) {
	at, previous := s.now(), ""
	if prev != nil {
		previous = prev.Version
		if at.Before(prev.At) {
			at = prev.At
		}
	}
	payload := map[string]any{"model": model, "alias": alias, "version": version, "previous": previous}
	for k, v := range extra {
		payload[k] = v
	}
	ev, err := s.recordEvent(ctx, tx, actor, "alias.set", model+"/"+alias, payload)
	if err != nil {
		return nil, err
	}
	return appendAliasEvent(ctx, tx, ev, &store.AliasEvent{Model: model, Alias: alias, Version: version, Previous: previous, Actor: actor.Name, At: at})
}

// appendAliasEvent records the alias change e, journaled as ev; the row
// gets the index of the log entry that proves it when the log appends it,
// at the end of the transaction (both commit together).
func appendAliasEvent(ctx context.Context, tx store.Tx, ev *store.Event, e *store.AliasEvent) (*store.AliasEvent, error) {
	if err := tx.AppendAlias(ctx, e); err != nil {
		return nil, err
	}
	withLogIndex(tx, ev, func(ctx context.Context, tx store.Tx, idx int64) error {
		e.LogIndex = &idx
		return tx.SetAliasLogIndex(ctx, e.Seq, idx)
	})
	return e, nil
}

// Promote points alias at version after the promote policy allows it; the
// decision, the alias change and its previous target commit in one
// transaction. A version marked bad is refused whatever the policy says.
// Promoting to the alias's current target is a no-op that returns the
// current event.
func (s *Service) Promote(ctx context.Context, actor Actor, model, version, alias string) (*store.AliasEvent, error) {
	if err := actor.Require(PermAlias); err != nil {
		return nil, err
	}
	if err := checkRef(model, version); err != nil {
		return nil, err
	}
	if err := CheckAlias(alias); err != nil {
		return nil, err
	}
	v, err := s.st.GetVersion(ctx, model, version)
	if err != nil {
		return nil, err
	}
	trusted := s.trustedSignatures(ctx, v)
	var out, cur *store.AliasEvent
	build := func(ctx context.Context, r store.Reader) (gateCase, error) {
		var err error
		if cur, err = currentTarget(ctx, r, model, alias); err != nil {
			return gateCase{}, err
		}
		if cur != nil && cur.Version == version {
			out = cur
			return gateCase{noop: true}, nil
		}
		vin, err := versionInput(ctx, r, v, trusted)
		if err != nil {
			return gateCase{}, err
		}
		c := gateCase{input: s.policyInput(DecisionPromote, actor, vin), subject: model + "@" + version + " -> " + alias}
		c.input["alias"] = aliasInput(alias, cur)
		st, err := versionStatus(ctx, r, model, version)
		if err != nil {
			return gateCase{}, err
		}
		if st != nil && st.Status == StatusBad {
			c.extra = append(c.extra, badReason(st))
		}
		return c, nil
	}
	apply := func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = s.appendAlias(ctx, tx, actor, model, alias, version, cur, map[string]any{"via": "promote"})
		return err
	}
	if err := s.decideAndApply(ctx, actor, DecisionPromote, model, build, apply); err != nil {
		return nil, err
	}
	return out, nil
}

func aliasInput(alias string, cur *store.AliasEvent) map[string]any {
	current := ""
	if cur != nil {
		current = cur.Version
	}
	return map[string]any{"name": alias, "current": current}
}

// Rollback moves alias back to the most recent earlier target that is not
// marked bad, and marks the version rolled back from bad. See
// [Service.RollbackTo].
func (s *Service) Rollback(ctx context.Context, actor Actor, model, alias, reason string) (*store.AliasEvent, error) {
	return s.RollbackTo(ctx, actor, model, alias, "", reason)
}

// RollbackTo moves alias back to version to ("" picks the most recent
// version that held the alias before its current target and is not marked
// bad). The target must have held the alias before and not be marked bad;
// the rollback policy decides on it (by default: still signed by a trusted
// key, scanned safe, contracts passing and independently approved). In one
// transaction the decision is logged, the version rolled back from is
// marked bad (version.status event, with reason) and the alias moves
// (alias.set event with via "rollback", the previous target and reason).
func (s *Service) RollbackTo(ctx context.Context, actor Actor, model, alias, to, reason string) (*store.AliasEvent, error) {
	if err := actor.Require(PermAlias); err != nil {
		return nil, err
	}
	if err := CheckName(model); err != nil {
		return nil, err
	}
	if err := CheckAlias(alias); err != nil {
		return nil, err
	}
	if to != "" {
		if err := CheckVersion(to); err != nil {
			return nil, err
		}
	}
	if err := checkText("reason", reason, MaxReasonLen); err != nil {
		return nil, err
	}
	if _, err := s.st.GetModel(ctx, model); err != nil {
		return nil, err
	}
	var out, cur *store.AliasEvent
	var target *store.Version
	trusted := map[string][]bool{}
	build := func(ctx context.Context, r store.Reader) (gateCase, error) {
		var err error
		if cur, err = currentTarget(ctx, r, model, alias); err != nil {
			return gateCase{}, err
		}
		if cur == nil || cur.Version == "" {
			return gateCase{}, fmt.Errorf("%w: alias %s of %s points at no version: nothing to roll back", ErrConflict, alias, model)
		}
		tv, extra, err := rollbackTarget(ctx, r, model, alias, cur.Version, to)
		if err != nil {
			return gateCase{}, err
		}
		if target, err = r.GetVersion(ctx, model, tv); err != nil {
			return gateCase{}, err
		}
		if trusted[tv] == nil {
			trusted[tv] = s.trustedSignatures(ctx, target)
		}
		vin, err := versionInput(ctx, r, target, trusted[tv])
		if err != nil {
			return gateCase{}, err
		}
		c := gateCase{input: s.policyInput(DecisionRollback, actor, vin), subject: model + "@" + tv + " -> " + alias, extra: extra}
		c.input["alias"] = aliasInput(alias, cur)
		c.input["reason"] = reason
		return c, nil
	}
	apply := func(ctx context.Context, tx store.Tx) error {
		st := &store.VersionStatus{Model: model, Version: cur.Version, Status: StatusBad, Reason: reason, Actor: actor.Name, At: s.now()}
		switch err := tx.CreateVersionStatus(ctx, st); {
		case err == nil:
			if err := s.record(ctx, tx, actor, "version.status", model+"@"+cur.Version, map[string]any{
				"model": model, "version": cur.Version, "status": StatusBad, "reason": reason,
			}); err != nil {
				return err
			}
		case errors.Is(err, store.ErrExists): // already bad (promoted again by an older server?)
		default:
			return err
		}
		var err error
		out, err = s.appendAlias(ctx, tx, actor, model, alias, target.Version, cur, map[string]any{"via": "rollback", "reason": reason})
		return err
	}
	if err := s.decideAndApply(ctx, actor, DecisionRollback, model, build, apply); err != nil {
		return nil, err
	}
	return out, nil
}

// rollbackTarget picks the version to roll alias back to: to if given
// (it must have held the alias before; if it is marked bad, the reason is
// returned for the decision to deny), else the most recent earlier target
// that is not marked bad.
func rollbackTarget(ctx context.Context, r store.Reader, model, alias, current, to string) (string, []string, error) {
	h, err := r.AliasHistory(ctx, model, alias)
	if err != nil {
		return "", nil, err
	}
	seen := map[string]bool{current: true, "": true}
	var skipped []string
	for i := len(h) - 1; i >= 0; i-- {
		v := h[i].Version
		if seen[v] {
			continue
		}
		seen[v] = true
		if to != "" && v != to {
			continue
		}
		st, err := versionStatus(ctx, r, model, v)
		if err != nil {
			return "", nil, err
		}
		if st != nil && st.Status == StatusBad {
			if to != "" {
				return v, []string{badReason(st)}, nil
			}
			skipped = append(skipped, v)
			continue
		}
		return v, nil, nil
	}
	if to != "" {
		if to == current {
			return "", nil, fmt.Errorf("%w: alias %s of %s already points at %s", ErrConflict, alias, model, to)
		}
		return "", nil, fmt.Errorf("%w: version %s never held alias %s of %s: move it there with promote, not rollback", ErrConflict, to, alias, model)
	}
	msg := fmt.Sprintf("no earlier version of %s held alias %s", model, alias)
	if len(skipped) > 0 {
		msg = fmt.Sprintf("every earlier version of %s that held alias %s is marked bad (%v)", model, alias, skipped)
	}
	return "", nil, fmt.Errorf("%w: nothing to roll back to: %s", ErrConflict, msg)
}

// VersionState is a version's promotion state: its status ("ok" or "bad",
// with who marked it and why) and its approvals.
type VersionState struct {
	Model     string           `json:"model"`
	Version   string           `json:"version"`
	Status    string           `json:"status"`
	Reason    string           `json:"reason,omitempty"`
	Actor     string           `json:"actor,omitempty"`
	At        *time.Time       `json:"at,omitempty"`
	Approvals []store.Approval `json:"approvals"`
}

// VersionState returns a version's status and approvals.
func (s *Service) VersionState(ctx context.Context, model, version string) (*VersionState, error) {
	if err := checkRef(model, version); err != nil {
		return nil, err
	}
	if _, err := s.st.GetVersion(ctx, model, version); err != nil {
		return nil, err
	}
	out := &VersionState{Model: model, Version: version, Status: "ok"}
	st, err := versionStatus(ctx, s.st, model, version)
	if err != nil {
		return nil, err
	}
	if st != nil {
		at := st.At
		out.Status, out.Reason, out.Actor, out.At = st.Status, st.Reason, st.Actor, &at
	}
	if out.Approvals, err = s.st.ListApprovals(ctx, model, version); err != nil {
		return nil, err
	}
	return out, nil
}
