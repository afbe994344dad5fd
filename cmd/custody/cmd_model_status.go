package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type modelStatusOptions struct {
	clientOptions
	JSON bool
}

func (o *modelStatusOptions) AddFlags(cmd *cobra.Command) {
	o.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the status and approvals as JSON")
}

func newModelStatusCommand() *cobra.Command {
	var opts modelStatusOptions
	cmd := &cobra.Command{
		Use:   "status NAME@VERSION",
		Short: "Print a version's status (ok, or bad after a rollback) and its approvals",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelStatus(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runModelStatus(ctx context.Context, stdout io.Writer, opts modelStatusOptions, ref string) error {
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	st, err := c.VersionState(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, st)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s: %s", name, version, st.Status)
	if st.At != nil {
		fmt.Fprintf(&b, " since %s by %s", st.At.Format(time.RFC3339), st.Actor)
		if st.Reason != "" {
			fmt.Fprintf(&b, ": %s", st.Reason)
		}
	}
	b.WriteString("\n")
	if len(st.Approvals) == 0 {
		b.WriteString("approvals: none\n")
	}
	for _, a := range st.Approvals {
		fmt.Fprintf(&b, "approved by %s at %s", a.Approver, a.At.Format(time.RFC3339))
		if a.Comment != "" {
			fmt.Fprintf(&b, ": %s", a.Comment)
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}
