package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newPromoteCommand) }

type promoteOptions struct {
	clientOptions
	Alias string
	JSON  bool
}

func (o *promoteOptions) AddFlags(cmd *cobra.Command) {
	o.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Alias, "alias", "", "the alias to move, e.g. production (required)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the alias event as JSON")
}

func newPromoteCommand() *cobra.Command {
	var opts promoteOptions
	cmd := &cobra.Command{
		Use:   "promote NAME@VERSION --alias ALIAS",
		Short: "Move an alias to a version through the promote policy (needs the approver role)",
		Long: `Point ALIAS at the version if the server's promote policy allows it (by
default: signed by a trusted key, scanned safe, metric minimums met and approved
by someone other than the publisher). The decision and the alias change, with
its previous target, are logged in one transaction; a denial is logged alone.
A version marked bad (rolled back from) is always refused. Protected aliases
(production by default) move only this way or by 'custody rollback'.

Exit status: 0 promoted (or already there), 1 denied by policy (the reasons are
printed) or no such version, 2 could not ask.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPromote(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runPromote(ctx context.Context, stdout io.Writer, opts promoteOptions, ref string) error {
	if opts.Alias == "" {
		return usagef("--alias is required (e.g. --alias production)")
	}
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	e, err := c.Promote(ctx, name, version, opts.Alias)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, e)
	}
	prev := e.Previous
	if prev == "" {
		prev = "none"
	}
	_, err = fmt.Fprintf(stdout, "%s@%s -> %s (was %s)\n", name, opts.Alias, e.Version, prev)
	return err
}
