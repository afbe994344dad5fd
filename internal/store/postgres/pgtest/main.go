package pgtest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// RunTests is the body of a TestMain for packages that test against
// PostgreSQL: it starts one throwaway cluster, hands it (or the error from
// [Start]) to set, runs the tests, stops the cluster and, when the tests
// passed, fails if any goroutine leaked. It returns the exit code.
func RunTests(m *testing.M, set func(*Cluster, error)) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	start := Start
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		start = StartDurable // benchmarks measure a durable server
	}
	cluster, err := start()
	set(cluster, err)
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	if code == 0 {
		// Every store was closed: no connection goroutine may survive.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	return code
}
