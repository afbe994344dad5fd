package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() { register(newApproveCommand) }

type approveOptions struct {
	clientOptions
	Comment string
	JSON    bool
}

func (o *approveOptions) AddFlags(cmd *cobra.Command) {
	o.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Comment, "comment", "", "why the version is approved (kept with the approval and in the log)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the approval as JSON")
}

func newApproveCommand() *cobra.Command {
	var opts approveOptions
	cmd := &cobra.Command{
		Use:   "approve NAME@VERSION [--comment TEXT]",
		Short: "Approve a model version (policy decision approve; needs the approver role)",
		Long: `Record the token's approval of a model version. The server's approve policy
decides first (by default: signed by a trusted key, scanned safe, and the
approver is not the publisher: the two-person rule); the decision is logged
either way. Approving twice with the same token is a no-op.

Exit status: 0 approved, 1 denied by policy (the reasons are printed) or no
such version, 2 could not ask (usage, token, role, transport).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApprove(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runApprove(ctx context.Context, stdout io.Writer, opts approveOptions, ref string) error {
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	a, created, err := c.Approve(ctx, name, version, opts.Comment)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, a)
	}
	state := "approved"
	if !created {
		state = "already approved"
	}
	_, err = fmt.Fprintf(stdout, "%s@%s %s by %s\n", name, version, state, a.Approver)
	return err
}
