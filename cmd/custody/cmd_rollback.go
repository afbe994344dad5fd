package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newRollbackCommand) }

type rollbackOptions struct {
	clientOptions
	Alias  string
	To     string
	Reason string
	JSON   bool
}

func (o *rollbackOptions) AddFlags(cmd *cobra.Command) {
	o.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Alias, "alias", "", "the alias to roll back, e.g. production (required)")
	cmd.Flags().StringVar(&o.To, "to", "", "the version to return to (default: the most recent earlier target not marked bad)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (kept with the bad mark and in the log)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the alias event as JSON")
}

func newRollbackCommand() *cobra.Command {
	var opts rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback NAME --alias ALIAS [--to VERSION] [--reason TEXT]",
		Short: "Move an alias back to its previous known-good version (needs the approver role)",
		Long: `Move ALIAS back to the most recent version that held it before its current
target and is not marked bad (or to --to VERSION, which must have held it).
The version rolled back from is marked bad: it is never a rollback target again
and promote refuses it. The server's rollback policy decides on the target
first (by default: still signed by a trusted key, scanned safe and approved by
someone other than the publisher; metric minimums are not re-checked). The
decision, the bad mark and the alias change are logged in one transaction.

Exit status: 0 rolled back, 1 denied by policy or nothing to roll back to,
2 could not ask.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRollback(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runRollback(ctx context.Context, stdout io.Writer, opts rollbackOptions, name string) error {
	if opts.Alias == "" {
		return usagef("--alias is required (e.g. --alias production)")
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	e, err := c.Rollback(ctx, name, opts.Alias, opts.To, opts.Reason)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, e)
	}
	_, err = fmt.Fprintf(stdout, "%s@%s -> %s (rolled back from %s, now marked bad)\n", name, opts.Alias, e.Version, e.Previous)
	return err
}
