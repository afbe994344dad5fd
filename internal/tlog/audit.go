package tlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/store"
)

// AuditReport is what [Audit] found.
type AuditReport struct {
	Size     int64
	Root     Hash
	Findings []string // each a change made behind the log's back; empty if none
}

// State is the registry state an audit compares the log with: a
// [store.Reader], or the API seen through a client. A method returns an
// error wrapping errors.ErrUnsupported where that part of the state is not
// visible (tokens and the journal over the API); its checks are skipped
// and reported in [Auditor.Skipped].
type State interface {
	GetModel(ctx context.Context, name string) (*store.Model, error)
	ListModels(ctx context.Context, after string, limit int) ([]store.Model, error)
	GetVersion(ctx context.Context, model, version string) (*store.Version, error)
	ListVersions(ctx context.Context, model, after string, limit int) ([]store.Version, error)
	ListAliases(ctx context.Context, model string) ([]store.AliasEvent, error)
	AliasHistory(ctx context.Context, model, alias string) ([]store.AliasEvent, error)
	GetDataset(ctx context.Context, name, version string) (*store.Dataset, error)
	ListEvidence(ctx context.Context, ds store.DatasetRef) ([]store.Evidence, error)
	GetRun(ctx context.Context, id string) (*store.Run, error)
	GetToken(ctx context.Context, id string) (*store.Token, error)
	GetDeployment(ctx context.Context, id int64) (*store.Deployment, error)
	ListDeployments(ctx context.Context, model string, after int64, limit int) ([]store.Deployment, error)
	Events(ctx context.Context, after int64, limit int) ([]store.Event, error)
	ListApprovals(ctx context.Context, model, version string) ([]store.Approval, error)
	// GetVersionStatus is ErrNotFound for a version without a status.
	GetVersionStatus(ctx context.Context, model, version string) (*store.VersionStatus, error)
}

// Audit replays the log stored behind r over the registry state in r (see
// [Auditor]). Entries that do not hash to the stored tree stop the audit
// with an error wrapping [ErrTampered].
func Audit(ctx context.Context, r store.Reader) (*AuditReport, error) {
	a := NewAuditor(r)
	size, root, err := New(r, nil).Replay(ctx, func(i int64, b []byte) error { return a.Add(ctx, i, b) })
	if err != nil {
		return nil, err
	}
	findings, err := a.Finish(ctx)
	if err != nil {
		return nil, err
	}
	return &AuditReport{Size: size, Root: root, Findings: findings}, nil
}

type aliasKey struct{ model, alias string }

// Auditor compares log entries, fed in index order with [Auditor.Add],
// with the registry state, and reports every difference: records whose
// current row disagrees with what the log says was written (digests,
// signers, URIs, token roles, model metadata, alias histories, dataset
// hashes, run inputs, approvals, version statuses), and records and
// journal events the log never saw. Policy decisions change no row; they
// are checked against the journal like every entry.
type Auditor struct {
	st       State
	findings []string
	// Skipped names the checks the state could not support.
	Skipped    []string
	skipped    map[string]bool
	models     map[string]map[string]any // latest logged metadata
	versions   map[string]bool
	aliases    map[aliasKey][]*Entry
	aliasIdx   map[aliasKey][]int64 // the leaf index of each logged alias change
	aliasOrder []aliasKey
	deploys    map[int64]bool   // logged deployment IDs
	events     map[int64]string // journal seq → "type subject" as logged
	approvals  map[string]bool  // "model@version approver" logged
	statuses   map[string]bool  // "model@version" whose status was logged
	datasets   []store.DatasetRef
	evidence   map[store.DatasetRef]map[string]bool // logged evidence digests
}

// NewAuditor returns an auditor of the state st.
func NewAuditor(st State) *Auditor {
	return &Auditor{st: st, skipped: map[string]bool{}, models: map[string]map[string]any{}, versions: map[string]bool{},
		aliases: map[aliasKey][]*Entry{}, aliasIdx: map[aliasKey][]int64{}, deploys: map[int64]bool{}, events: map[int64]string{},
		approvals: map[string]bool{}, statuses: map[string]bool{}, evidence: map[store.DatasetRef]map[string]bool{}}
}

func (a *Auditor) find(format string, args ...any) {
	a.findings = append(a.findings, fmt.Sprintf(format, args...))
}

// unsupported records a skipped check and reports whether err was one.
func (a *Auditor) unsupported(what string, err error) bool {
	if !errors.Is(err, errors.ErrUnsupported) {
		return false
	}
	if !a.skipped[what] {
		a.skipped[what] = true
		a.Skipped = append(a.Skipped, what)
	}
	return true
}

