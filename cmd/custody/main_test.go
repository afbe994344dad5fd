package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"custody": func() { os.Exit(runMain()) },
	})
}

// TestScripts runs the CLI scripts in testdata/script: every verb, its output
// and its exit code, as a user would type them.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("VECTORS", vectorsDir(t))
			return nil
		},
		Cmds: scriptCmds,
	})
}
