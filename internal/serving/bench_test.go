package serving

import (
	"fmt"
	"testing"

	"github.com/custody-ml/custody/internal/registry"
)

// BenchmarkResolve measures proving an alias against a log of ~n entries
// whose alias change is the first: "cold" is a new resolver, which scans
// every later entry (entry bundles and hash tiles); "warm" is a resolver
// that already scanned up to the current checkpoint, as a --watch poll
// that finds nothing new. Loopback HTTP, SQLite.
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		e := newRegistryEnv(b, "")
		e.register("m", "1", "w1")
		e.setAlias("m", "staging", "1")
		admin := registry.Actor{Name: "t", Role: registry.RoleAdmin}
		for i := range n {
			if _, err := e.svc.PutModel(b.Context(), admin, registry.ModelSpec{Name: fmt.Sprintf("pad%d", i)}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("cold/entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.resolver("").Resolve(b.Context(), "m", "staging"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("warm/entries=%d", n), func(b *testing.B) {
			r := e.resolver("")
			if _, err := r.Resolve(b.Context(), "m", "staging"); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.Resolve(b.Context(), "m", "staging"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