// Add checks entry index against the state.
func (a *Auditor) Add(ctx context.Context, index int64, b []byte) error {
	e, err := ParseEntry(b)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %v", ErrTampered, index, err)
	}
	a.events[e.Event] = e.Type + " " + e.Subject
	r, find := a.st, a.find
	s := func(k string) string { v, _ := e.Data[k].(string); return v }
	switch e.Type {
	case "model.create", "model.update":
		a.models[s("name")] = e.Data
	case "version.register":
		key := s("model") + "@" + s("version")
		a.versions[key] = true
		v, err := r.GetVersion(ctx, s("model"), s("version"))
		if errors.Is(err, store.ErrNotFound) {
			find("version %s is logged (entry %d) but missing", key, index)
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
			find("run %s is logged (entry %d) but missing", s("id"), index)
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
		if a.aliases[k] == nil {
			a.aliasOrder = append(a.aliasOrder, k)
		}
		a.aliases[k] = append(a.aliases[k], e)
		a.aliasIdx[k] = append(a.aliasIdx[k], index)
	case "deployment":
		id, err := strconv.ParseInt(fmt.Sprint(e.Data["id"]), 10, 64)
		if err != nil {
			find("entry %d: deployment without an id", index)
			return nil
		}
		a.deploys[id] = true
		d, err := r.GetDeployment(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			find("deployment %d is logged (entry %d) but missing", id, index)
			return nil
		} else if err != nil {
			return err
		}
		li := ""
		if d.LogIndex != nil {
			li = fmt.Sprint(*d.LogIndex)
		}
		diff(find, fmt.Sprintf("deployment %d", id), map[string][2]string{
			"model":           {s("model"), d.Model},
			"alias":           {s("alias"), d.Alias},
			"version":         {s("version"), d.Version},
			"digest":          {s("digest"), d.Digest.String()},
			"alias_log_index": {fmt.Sprint(e.Data["alias_log_index"]), fmt.Sprint(d.AliasLogIndex)},
			"host":            {s("host"), d.Host},
			"pid":             {fmt.Sprint(e.Data["pid"]), fmt.Sprint(d.PID)},
			"started_at":      {s("started_at"), d.StartedAt.UTC().Format(time.RFC3339Nano)},
			"actor":           {e.Actor, d.Actor},
			"log_index":       {fmt.Sprint(index), li},
		})
	case "dataset.register":
		d, err := r.GetDataset(ctx, s("name"), s("version"))
		if errors.Is(err, store.ErrNotFound) {
			find("dataset %s@%s is logged (entry %d) but missing", s("name"), s("version"), index)
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
		a.datasets = append(a.datasets, store.DatasetRef{Name: s("name"), Version: s("version")})
	case "dataset.evidence":
		ref := store.DatasetRef{Name: s("name"), Version: s("version")}
		if a.evidence[ref] == nil {
			a.evidence[ref] = map[string]bool{}
		}
		a.evidence[ref][s("digest")] = true
		evs, err := r.ListEvidence(ctx, ref)
		if errors.Is(err, store.ErrNotFound) {
			evs = nil
		} else if err != nil {
			return err
		}
		var ev *store.Evidence
		for i := range evs {
			if evs[i].Digest.String() == s("digest") {
				ev = &evs[i]
			}
		}
		what := "evidence " + s("digest") + " of dataset " + ref.Name + "@" + ref.Version
		if ev == nil {
			find("%s is logged (entry %d) but missing", what, index)
			return nil
		}
		failed := ""
		if n, ok := e.Data["failed"]; ok {
			failed = fmt.Sprint(n)
		}
		diff(find, what, map[string][2]string{
			"signer":     {s("signer"), ev.Signature.Signer},
			"contract":   {s("contract"), ev.Contract},
			"outcome":    {s("outcome"), ev.Outcome},
			"failed":     {failed, fmt.Sprint(ev.Failed)},
			"created_by": {e.Actor, ev.CreatedBy},
		})
	case "token.create":
		tok, err := r.GetToken(ctx, s("id"))
		if a.unsupported("tokens", err) {
			return nil
		}
		if errors.Is(err, store.ErrNotFound) {
			find("token %s is logged (entry %d) but missing", s("id"), index)
			return nil
		} else if err != nil {
			return err
		}
		diff(find, "token "+s("id"), map[string][2]string{
			"role": {s("role"), tok.Role},
			"name": {s("name"), tok.Name},
		})
	case "approval.create":
		key := s("model") + "@" + s("version")
		a.approvals[key+" "+s("approver")] = true
		as, err := r.ListApprovals(ctx, s("model"), s("version"))
		if err != nil {
			return err
		}
		var got *store.Approval
		for i := range as {
			if as[i].Approver == s("approver") {
				got = &as[i]
			}
		}
		if got == nil {
			find("approval of %s by %s is logged (entry %d) but missing", key, s("approver"), index)
			return nil
		}
		diff(find, "approval of "+key+" by "+s("approver"), map[string][2]string{
			"comment": {s("comment"), got.Comment},
		})
	case "version.status":
		key := s("model") + "@" + s("version")
		a.statuses[key] = true
		st, err := r.GetVersionStatus(ctx, s("model"), s("version"))
		if errors.Is(err, store.ErrNotFound) {
			find("status %s of version %s is logged (entry %d) but missing", s("status"), key, index)
			return nil
		} else if err != nil {
			return err
		}
		diff(find, "status of version "+key, map[string][2]string{
			"status": {s("status"), st.Status},
			"reason": {s("reason"), st.Reason},
			"actor":  {e.Actor, st.Actor},
		})
	case "policy.decision", "monitor.result":
		// A decision or a monitor's result changes no row: the journal
		// check covers it.
	default:
		find("entry %d has an unknown type %q", index, e.Type)
	}
	return nil
}

// Finish runs the checks that need the whole log and returns the findings.
func (a *Auditor) Finish(ctx context.Context) ([]string, error) {
	r, find := a.st, a.find
	// Models: the latest logged metadata is the current one, and every
	// model (with its versions and aliases) was logged.
	for after := ""; ; {
		ms, err := r.ListModels(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			logged, ok := a.models[m.Name]
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
			if err := a.auditVersions(ctx, m.Name); err != nil {
				return nil, err
			}
			as, err := r.ListAliases(ctx, m.Name)
			if err != nil {
				return nil, err
			}
			for _, al := range as {
				if a.aliases[aliasKey{m.Name, al.Alias}] == nil {
					find("alias %s/%s exists but no change of it is in the log", m.Name, al.Alias)
				}
			}
			after = m.Name
		}
		if len(ms) < 1000 {
			break
		}
	}
	for name := range a.models {
		if _, err := r.GetModel(ctx, name); errors.Is(err, store.ErrNotFound) {
			find("model %s is logged but missing", name)
		} else if err != nil {
			return nil, err
		}
	}
	// Alias histories: the stored history is exactly the logged one.
	for _, k := range a.aliasOrder {
		h, err := r.AliasHistory(ctx, k.model, k.alias)
		if errors.Is(err, store.ErrNotFound) {
			h = nil
		} else if err != nil {
			return nil, err
		}
		logged := a.aliases[k]
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
			// Changes made before schema v3 have no index; the others
			// must point at the entry that logged them (serving
			// processes prove that entry).
			if li := h[i].LogIndex; li != nil && *li != a.aliasIdx[k][i] {
				find("alias %s/%s change %d names log entry %d, it is entry %d", k.model, k.alias, i+1, *li, a.aliasIdx[k][i])
			}
		}
	}
	// Deployments that never reached the log.
	for after := int64(0); ; {
		ds, err := r.ListDeployments(ctx, "", after, 1000)
		if a.unsupported("deployments", err) {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if !a.deploys[d.ID] {
				find("deployment %d (%s@%s on %s) is not in the log", d.ID, d.Model, d.Version, d.Host)
			}
			after = d.ID
		}
		if len(ds) < 1000 {
			break
		}
	}
	// Evidence attached to a logged dataset behind the log's back.
	for _, ref := range a.datasets {
		evs, err := r.ListEvidence(ctx, ref)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if !a.evidence[ref][ev.Digest.String()] {
				find("evidence %s of dataset %s@%s exists but its attachment is not in the log", ev.Digest, ref.Name, ref.Version)
			}
		}
	}
	// Journal events that never reached the log.
	for after := int64(0); ; {
		evs, err := r.Events(ctx, after, 1000)
		if a.unsupported("journal", err) {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if logged, ok := a.events[ev.Seq]; !ok {
				find("journal event %d (%s %s) is not in the log", ev.Seq, ev.Type, ev.Subject)
			} else if logged != ev.Type+" "+ev.Subject {
				find("journal event %d is %s %s, the log says %s", ev.Seq, ev.Type, ev.Subject, logged)
			}
			after = ev.Seq
		}
		if len(evs) < 1000 {
			break
		}
	}
	return a.findings, nil
}

// auditVersions reports versions, approvals and statuses of model that
// exist but were never logged.
func (a *Auditor) auditVersions(ctx context.Context, model string) error {
	r, find := a.st, a.find
	for after := ""; ; {
		vs, err := r.ListVersions(ctx, model, after, 1000)
		if err != nil {
			return err
		}
		for _, v := range vs {
			key := model + "@" + v.Version
			if !a.versions[key] {
				find("version %s exists but its registration is not in the log", key)
			}
			as, err := r.ListApprovals(ctx, model, v.Version)
			if err != nil {
				return err
			}
			for _, ap := range as {
				if !a.approvals[key+" "+ap.Approver] {
					find("approval of %s by %s exists but is not in the log", key, ap.Approver)
				}
			}
			st, err := r.GetVersionStatus(ctx, model, v.Version)
			if err == nil && !a.statuses[key] {
				find("version %s is marked %s but the log never says so", key, st.Status)
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
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
