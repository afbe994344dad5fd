package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custody-ml/custody/internal/store"
)

// SetAlias points alias at version (which must exist). Protected aliases
// (Options.ProtectedAliases) are refused with ErrForbidden: they move only
// through [Service.Promote] and [Service.Rollback]. Setting an alias to
// the version it already points at is a no-op that returns the current
// event. version == "" removes the alias.
//
// Event times never go backwards within an alias: if this server's clock is
// behind the time of the alias's latest event (another server wrote it),
// the new event takes that time, so "the target at time T" agrees with the
// order of the history.
func (s *Service) SetAlias(ctx context.Context, actor Actor, model, alias, version string) (*store.AliasEvent, error) {
	if err := actor.Require(PermAlias); err != nil {
		return nil, err
	}
	if err := CheckName(model); err != nil {
		return nil, err
	}
	if err := CheckAlias(alias); err != nil {
		return nil, err
	}
	if s.Protected(alias) {
		return nil, fmt.Errorf("%w: alias %q is protected: it moves only through policy, with 'custody promote %s@VERSION --alias %s' or 'custody rollback %s --alias %s'",
			ErrForbidden, alias, model, alias, model, alias)
	}
	if version != "" {
		if err := CheckVersion(version); err != nil {
			return nil, err
		}
	}
	var out *store.AliasEvent
	err := s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.LockModel(ctx, model); err != nil {
			return err
		}
		if version != "" {
			if _, err := tx.GetVersion(ctx, model, version); err != nil {
				return err
			}
		}
		prev := ""
		at := s.now()
		cur, err := tx.ResolveAlias(ctx, model, alias, time.Time{})
		switch {
		case err == nil:
			if cur.Version == version {
				out = cur
				return nil
			}
			prev = cur.Version
			if at.Before(cur.At) {
				at = cur.At
			}
		case errors.Is(err, store.ErrNotFound):
			if version == "" {
				return err // removing an alias that does not exist
			}
		default:
			return err
		}
		typ := "alias.set"
		if version == "" {
			typ = "alias.remove"
		}
		ev, err := s.recordEvent(ctx, tx, actor, typ, model+"/"+alias, map[string]any{
			"model": model, "alias": alias, "version": version, "previous": prev,
		})
		if err != nil {
			return err
		}
		e, err := appendAliasEvent(ctx, tx, ev, &store.AliasEvent{Model: model, Alias: alias, Version: version, Previous: prev, Actor: actor.Name, At: at})
		if err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ResolveAlias returns the version alias pointed at, at time at (now if at
// is zero). ErrNotFound if the alias did not exist or had been removed then.
func (s *Service) ResolveAlias(ctx context.Context, model, alias string, at time.Time) (*store.AliasEvent, error) {
	if err := CheckName(model); err != nil {
		return nil, err
	}
	if err := CheckAlias(alias); err != nil {
		return nil, err
	}
	e, err := s.st.ResolveAlias(ctx, model, alias, at)
	if err != nil {
		return nil, err
	}
	if e.Version == "" {
		return nil, &aliasRemovedError{model: model, alias: alias, at: e.At}
	}
	return e, nil
}

type aliasRemovedError struct {
	model, alias string
	at           time.Time
}

func (e *aliasRemovedError) Error() string {
	return "alias " + e.model + "@" + e.alias + " was removed at " + e.at.Format(time.RFC3339Nano)
}

func (e *aliasRemovedError) Unwrap() error { return ErrNotFound }

// AliasHistory returns every change of an alias, oldest first.
func (s *Service) AliasHistory(ctx context.Context, model, alias string) ([]store.AliasEvent, error) {
	if err := CheckName(model); err != nil {
		return nil, err
	}
	if err := CheckAlias(alias); err != nil {
		return nil, err
	}
	if _, err := s.st.GetModel(ctx, model); err != nil {
		return nil, err
	}
	return s.st.AliasHistory(ctx, model, alias)
}

// ListAliases returns the current target of every alias of a model
// (removed aliases included, with an empty version).
func (s *Service) ListAliases(ctx context.Context, model string) ([]store.AliasEvent, error) {
	if _, err := s.GetModel(ctx, model); err != nil {
		return nil, err
	}
	return s.st.ListAliases(ctx, model)
}
