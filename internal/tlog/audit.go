package tlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/custody-ml/custody/internal/store"
)

// AuditReport is what [Audit] found.
type AuditReport struct {
	Size     int64
	Root     Hash
	Findings []string // each a change made behind the log's back; empty if none
}

// Audit replays the log over the registry state in r and reports every
// difference: entries that do not hash to the stored tree (see
// [Log.Replay]; then the audit stops with an error), records whose current
// row disagrees with what the log says was written (digests, signers,
// URIs, token roles, model metadata, alias histories, dataset hashes, run
// inputs), records and journal events the log never saw.
func Audit(ctx context.Context, r store.Reader) (*AuditReport, error) {
	rep := &AuditReport{}
	find := func(format string, args ...any) { rep.Findings = append(rep.Findings, fmt.Sprintf(format, args...)) }
	type aliasKey struct{ model, alias string }
	models := map[string]map[string]any{} // latest logged metadata
	versions := map[string]bool{}
	aliases := map[aliasKey][]*Entry{}
	var aliasOrder []aliasKey
	events := map[int64]bool{}
	check := func(e *Entry) error {
		events[e.Event] = true
		s := func(k string) string { v, _ := e.Data[k].(string); return v }
		switch e.Type {
		case "model.create", "model.update":
			models[s("name")] = e.Data
		case "version.register":
			key := s("model") + "@" + s("version")
			versions[key] = true
			v, err := r.GetVersion(ctx, s("model"), s("version"))
			if errors.Is(err, store.ErrNotFound) {
				find("version %s is logged (entry event %d) but missing", key, e.Event)
				return nil
			} else if err != nil {
				return err
			}
			signers := make([]string, len(v.Signatures))
			for i, sg := range v.Signatures {
				signers[i] = sg.Signer
			}
			diff(find, "version "+key, map[string][2]string{
				"digest":       {s("digest"), v.Manifest.Digest.String()},
				"oms_root":     {s("oms_root"), v.Manifest.OMSRoot.String()},
				"uri":          {s("uri"), v.URI},
				"run_id":       {s("run_id"), v.RunID},
				"scan_verdict": {s("scan_verdict"), v.ScanVerdict},
				"signers":      {strList(e.Data["signers"]), strings.Join(signers, ",")},
				"created_by":   {e.Actor, v.CreatedBy},
			})
		case "run.create":
			run, err := r.GetRun(ctx, s("id"))
			if errors.Is(err, store.ErrNotFound) {
				find("run %s is logged but missing", s("id"))
				return nil
			} else if err != nil {
				return err
			}
			var ins []string
			for _, in := range run.Inputs {
				ins = append(ins, in.Name+"@"+in.Version)
			}
			var logged []string
			if l, ok := e.Data["inputs"].([]any); ok {
				for _, x := range l {
					m, _ := x.(map[string]any)
					n, _ := m["name"].(string)
					v, _ := m["version"].(string)
					logged = append(logged, n+"@"+v)
				}
			}
			slices.Sort(ins)
			slices.Sort(logged)
			diff(find, "run "+s("id"), map[string][2]string{
				"inputs": {strings.Join(logged, ","), strings.Join(ins, ",")},
				"output": {s("output"), run.OutputModel + "@" + run.OutputVersion},
			})
		case "alias.set", "alias.remove":
			k := aliasKey{s("model"), s("alias")}
			if aliases[k] == nil {
				aliasOrder = append(aliasOrder, k)
			}
			aliases[k] = append(aliases[k], e)
		case "dataset.register":
			d, err := r.GetDataset(ctx, s("name"), s("version"))
			if errors.Is(err, store.ErrNotFound) {
				find("dataset %s@%s is logged but missing", s("name"), s("version"))
				return nil
			} else if err != nil {
				return err
			}
			size := ""
			if n, ok := e.Data["size"]; ok {
				size = fmt.Sprint(n)
			}
			diff(find, "dataset "+s("name")+"@"+s("version"), map[string][2]string{
				"digest":  {s("digest"), d.Digest.String()},
				"dvc_md5": {s("dvc_md5"), d.DVCMD5},
				"size":    {size, fmt.Sprint(d.Size)},
			})
		case "token.create":
			tok, err := r.GetToken(ctx, s("id"))
			if errors.Is(err, store.ErrNotFound) {
				find("token %s is logged but missing", s("id"))
				return nil
			} else if err != nil {
				return err
			}
			diff(find, "token "+s("id"), map[string][2]string{
				"role": {s("role"), tok.Role},
				"name": {s("name"), tok.Name},
			})
		default:
			find("entry for event %d has an unknown type %q", e.Event, e.Type)
		}
		return nil
	}
	size, root, err := New(r, nil).Replay(ctx, func(i int64, b []byte) error {
		e, err := ParseEntry(b)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		return check(e)
	})
	if err != nil {
		return nil, err
	}
	rep.Size, rep.Root = size, root

	// Models: the latest logged metadata is the current one, and every
	// model (with its versions) was logged.
	for after := ""; ; {
		ms, err := r.ListModels(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			logged, ok := models[m.Name]
			if !ok {
				find("model %s exists but its creation is not in the log", m.Name)
			} else {
				desc, _ := logged["description"].(string)
				diff(find, "model "+m.Name, map[string][2]string{
					"description": {desc, m.Description},
					"owners":      {strList(logged["owners"]), strings.Join(m.Owners, ",")},
					"tags":        {strList(logged["tags"]), strings.Join(m.Tags, ",")},
				})
			}
			if err := auditVersions(ctx, r, m.Name, versions, find); err != nil {
				return nil, err
			}
			as, err := r.ListAliases(ctx, m.Name)
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				if aliases[aliasKey{m.Name, a.Alias}] == nil {
					find("alias %s/%s exists but no change of it is in the log", m.Name, a.Alias)
				}
			}
			after = m.Name
		}
		if len(ms) < 1000 {
			break
		}
	}
	for name := range models {
		if _, err := r.GetModel(ctx, name); errors.Is(err, store.ErrNotFound) {
			find("model %s is logged but missing", name)
		}
	}
	// Alias histories: the stored history is exactly the logged one.
	for _, k := range aliasOrder {
		h, err := r.AliasHistory(ctx, k.model, k.alias)
		if err != nil {
			return nil, err
		}
		logged := aliases[k]
		if len(h) != len(logged) {
			find("alias %s/%s has %d changes, the log has %d", k.model, k.alias, len(h), len(logged))
		}
		for i := 0; i < len(h) && i < len(logged); i++ {
			v, _ := logged[i].Data["version"].(string)
			p, _ := logged[i].Data["previous"].(string)
			if h[i].Version != v || h[i].Previous != p || h[i].Actor != logged[i].Actor {
				find("alias %s/%s change %d is %q→%q by %s, the log says %q→%q by %s", k.model, k.alias, i+1,
					h[i].Previous, h[i].Version, h[i].Actor, p, v, logged[i].Actor)
			}
		}
	}
	// Journal events that never reached the log.
	for after := int64(0); ; {
		evs, err := r.Events(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if !events[ev.Seq] {
				find("journal event %d (%s %s) is not in the log", ev.Seq, ev.Type, ev.Subject)
			}
			after = ev.Seq
		}
		if len(evs) < 1000 {
			break
		}
	}
	return rep, nil
}

func auditVersions(ctx context.Context, r store.Reader, model string, logged map[string]bool, find func(string, ...any)) error {
	for after := ""; ; {
		vs, err := r.ListVersions(ctx, model, after, 1000)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if !logged[model+"@"+v.Version] {
				find("version %s@%s exists but its registration is not in the log", model, v.Version)
			}
			after = v.Version
		}
		if len(vs) < 1000 {
			return nil
		}
	}
}

func diff(find func(string, ...any), what string, fields map[string][2]string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if f := fields[k]; f[0] != f[1] {
			find("%s: %s is %q, the log says %q", what, k, f[1], f[0])
		}
	}
}

func strList(v any) string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return strings.Join(out, ",")
}
