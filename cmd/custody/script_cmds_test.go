package main

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/custody-ml/custody/internal/testvectors"
	"github.com/rogpeppe/go-internal/testscript"
)

func vectorsDir(t *testing.T) string { return testvectors.Dir(t) }

// scriptCmds are extra commands available to the CLI scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// setenvmatch VAR REGEXP: set VAR to the first submatch of REGEXP in
	// the last command's stdout (the whole match if there is no group).
	"setenvmatch": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: setenvmatch VAR REGEXP")
		}
		re := regexp.MustCompile(`(?m)` + args[1])
		m := re.FindStringSubmatch(ts.ReadFile("stdout"))
		if m == nil {
			ts.Fatalf("setenvmatch: %q not found in stdout", args[1])
		}
		ts.Setenv(args[0], m[len(m)-1])
	},
	// replace OLD NEW FILE: replace every OLD with NEW in FILE; OLD must occur.
	"replace": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 {
			ts.Fatalf("usage: replace OLD NEW FILE")
		}
		data := ts.ReadFile(args[2])
		if !strings.Contains(data, args[0]) {
			ts.Fatalf("replace: %q not in %s", args[0], args[2])
		}
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(strings.ReplaceAll(data, args[0], args[1])), 0o644))
	},
	// status N PROG [ARGS...]: run PROG like exec and require exit status N,
	// so scripts can tell "does not hold" (1) from "could not check" (2).
	"status": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: status N PROG [ARGS...]")
		}
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		err = ts.Exec(args[1], args[2:]...)
		got := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			got = ee.ExitCode()
		case err != nil:
			ts.Fatalf("status: %v", err)
		}
		if got != want {
			ts.Fatalf("exit status %d, want %d", got, want)
		}
	},
	// mkfifo PATH: make a named pipe.
	"mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: mkfifo PATH")
		}
		ts.Check(syscall.Mkfifo(ts.MkAbs(args[0]), 0o644))
	},
}
