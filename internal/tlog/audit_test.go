package tlog_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/tlog"
)

// acceptAll stands in for signature verification, which the log does not
// depend on.
type acceptAll struct{}

func (acceptAll) Verify(context.Context, []byte, *digest.Manifest) (registry.Signer, error) {
	return registry.Signer{Identity: "key test"}, nil
}

func manifest(t *testing.T, content string) digest.Manifest {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := digest.Hash(t.Context(), p, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return *m
}

// populate makes a registry with models, versions, an alias history,
// approvals, a promotion and a rollback (with the default policies) and
// tokens, every change logged.
func populate(t *testing.T, s *sqlstore.DB) {
	t.Helper()
	gate, err := policy.NewDefault(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	svc := registry.New(s, registry.Options{Verifier: acceptAll{}, Hooks: []registry.TxHook{tlog.Hook{}}, Gate: gate})
	admin := registry.Actor{Name: "token:admin", Role: registry.RoleAdmin}
	ctx := t.Context()
	for _, v := range []string{"1", "2"} {
		req := registry.RegisterRequest{Model: "m", Version: v, Manifest: manifest(t, "weights "+v), Signatures: []json.RawMessage{json.RawMessage(`{}`)}, URI: "s3://m/" + v, ScanVerdict: "safe"}
		if _, _, err := svc.RegisterVersion(ctx, admin, req); err != nil {
			t.Fatal(err)
		}
	}
	var last *store.AliasEvent
	for _, v := range []string{"1", "2", "1"} {
		if last, err = svc.SetAlias(ctx, admin, "m", "production", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.ReportDeployment(ctx, admin, registry.DeploymentSpec{Model: "m", Alias: "production", Version: "1",
		Digest: manifest(t, "weights 1").Digest, AliasLogIndex: *last.LogIndex, Host: "web-1", PID: 42, StartedAt: time.Unix(1700000000, 5).UTC()}); err != nil {
		t.Fatal(err)
	}
	approver := registry.Actor{Name: "token:appr", Role: registry.RoleApprover}
	for _, v := range []string{"1", "2"} {
		if _, _, err := svc.Approve(ctx, approver, "m", v, "ok "+v); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Promote(ctx, approver, "m", v, "canary"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Rollback(ctx, approver, "m", "canary", "latency"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutModel(ctx, admin, registry.ModelSpec{Name: "m", Description: "sentiment", Owners: []string{"ml"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateToken(ctx, admin, registry.RoleViewer, "ci"); err != nil {
		t.Fatal(err)
	}
}

// Audit finds every row changed behind the log's back, and nothing in an
// untouched registry.
func TestAudit(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"clean", "", ""},
		{"version bytes", "UPDATE versions SET manifest = (SELECT manifest FROM versions WHERE version = '1') WHERE version = '2'", "version m@2: digest"},
		{"version uri", "UPDATE versions SET uri = 's3://evil/2' WHERE version = '2'", "version m@2: uri"},
		{"token role", "UPDATE tokens SET role = 'admin' WHERE name = 'ci'", "role is \"admin\""},
		{"alias moved", "UPDATE alias_events SET version = '2' WHERE seq = (SELECT MAX(seq) FROM alias_events WHERE alias = 'production')", "alias m/production change 3"},
		{"alias appended", "INSERT INTO alias_events (model, alias, version, previous, actor, at) VALUES ('m', 'production', '2', '1', 'token:admin', 0)", "has 4 changes, the log has 3"},
		{"version inserted", "INSERT INTO versions SELECT model, '3', digest, oms_root, manifest, signatures, uri, format, scan_verdict, run_id, created_by, created_at FROM versions WHERE version = '1'", "m@3 exists but"},
		{"model metadata", "UPDATE models SET owners = '[\"mallory\"]'", "owners is \"mallory\""},
		{"event unlogged", "INSERT INTO events (type, subject, actor, at, payload) VALUES ('model.update', 'm', 'x', 0, '{}')", "is not in the log"},
		{"event rewritten", "UPDATE events SET subject = 'n' WHERE type = 'model.update'", "the log says model.update m"},
		{"alias log index", "UPDATE alias_events SET log_index = 0 WHERE seq = (SELECT MAX(seq) FROM alias_events WHERE alias = 'production')", "alias m/production change 3 names log entry 0"},
		{"deployment altered", "UPDATE deployments SET version = '2'", "deployment 1: version is \"2\""},
		{"deployment host", "UPDATE deployments SET host = 'elsewhere'", "deployment 1: host"},
		{"deployment inserted", "INSERT INTO deployments (model, alias, version, digest, alias_log_index, host, pid, started_at, actor, at) SELECT model, alias, '2', digest, alias_log_index, host, pid, started_at, actor, at FROM deployments", "deployment 2 (m@2 on web-1) is not in the log"},
		{"deployment deleted", "DELETE FROM deployments", "deployment 1 is logged (entry "},
		{"version deleted", "DELETE FROM versions WHERE version = '1'", "m@1 is logged (entry "},
		{"approval comment", "UPDATE approvals SET comment = 'forged' WHERE version = '1'", "approval of m@1 by token:appr: comment is \"forged\", the log says \"ok 1\""},
		{"approval inserted", "INSERT INTO approvals (model, version, approver, comment, at) VALUES ('m', '2', 'token:mallory', '', 0)", "approval of m@2 by token:mallory exists but is not in the log"},
		{"approval deleted", "DELETE FROM approvals WHERE version = '2'", "approval of m@2 by token:appr is logged (entry "},
		{"status deleted", "DELETE FROM version_status", "status bad of version m@2 is logged (entry "},
		{"status inserted", "INSERT INTO version_status (model, version, status, reason, actor, at) VALUES ('m', '1', 'bad', '', 'x', 0)", "version m@1 is marked bad but the log never says so"},
		{"status reason", "UPDATE version_status SET reason = 'nothing'", "status of version m@2: reason is \"nothing\", the log says \"latency\""},
		{"rollback rewritten", "UPDATE alias_events SET version = '2' WHERE alias = 'canary' AND seq = (SELECT MAX(seq) FROM alias_events)", "alias m/canary change 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t)
			populate(t, s)
			if tc.sql != "" {
				if _, err := s.SQL().Exec("PRAGMA foreign_keys = OFF"); err != nil {
					t.Fatal(err)
				}
				if _, err := s.SQL().Exec(tc.sql); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := tlog.Audit(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Size == 0 {
				t.Fatal("empty log")
			}
			got := strings.Join(rep.Findings, "\n")
			if tc.want == "" {
				if got != "" {
					t.Fatalf("findings in an untouched registry:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("findings:\n%s\nwant one containing %q", got, tc.want)
			}
		})
	}
}
