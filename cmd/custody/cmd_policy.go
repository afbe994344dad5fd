package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/custody-ml/custody/internal/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newPolicyCommand) }

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Evaluate and test the policy-as-code gates offline",
		Long: `Policies written in Rego (v1) decide the gates register, approve, promote,
rollback and deploy. These verbs run the same engine as the server, offline (in CI, say).
Without --policy the embedded default policies are used. See docs/policy.md
for the input document and the policy convention.`,
	}
	cmd.AddCommand(newPolicyEvalCommand(), newPolicyTestCommand())
	return cmd
}

type policyEvalOptions struct {
	Policy   string
	Input    string
	Decision string
	JSON     bool
}

func (o *policyEvalOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&o.Policy, "policy", "", "directory of .rego policies (default: the embedded defaults)")
	f.StringVar(&o.Input, "input", "", "the input document (JSON file, - for stdin)")
	f.StringVar(&o.Decision, "decision", "", "the decision: register, approve, promote, rollback or deploy")
	f.BoolVar(&o.JSON, "json", false, "print the decision as JSON")
}

func newPolicyEvalCommand() *cobra.Command {
	var opts policyEvalOptions
	cmd := &cobra.Command{
		Use:   "eval --input FILE --decision DECISION [--policy DIR]",
		Short: "Evaluate a policy decision for an input document",
		Long: `Evaluate one decision for an input document. Prints "allow", or "deny"
followed by the policy's reasons verbatim, one per line.

Exit codes: 0 allowed, 1 denied, 2 the policy could not be evaluated (it
fails closed: an undefined or erroring policy is never an allow).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyEval(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func policySources(dir string) ([]policy.Source, error) {
	if dir == "" {
		return policy.Defaults(), nil
	}
	return policy.LoadDir(dir)
}

func runPolicyEval(ctx context.Context, stdin io.Reader, stdout io.Writer, opts policyEvalOptions) error {
	if opts.Input == "" || opts.Decision == "" {
		return usagef("--input and --decision are required")
	}
	srcs, err := policySources(opts.Policy)
	if err != nil {
		return err
	}
	e, err := policy.New(ctx, srcs, policy.Options{})
	if err != nil {
		return err
	}
	var r io.Reader = stdin
	if opts.Input != "-" {
		f, err := os.Open(opts.Input)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	input, err := io.ReadAll(io.LimitReader(r, policy.MaxInputSize+1))
	if err != nil {
		return fmt.Errorf("failed to read input: %w", err)
	}
	d, err := e.Evaluate(ctx, opts.Decision, input)
	if err != nil {
		if errors.Is(err, policy.ErrUnknownDecision) {
			return usagef("--decision: %v", err)
		}
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else if d.Allow {
		fmt.Fprintln(stdout, "allow")
	} else {
		fmt.Fprintln(stdout, "deny")
		for _, m := range d.Deny {
			fmt.Fprintf(stdout, "  %s\n", m)
		}
	}
	if !d.Allow {
		return notHold(fmt.Errorf("%s denied: %d reason(s)", opts.Decision, len(d.Deny)))
	}
	return nil
}

type policyTestOptions struct{}

func newPolicyTestCommand() *cobra.Command {
	var opts policyTestOptions
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego unit tests of a policy directory",
		Long: `Run the Rego unit tests (rules named test_* in *_test.rego files) of DIR,
or of the embedded default policies without DIR. Prints PASS or FAIL per test.

Exit codes: 0 all pass, 1 a test fails, 2 the tests could not be run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyTest(cmd.Context(), cmd.OutOrStdout(), opts, args)
		},
	}
	return cmd
}

func runPolicyTest(ctx context.Context, stdout io.Writer, _ policyTestOptions, args []string) error {
	dir := ""
	if len(args) == 1 {
		dir = args[0]
	}
	srcs, err := policySources(dir)
	if err != nil {
		return err
	}
	res, err := policy.Test(ctx, srcs)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("no Rego tests found (rules named test_*)")
	}
	failed := 0
	for _, r := range res {
		if r.Pass {
			fmt.Fprintf(stdout, "PASS %s\n", r.Name)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s: %s\n", r.Name, r.Message)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(res)-failed, failed)
	if failed > 0 {
		return notHold(fmt.Errorf("%d of %d policy tests failed", failed, len(res)))
	}
	return nil
}
