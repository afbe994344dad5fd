package main

import (
	"testing"

	"github.com/custody-ml/custody/internal/testvectors"
	"github.com/rogpeppe/go-internal/testscript"
)

func vectorsDir(t *testing.T) string { return testvectors.Dir(t) }

// scriptCmds are extra commands available to the CLI scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){}
