package registry_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
)

var (
	cluster    *pgtest.Cluster
	clusterErr error
)

// backends opens a fresh store of each kind: SQLite and PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, st store.Store)) {
	backends2(t, func(t *testing.T, a, _ store.Store) { fn(t, a) })
}

// backends2 opens two handles on one fresh database of each kind, as two
// servers sharing it have.
func backends2(t *testing.T, fn func(t *testing.T, a, b store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		open := func() store.Store {
			st, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		a := open()
		fn(t, a, open())
	})
	t.Run("postgres", func(t *testing.T) {
		if clusterErr != nil {
			if errors.Is(clusterErr, pgtest.ErrUnavailable) && !pgtest.Required() {
				t.Skip(clusterErr)
			}
			t.Fatalf("PostgreSQL: %v", clusterErr)
		}
		url, err := cluster.NewDatabase(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		open := func() store.Store {
			st, err := postgres.Open(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		a := open()
		fn(t, a, open())
	})
}

// gatedFixture is a fixture over st with the default policies (real OPA),
// a minimum accuracy of 0.9 and production protected.
func gatedFixture(t *testing.T, st store.Store) *fixture {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	return gatedFixtureKey(t, st, priv)
}

// gatedFixtureKey is gatedFixture trusting priv's public key, with the
// transparency log hooked in.
func gatedFixtureKey(t *testing.T, st store.Store, priv ed25519.PrivateKey) *fixture {
	t.Helper()
	gate, err := policy.NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, priv: priv, clock: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f.svc = registry.New(st, registry.Options{Verifier: edVerifier{priv.Public().(ed25519.PublicKey)}, Gate: gate, ProtectedAliases: []string{"production"},
		PolicyConfig: map[string]any{"min_metrics": map[string]any{"accuracy": 0.9}}, Hooks: []registry.TxHook{tlog.Hook{}},
		Now: func() time.Time { return f.clock }})
	return f
}

func (f *fixture) register(t *testing.T, actor registry.Actor, version, content, verdict string, accuracy float64) {
	t.Helper()
	req := f.request(t, "m", version, content)
	req.ScanVerdict = verdict
	req.Run = &registry.RunSpec{Metrics: map[string]float64{"accuracy": accuracy}}
	if _, _, err := f.svc.RegisterVersion(t.Context(), actor, req); err != nil {
		t.Fatalf("register %s: %v", version, err)
	}
}

// decisions returns the logged policy decisions as "decision subject
// allow".
func (f *fixture) decisions(t *testing.T) []string {
	var out []string
	for _, ev := range f.events(t) {
		if ev.Type != "policy.decision" {
			continue
		}
		var p struct {
			Decision    string
			Subject     string
			InputDigest string `json:"input_digest"`
			Allow       bool
			Reasons     []string
		}
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.InputDigest, "sha256:") || len(p.InputDigest) != 71 {
			t.Fatalf("decision without an input digest: %s", ev.Payload)
		}
		allow := "deny"
		if p.Allow {
			allow = "allow"
		}
		out = append(out, p.Decision+" "+p.Subject+" "+allow)
	}
	return out
}

func wantDenied(t *testing.T, err error, reason string) {
	t.Helper()
	var de *registry.DeniedError
	if !errors.As(err, &de) || !errors.Is(err, registry.ErrPolicyDenied) {
		t.Fatalf("got %v, want a policy denial", err)
	}
	if !slices.Contains(de.Reasons, reason) {
		t.Fatalf("reasons %q do not include %q", de.Reasons, reason)
	}
}

func TestApprovePromoteRollback(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		f := gatedFixture(t, st)
		// admin publishes; approver (another token) approves.
		f.register(t, admin, "1", "w1", "safe", 0.95)
		f.clock = f.clock.Add(time.Second)
		f.register(t, admin, "2", "w2", "safe", 0.97)
		f.register(t, admin, "3", "w3", "safe", 0.5)
		f.register(t, admin, "4", "w4", "unsafe", 0.99)

		if _, err := f.svc.SetAlias(ctx, admin, "m", "production", "1"); !errors.Is(err, registry.ErrForbidden) || !strings.Contains(err.Error(), "custody promote") {
			t.Fatalf("SetAlias(production) = %v, want a refusal pointing to promote", err)
		}
		_, _, err := f.svc.Approve(ctx, admin, "m", "1", "")
		wantDenied(t, err, `actor "token:admin" is the publisher and may not approve it (two-person rule)`)
		if _, _, err := f.svc.Approve(ctx, publisher, "m", "1", ""); !errors.Is(err, registry.ErrForbidden) {
			t.Fatalf("Approve(publisher role) = %v", err)
		}
		_, err = f.svc.Promote(ctx, approver, "m", "1", "production")
		wantDenied(t, err, `no approval by anyone other than the publisher "token:admin" (two-person rule)`)

		for _, v := range []string{"1", "2", "3"} {
			a, created, err := f.svc.Approve(ctx, approver, "m", v, "ok "+v)
			if err != nil || !created || a.Approver != approver.Name {
				t.Fatalf("Approve(%s) = %+v, %v, %v", v, a, created, err)
			}
		}
		if a, created, err := f.svc.Approve(ctx, approver, "m", "1", "again"); err != nil || created || a.Comment != "ok 1" {
			t.Fatalf("Approve again = %+v, %v, %v; want the first approval, not created", a, created, err)
		}
		_, _, err = f.svc.Approve(ctx, approver, "m", "4", "")
		wantDenied(t, err, `scan verdict is "unsafe" (want "safe")`)

		e, err := f.svc.Promote(ctx, approver, "m", "1", "production")
		if err != nil || e.Version != "1" || e.Previous != "" {
			t.Fatalf("Promote(1) = %+v, %v", e, err)
		}
		f.clock = f.clock.Add(time.Second)
		e, err = f.svc.Promote(ctx, admin, "m", "2", "production")
		if err != nil || e.Version != "2" || e.Previous != "1" {
			t.Fatalf("Promote(2) = %+v, %v", e, err)
		}
		if e2, err := f.svc.Promote(ctx, admin, "m", "2", "production"); err != nil || e2.Seq != e.Seq {
			t.Fatalf("Promote(2) again = %+v, %v; want the current event", e2, err)
		}
		_, err = f.svc.Promote(ctx, approver, "m", "3", "production")
		wantDenied(t, err, "metric accuracy = 0.5 is below the minimum 0.9")

		f.clock = f.clock.Add(time.Second)
		e, err = f.svc.Rollback(ctx, approver, "m", "production", "error rate up")
		if err != nil || e.Version != "1" || e.Previous != "2" {
			t.Fatalf("Rollback = %+v, %v", e, err)
		}
		s2, err := f.svc.VersionState(ctx, "m", "2")
		if err != nil || s2.Status != registry.StatusBad || s2.Reason != "error rate up" || s2.Actor != approver.Name || len(s2.Approvals) != 1 {
			t.Fatalf("state of 2 = %+v, %v", s2, err)
		}
		if s1, _ := f.svc.VersionState(ctx, "m", "1"); s1.Status != "ok" {
			t.Fatalf("state of 1 = %+v", s1)
		}
		// A bad version is never promoted again, whatever the policy says,
		// and is no rollback target.
		_, err = f.svc.Promote(ctx, admin, "m", "2", "production")
		wantDenied(t, err, "version m@2 is marked bad since 2026-03-01T12:00:03Z: error rate up")
		if _, err := f.svc.Rollback(ctx, approver, "m", "production", ""); !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "marked bad") {
			t.Fatalf("Rollback past a bad version = %v", err)
		}
		_, err = f.svc.RollbackTo(ctx, approver, "m", "production", "2", "")
		wantDenied(t, err, "version m@2 is marked bad since 2026-03-01T12:00:03Z: error rate up")
		if _, err := f.svc.RollbackTo(ctx, approver, "m", "production", "3", ""); !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), "never held") {
			t.Fatalf("RollbackTo a version that never held the alias = %v", err)
		}
		if _, err := f.svc.Rollback(ctx, viewer, "m", "production", ""); !errors.Is(err, registry.ErrForbidden) {
			t.Fatalf("Rollback(viewer) = %v", err)
		}

		h, _ := f.svc.AliasHistory(ctx, "m", "production")
		var got []string
		for _, e := range h {
			got = append(got, e.Previous+">"+e.Version)
		}
		if strings.Join(got, " ") != ">1 1>2 2>1" {
			t.Fatalf("history %v", got)
		}
		want := []string{
			"register m@1 allow", "register m@2 allow", "register m@3 allow", "register m@4 allow",
			"approve m@1 deny", "promote m@1 -> production deny",
			"approve m@1 allow", "approve m@2 allow", "approve m@3 allow", "approve m@4 deny",
			"promote m@1 -> production allow", "promote m@2 -> production allow", "promote m@3 -> production deny",
			"rollback m@1 -> production allow", "promote m@2 -> production deny", "rollback m@2 -> production deny",
		}
		if got := f.decisions(t); !slices.Equal(got, want) {
			t.Fatalf("logged decisions:\n got %q\nwant %q", got, want)
		}
		// The journal has the state changes beside the decisions.
		var types []string
		for _, ev := range f.events(t) {
			if ev.Type == "version.status" || ev.Type == "approval.create" {
				types = append(types, ev.Type+" "+ev.Subject)
			}
		}
		if strings.Join(types, ",") != "approval.create m@1,approval.create m@2,approval.create m@3,version.status m@2" {
			t.Fatalf("journal: %v", types)
		}
	})
}

