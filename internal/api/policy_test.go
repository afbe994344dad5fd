package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/tlog"
)

// logTypes returns the types of the log's entries, in order.
func (e *env) logTypes() []string {
	e.t.Helper()
	n, err := e.st.LogSize(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := e.st.LogEntries(e.t.Context(), 0, int(n))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, b := range raw {
		en, err := tlog.ParseEntry(b)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, en.Type)
	}
	return out
}

// TestPolicyGate runs the default policies behind the API: denials come
// back as policy_denied (403) with the reasons verbatim, the protected
// alias cannot be moved around the promote policy, and every decision is
// in the log.
func TestPolicyGate(t *testing.T) {
	gate, err := policy.NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvGate(t, Options{RatePerSecond: 1e6, RateBurst: 1e6}, gate, []string{"production"})
	pub, appr, admin := e.tokens[registry.RolePublisher], e.tokens[registry.RoleApprover], e.tokens[registry.RoleAdmin]
	body := e.registerBody("weights")
	body.ScanVerdict = "safe"
	body.Run = &registry.RunSpec{Metrics: map[string]float64{"accuracy": 0.95}}
	if code, env := e.do(pub, "PUT", "/api/v1/models/m/versions/1", body); code != 201 {
		t.Fatalf("register: %d %+v", code, env)
	}

	// Not approved yet: promote is denied with the reason verbatim.
	code, env := e.do(appr, "POST", "/api/v1/models/m/aliases/production/promote", PromoteBody{Version: "1"})
	want := `no approval by anyone other than the publisher "token:`
	if code != 403 || env.ErrorType != ErrPolicyDenied || len(env.Reasons) != 1 || !strings.HasPrefix(env.Reasons[0], want) || !strings.Contains(env.Error, want) {
		t.Fatalf("promote unapproved: %d %+v", code, env)
	}
	// The publisher may not approve (role), nor approve its own version.
	if code, env := e.do(pub, "POST", "/api/v1/models/m/versions/1/approvals", ApproveBody{}); code != 403 || env.ErrorType != ErrForbidden {
		t.Fatalf("approve by publisher role: %d %+v", code, env)
	}
	// The protected alias does not move by PUT or DELETE.
	if code, env := e.do(admin, "PUT", "/api/v1/models/m/aliases/production", AliasBody{Version: "1"}); code != 403 || !strings.Contains(env.Error, "custody promote") {
		t.Fatalf("alias set production: %d %+v", code, env)
	}
	if code, env := e.do(admin, "DELETE", "/api/v1/models/m/aliases/production", nil); code != 403 {
		t.Fatalf("alias remove production: %d %+v", code, env)
	}

	code, env = e.do(appr, "POST", "/api/v1/models/m/versions/1/approvals", ApproveBody{Comment: "lgtm"})
	if code != 201 {
		t.Fatalf("approve: %d %+v", code, env)
	}
	if code, _ := e.do(appr, "POST", "/api/v1/models/m/versions/1/approvals", ApproveBody{Comment: "again"}); code != 200 {
		t.Fatalf("approve again: %d, want 200 (idempotent)", code)
	}
	code, env = e.do(appr, "POST", "/api/v1/models/m/aliases/production/promote", PromoteBody{Version: "1"})
	if code != 200 {
		t.Fatalf("promote: %d %+v", code, env)
	}
	var ev store.AliasEvent
	json.Unmarshal(env.Data, &ev)
	if ev.Version != "1" || ev.Previous != "" {
		t.Fatalf("promote event %+v", ev)
	}
	code, env = e.do(pub, "GET", "/api/v1/models/m/versions/1/status", nil)
	var st registry.VersionState
	json.Unmarshal(env.Data, &st)
	if code != 200 || st.Status != "ok" || len(st.Approvals) != 1 || st.Approvals[0].Comment != "lgtm" {
		t.Fatalf("status: %d %+v", code, st)
	}
	// Nothing earlier held production: no rollback.
	if code, env := e.do(appr, "POST", "/api/v1/models/m/aliases/production/rollback", RollbackBody{}); code != 409 {
		t.Fatalf("rollback with no earlier target: %d %+v", code, env)
	}
	// Strict bodies.
	if code, _ := e.do(appr, "POST", "/api/v1/models/m/aliases/production/promote", []byte(`{"version":"1","force":true}`)); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}

	got := strings.Join(e.logTypes(), " ")
	// Denied promote, the two refused approvals never reach the policy
	// (role; nothing to decide), nor does the rollback with no target.
	wantLog := strings.Repeat("token.create ", len(registry.Roles)) + "model.create run.create policy.decision version.register " +
		"policy.decision policy.decision approval.create policy.decision alias.set"
	if got != wantLog {
		t.Fatalf("log:\n got %s\nwant %s", got, wantLog)
	}
}

// TestPolicyError: a policy that cannot be evaluated refuses the action
// (fail closed) without leaking the cause, and the refusal is logged.
func TestPolicyError(t *testing.T) {
	srcs := []policy.Source{{Name: "broken.rego", Text: "package custody.approve\n\ndeny contains x if { x := 1 / 0 }\n"}}
	for _, d := range []string{"register", "promote", "rollback", "deploy"} {
		srcs = append(srcs, policy.Source{Name: d + ".rego", Text: strings.ReplaceAll(allowAll, "%s", d)})
	}
	gate, err := policy.New(t.Context(), srcs, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvGate(t, Options{RatePerSecond: 1e6, RateBurst: 1e6}, gate, nil)
	if code, env := e.do(e.tokens[registry.RoleAdmin], "PUT", "/api/v1/models/m/versions/1", e.registerBody("w")); code != 201 {
		t.Fatalf("register: %d %+v", code, env)
	}
	code, env := e.do(e.tokens[registry.RoleApprover], "POST", "/api/v1/models/m/versions/1/approvals", ApproveBody{})
	if code != 500 || env.ErrorType != ErrPolicyFailed || strings.Contains(env.Error, "divide") {
		t.Fatalf("approve with a broken policy: %d %+v", code, env)
	}
	if n := len(e.logTypes()); e.logTypes()[n-1] != "policy.decision" {
		t.Fatalf("the refusal is not logged: %v", e.logTypes())
	}
	st, _ := e.svc.VersionState(t.Context(), "m", "1")
	if len(st.Approvals) != 0 {
		t.Fatalf("approved despite the error: %+v", st)
	}
}
