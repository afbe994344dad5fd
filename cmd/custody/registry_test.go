package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestRegistryScripts runs the end-to-end registry scripts in
// testdata/registry against a real server, once with SQLite ($STORE is
// --data=DIR) and once with a throwaway PostgreSQL cluster ($STORE is
// --db=URL, a fresh database per script).
func TestRegistryScripts(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var cluster *pgtest.Cluster
			if backend == "postgres" {
				var err error
				cluster, err = pgtest.Start()
				if errors.Is(err, pgtest.ErrUnavailable) && !pgtest.Required() {
					t.Skip(err)
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cluster.Stop() })
			}
			testscript.Run(t, testscript.Params{
				Dir:                 "testdata/registry",
				RequireExplicitExec: true,
				Cmds:                scriptCmds,
				Setup: func(env *testscript.Env) error {
					env.Setenv("BACKEND", backend)
					env.Setenv("VECTORS", vectorsDir(t))
					if cluster == nil {
						env.Setenv("STORE", "--data="+filepath.Join(env.WorkDir, "srvdata"))
						return nil
					}
					url, err := cluster.NewDatabase(context.Background())
					if err != nil {
						return err
					}
					env.Setenv("STORE", "--db="+url)
					return nil
				},
			})
		})
	}
}

func init() {
	// waitaddr VAR FILE: wait (up to a minute) for a server to write its
	// address to FILE, then set VAR to its http:// URL.
	scriptCmds["waitaddr"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: waitaddr VAR FILE")
		}
		deadline := time.Now().Add(time.Minute)
		for {
			b, err := os.ReadFile(ts.MkAbs(args[1]))
			if err == nil && strings.HasSuffix(string(b), "\n") {
				ts.Setenv(args[0], "http://"+strings.TrimSpace(string(b)))
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitaddr: %s did not appear", args[1])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// sleep DURATION: pause (e.g. so that two alias changes get distinct times).
	scriptCmds["sleep"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: sleep DURATION")
		}
		d, err := time.ParseDuration(args[0])
		ts.Check(err)
		time.Sleep(d)
	}
}

func init() {
	// waitfile FILE REGEXP: wait (up to two minutes) until FILE exists and
	// its content matches REGEXP (multi-line mode). No timing asserts: a
	// deadline only bounds a hung test.
	scriptCmds["waitfile"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: waitfile FILE REGEXP")
		}
		re, err := regexp.Compile("(?m)" + args[1])
		ts.Check(err)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			b, err := os.ReadFile(ts.MkAbs(args[0]))
			if err == nil && re.Match(b) {
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitfile: %s never matched %q; it holds:\n%s", args[0], args[1], b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// waitentries DIR N: wait (up to two minutes) until DIR holds exactly
	// N entries.
	scriptCmds["waitentries"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: waitentries DIR N")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			es, err := os.ReadDir(ts.MkAbs(args[0]))
			if err == nil && len(es) == n {
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitentries: %s holds %d entries, want %d", args[0], len(es), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
