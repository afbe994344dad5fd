package api

import (
	"crypto"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/custody-ml/custody/internal/oms"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/trust"
)

// TestTwoServersOnePostgres runs two API servers, each with its own store
// handle on one PostgreSQL database (two processes behind a load balancer),
// and hammers both at once with identical registrations and alias moves.
// Afterwards every version exists exactly once, and the alias history is one
// unbroken chain: no lost update, no duplicate.
func TestTwoServersOnePostgres(t *testing.T) {
	cluster, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrUnavailable) && !pgtest.Required() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	url, err := cluster.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key, err := oms.GenerateKey(oms.AlgoECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ver, _ := trust.NewKeys([]crypto.PublicKey{key.Public()})

	var servers [2]*env
	for i := range servers {
		st, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		svc := registry.New(st, registry.Options{Verifier: ver})
		h, err := New(svc, Options{RatePerSecond: 1e6, RateBurst: 1e6})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, srv: httptest.NewServer(h), svc: svc, st: st, key: key, tokens: map[registry.Role]string{}}
		defer func() { e.srv.Close(); st.Close() }()
		servers[i] = e
	}
	admin, _, err := servers[0].svc.CreateToken(t.Context(), registry.Actor{Name: "local:test", Role: registry.RoleAdmin}, registry.RoleAdmin, "t")
	if err != nil {
		t.Fatal(err)
	}
	const versions = 6
	bodies := make([]RegisterBody, versions)
	for i := range bodies {
		bodies[i] = servers[0].registerBody(fmt.Sprint("weights ", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		e := servers[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range versions {
				code, env := e.do(admin, "PUT", fmt.Sprintf("/api/v1/models/m/versions/%d", i), bodies[i])
				if code != 201 && code != 200 {
					errs <- fmt.Errorf("register %d: %d %+v", i, code, env)
					return
				}
				// Point the alias at a version this worker has registered.
				code, env = e.do(admin, "PUT", "/api/v1/models/m/aliases/production", AliasBody{Version: fmt.Sprint((i * (w + 1)) % (i + 1))})
				if code != 200 {
					errs <- fmt.Errorf("alias: %d %+v", code, env)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := servers[1].st
	evs, err := st.Events(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Type]++
	}
	if count["version.register"] != versions || count["model.create"] != 1 {
		t.Fatalf("journal counts %v: want %d registrations and one model", count, versions)
	}
	for i := range versions {
		v, err := st.GetVersion(t.Context(), "m", fmt.Sprint(i))
		if err != nil || v.Manifest.Digest != bodies[i].Manifest.Digest {
			t.Fatalf("version %d: %+v, %v", i, v, err)
		}
	}
	hist, err := st.AliasHistory(t.Context(), "m", "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || len(hist) != count["alias.set"] {
		t.Fatalf("%d alias events, %d journaled", len(hist), count["alias.set"])
	}
	for i, h := range hist {
		prev := ""
		if i > 0 {
			prev = hist[i-1].Version
			if h.At.Before(hist[i-1].At) {
				t.Fatalf("alias event %d is dated before its predecessor", i)
			}
		}
		if h.Previous != prev || h.Version == prev {
			t.Fatalf("alias event %d: %q -> %q after %q: broken chain", i, h.Previous, h.Version, prev)
		}
	}
}
