// Command custody gives machine-learning models a verifiable chain of custody:
// it hashes, signs, scans and verifies model artifacts, and runs the registry
// server. See README.md and docs/ for the formats it speaks.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every verb. Checking verbs (verify, scan, ...) use all
// three: 0 the property holds, 1 it does not hold, 2 it could not be checked.
const (
	exitOK       = 0
	exitNotHold  = 1
	exitCantTell = 2
)

// errNotHold marks an error as "checked, and the property does not hold"
// (exit 1). Wrap it with notHold; everything else that is not nil exits 2.
var errNotHold = errors.New("check failed")

// notHoldError carries a precise reason and maps to exit code 1.
type notHoldError struct{ err error }

func (e *notHoldError) Error() string { return e.err.Error() }
func (e *notHoldError) Unwrap() []error {
	return []error{e.err, errNotHold}
}

// notHold wraps err so that main exits with code 1.
func notHold(err error) error {
	if err == nil {
		return nil
	}
	return &notHoldError{err: err}
}

// usageError is a bad flag or argument: exit 2 with the usage hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatusError makes custody exit with a given status without a
// message: a supervisor passing on its child's exit status.
type exitStatusError struct{ code int }

func (e *exitStatusError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// commandFactories is filled by init functions in the cmd_*.go files, so that
// each command lives in its own file and adding one touches no other file.
var commandFactories []func() *cobra.Command

func register(f func() *cobra.Command) { commandFactories = append(commandFactories, f) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "custody",
		Short:         "A verifiable chain of custody for machine-learning models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	cmds := make([]*cobra.Command, 0, len(commandFactories))
	for _, f := range commandFactories {
		cmds = append(cmds, f())
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	root.AddCommand(cmds...)
	return root
}

// exitCode maps an error returned by a command to the process exit code.
// This is the only place where that mapping lives.
func exitCode(err error) int {
	var es *exitStatusError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.Is(err, errNotHold):
		return exitNotHold
	default:
		return exitCantTell
	}
}

func run(ctx context.Context, args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var es *exitStatusError
	if err != nil && !errors.As(err, &es) {
		fmt.Fprintf(os.Stderr, "custody: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "Run 'custody --help' for usage.")
		}
	}
	return exitCode(err)
}

// runMain runs the command line with SIGINT and SIGTERM cancelling the
// root context (the server shuts down gracefully on either).
func runMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:])
}

func main() { os.Exit(runMain()) }
