// Package archtest checks the layering rules of docs/architecture.md: the
// registry domain imports neither transport nor a specific store, and
// stores import neither the domain nor the API.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/custody-ml/custody/"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestLayers(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		// The domain asks its policy Gate, an interface it declares; the
		// OPA engine behind it is wired in by cmd/custody.
		{"internal/registry", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store/", mod + "internal/policy", "net/http", mod + "cmd/"}},
		{"internal/store/sqlite", []string{mod + "internal/registry", mod + "internal/api"}},
		// (net/http is not forbidden: parquet-go's brotli codec imports it.)
		{"internal/predict", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store/", mod + "internal/predstore/", mod + "cmd/"}},
		{"internal/predstore/predsql", []string{mod + "internal/registry", mod + "internal/predict", mod + "internal/api", mod + "internal/store"}},
		{"internal/predstore/predtest", []string{mod + "internal/registry", mod + "internal/predict", mod + "internal/api", mod + "internal/store"}},
		{"internal/store/postgres", []string{mod + "internal/registry", mod + "internal/api"}},
		{"internal/store/storetest", []string{mod + "internal/registry", mod + "internal/api"}},
		{"internal/dvc", []string{mod + "internal/"}},
		// The log reaches storage only through the store interfaces and
		// knows neither the domain nor HTTP.
		{"internal/tlog", []string{mod + "internal/registry", mod + "internal/api", mod + "internal/client", mod + "internal/store/", "net/http"}},
		{"internal/api", []string{mod + "internal/store/sqlite", mod + "internal/store/postgres", mod + "internal/store/sqlstore"}},
		// The BOM and the provenance are pure functions of records: no
		// transport, no store implementation, no registry rules. (attest
		// reaches net/http only through sigstore-go inside internal/oms.)
		{"internal/bom", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store/", mod + "internal/registry", mod + "cmd/"}},
		// Policy evaluation is a pure function of policies and an input
		// document: no transport, no store, no registry.
		{"internal/policy", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store", mod + "internal/registry", mod + "cmd/"}},
		// Serving is a client of the registry: it reaches it over HTTP
		// (internal/client) and never opens a store or serves the API.
		{"internal/serving", []string{mod + "internal/store/sqlite", mod + "internal/store/postgres", mod + "internal/store/sqlstore", mod + "cmd/"}},
		{"internal/attest", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store", mod + "internal/registry", mod + "cmd/"}},
		// Monitors reach the registry only through their Rollbacker
		// interface and storage through their SummaryStore: the server
		// wires them, they import neither.
		{"internal/monitor/watch", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store", mod + "internal/registry", mod + "internal/tlog", mod + "cmd/"}},
		// Webhook delivery is generic: it knows no other custody package.
		{"internal/monitor/alert", []string{mod + "internal/"}},
		// Rendering is a pure function of a result: no registry, API or store
		// (net/http comes in through watch's webhooks, not used here).
		{"internal/monitor/report", []string{mod + "internal/api", mod + "internal/client", mod + "internal/store", mod + "internal/registry", mod + "cmd/"}},
	}
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			if d == mod+r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				// "x/" forbids x's subpackages; "x" forbids x and its subpackages.
				if strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) || d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s, which its layer forbids", r.pkg, d)
				}
			}
		}
	}
}