// TestConcurrentApprovals: approvals racing on two store handles (two
// servers) leave one approval per approver and one decision logged each.
func TestConcurrentApprovals(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		f := gatedFixture(t, st)
		f.register(t, admin, "1", "w1", "safe", 0.95)
		actors := []registry.Actor{approver, {Name: "token:appr2", Role: registry.RoleApprover}, {Name: "token:admin2", Role: registry.RoleAdmin}}
		var wg sync.WaitGroup
		errs := make(chan error, 3*len(actors))
		for range 3 {
			for _, a := range actors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, err := f.svc.Approve(context.Background(), a, "m", "1", "")
					errs <- err
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		st2, _ := f.svc.VersionState(t.Context(), "m", "1")
		if len(st2.Approvals) != len(actors) {
			t.Fatalf("approvals %+v", st2.Approvals)
		}
		n := 0
		for _, d := range f.decisions(t) {
			if strings.HasPrefix(d, "approve ") {
				n++
			}
		}
		if n != len(actors) {
			t.Fatalf("%d approve decisions logged, want %d", n, len(actors))
		}
	})
}

// TestNoGateFailsClosed: without a gate, approve and promote are refused.
func TestNoGateFailsClosed(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.svc.RegisterVersion(t.Context(), publisher, f.request(t, "m", "1", "w")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Approve(t.Context(), approver, "m", "1", ""); !errors.Is(err, registry.ErrPolicyFailed) {
		t.Fatalf("Approve without a gate = %v", err)
	}
	if _, err := f.svc.Promote(t.Context(), approver, "m", "1", "production"); !errors.Is(err, registry.ErrPolicyFailed) {
		t.Fatalf("Promote without a gate = %v", err)
	}
	if st, _ := f.svc.VersionState(t.Context(), "m", "1"); len(st.Approvals) != 0 {
		t.Fatal("approved without a gate")
	}
}

// TestConcurrentPromotions: two services on two handles of one database
// (two servers) promote and roll back concurrently. The alias history stays
// a chain (each change's previous target is the one before it), and every
// change through policy has its allowing decision logged just before it.
func TestConcurrentPromotions(t *testing.T) {
	backends2(t, func(t *testing.T, st, st2 store.Store) {
		f := gatedFixture(t, st)
		for _, v := range []string{"1", "2", "3", "4"} {
			f.register(t, admin, v, "w"+v, "safe", 0.95)
			if _, _, err := f.svc.Approve(t.Context(), approver, "m", v, ""); err != nil {
				t.Fatal(err)
			}
		}
		g := gatedFixtureKey(t, st2, f.priv) // a second server on the same database
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w, svc := range []*registry.Service{f.svc, g.svc} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					v := []string{"1", "2", "3", "4"}[(i+w)%4]
					_, err := svc.Promote(context.Background(), approver, "m", v, "production")
					if i%3 == 2 {
						_, err = svc.Rollback(context.Background(), approver, "m", "production", "flip")
					}
					if err != nil && !errors.Is(err, registry.ErrPolicyDenied) && !errors.Is(err, registry.ErrConflict) {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h, err := f.svc.AliasHistory(t.Context(), "m", "production")
		if err != nil {
			t.Fatal(err)
		}
		prev := ""
		for i, e := range h {
			if e.Previous != prev {
				t.Fatalf("change %d: previous %q, but the alias pointed at %q", i, e.Previous, prev)
			}
			prev = e.Version
		}
		// In the log (where one transaction's entries are contiguous), each
		// alias.set follows an allowing decision on it (a rollback's bad
		// mark may sit between).
		n, err := st.LogSize(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.LogEntries(t.Context(), 0, int(n))
		if err != nil {
			t.Fatal(err)
		}
		var es []*tlog.Entry
		for _, b := range raw {
			e, err := tlog.ParseEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		sets := 0
		for i, e := range es {
			if e.Type != "alias.set" {
				continue
			}
			sets++
			j := i - 1
			if es[j].Type == "version.status" {
				j--
			}
			if es[j].Type != "policy.decision" || es[j].Data["allow"] != true {
				t.Fatalf("alias change %v is not preceded by an allowing decision: %s %v", e.Data, es[j].Type, es[j].Data)
			}
		}
		if sets != len(h) || sets == 0 {
			t.Fatalf("%d alias.set events, %d history entries", sets, len(h))
		}
	})
}

// TestRegisterDenied: a register policy that denies keeps the version out,
// and the denial is logged alone.
func TestRegisterDenied(t *testing.T) {
	srcs := []policy.Source{{Name: "register.rego", Text: `package custody.register

deny contains "register needs a safe scan" if input.version.scan.verdict != "safe"

deny contains "register needs a safe scan" if not input.version.scan.verdict

allow if count(deny) == 0
`}}
	gate, err := policy.New(t.Context(), srcs, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	pub := f.priv.Public().(ed25519.PublicKey)
	f.svc = registry.New(f.st, registry.Options{Verifier: edVerifier{pub}, Gate: gate})
	_, _, err = f.svc.RegisterVersion(t.Context(), publisher, f.request(t, "m", "1", "w"))
	wantDenied(t, err, "register needs a safe scan")
	if _, err := f.svc.GetVersion(t.Context(), "m", "1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("denied version exists: %v", err)
	}
	if got := f.decisions(t); !slices.Equal(got, []string{"register m@1 deny"}) {
		t.Fatalf("decisions %q", got)
	}
	if evs := f.events(t); len(evs) != 1 {
		t.Fatalf("a denied registration changed state: %+v", evs)
	}
	req := f.request(t, "m", "1", "w")
	req.ScanVerdict = "safe"
	if _, created, err := f.svc.RegisterVersion(t.Context(), publisher, req); err != nil || !created {
		t.Fatalf("register safe: %v %v", created, err)
	}
	// The other decisions are undefined in this policy: they fail closed.
	if _, _, err := f.svc.Approve(t.Context(), approver, "m", "1", ""); !errors.Is(err, registry.ErrPolicyFailed) {
		t.Fatalf("Approve with no approve policy = %v", err)
	}
}
