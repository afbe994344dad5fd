package main

import (
	"context"
	"fmt"
	"io"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/spf13/cobra"
)

func init() { register(newTokenCommand) }

type tokenCreateOptions struct {
	storeOptions
	Role string
	Name string
}

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage registry API tokens"}
	var opts tokenCreateOptions
	create := &cobra.Command{
		Use:   "create --data DIR | --db URL --role ROLE",
		Short: "Create an API token directly in the registry database",
		Long: `Create an API token by writing to the registry's database directly (for
bootstrapping: whoever can write the database is an administrator). Roles:
viewer (read), publisher (register models, versions, datasets), approver
(move aliases), deployer (read; report deployments: custody exec --server),
admin (everything, including tokens), ingester (log predictions and labels
only).

The token is printed once, as the last line of output; only its SHA-256 is
stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenCreate(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.storeOptions.AddFlags(create.Flags())
	create.Flags().StringVar(&opts.Role, "role", "", "viewer, publisher, approver, deployer, admin or ingester (required)")
	create.Flags().StringVar(&opts.Name, "name", "", "a label for the token (who or what uses it)")
	cmd.AddCommand(create)
	return cmd
}

func runTokenCreate(ctx context.Context, stdout io.Writer, opts tokenCreateOptions) error {
	role, err := registry.ParseRole(opts.Role)
	if err != nil {
		return usagef("--role: %v", err)
	}
	st, err := opts.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// Written straight into the database, but logged all the same.
	svc := registry.New(st, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}}})
	plain, tok, err := svc.CreateToken(ctx, registry.Actor{Name: "local:token-create", Role: registry.RoleAdmin}, role, opts.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created token %s with role %s (shown once, store it now)\n", tok.ID, tok.Role)
	_, err = fmt.Fprintln(stdout, plain)
	return err
}
