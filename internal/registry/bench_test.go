package registry_test

import (
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/policy"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/tlog"
)

// BenchmarkAliasMove compares moving an alias by hand (SetAlias: the
// baseline, no policy) with moving it through the promote policy (input
// built from the store, OPA evaluation, a policy.decision entry), both on
// SQLite with the transparency log hooked in. Run with
//
//	go test ./internal/registry -run '^$' -bench AliasMove -benchtime 500x
//
// and compare the ns/op of the two sub-benchmarks.
func BenchmarkAliasMove(b *testing.B) {
	gate, err := policy.NewDefault(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	for _, gated := range []bool{false, true} {
		name := "SetAlias"
		if gated {
			name = "Promote"
		}
		b.Run(name, func(b *testing.B) {
			st, err := sqlite.OpenWith(b.Context(), filepath.Join(b.TempDir(), "r.db"), sqlite.Options{Sync: "normal"})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			pub, priv, _ := ed25519.GenerateKey(nil)
			f := &fixture{st: st, priv: priv}
			f.svc = registry.New(st, registry.Options{Verifier: edVerifier{pub}, Gate: gate, Hooks: []registry.TxHook{tlog.Hook{}}, Now: func() time.Time { return time.Now() }})
			ctx := b.Context()
			for _, v := range []string{"1", "2"} {
				req := f.request(b, "m", v, "weights "+v)
				req.ScanVerdict = "safe"
				if _, _, err := f.svc.RegisterVersion(ctx, admin, req); err != nil {
					b.Fatal(err)
				}
				if _, _, err := f.svc.Approve(ctx, approver, "m", v, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				v := []string{"1", "2"}[i%2]
				if gated {
					_, err = f.svc.Promote(ctx, approver, "m", v, "production")
				} else {
					_, err = f.svc.SetAlias(ctx, approver, "m", "production", v)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
