package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newAliasCommand) }

func newAliasCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "alias", Short: "Move aliases (production, staging, ...) and query their history"}
	cmd.AddCommand(newAliasSetCommand(), newAliasGetCommand(), newAliasHistoryCommand())
	return cmd
}

type aliasSetOptions struct{ clientOptions }

func newAliasSetCommand() *cobra.Command {
	var opts aliasSetOptions
	cmd := &cobra.Command{
		Use:   "set NAME ALIAS VERSION",
		Short: "Point an alias of a model at a version (needs the approver role)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAliasSet(cmd.Context(), cmd.OutOrStdout(), opts, args[0], args[1], args[2])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	return cmd
}

func runAliasSet(ctx context.Context, stdout io.Writer, opts aliasSetOptions, name, alias, version string) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	e, err := c.SetAlias(ctx, name, alias, version)
	if err != nil {
		return serverError(err)
	}
	prev := e.Previous
	if prev == "" {
		prev = "none"
	}
	_, err = fmt.Fprintf(stdout, "%s@%s -> %s (was %s)\n", name, alias, e.Version, prev)
	return err
}

type aliasGetOptions struct {
	clientOptions
	At   string
	JSON bool
}

func newAliasGetCommand() *cobra.Command {
	var opts aliasGetOptions
	cmd := &cobra.Command{
		Use:   "get NAME ALIAS [--at TIME]",
		Short: "Print the version an alias points at, now or at a past time (RFC 3339)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAliasGet(cmd.Context(), cmd.OutOrStdout(), opts, args[0], args[1])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.At, "at", "", "resolve the alias as it was at this time (RFC 3339)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the alias event as JSON")
	return cmd
}

func runAliasGet(ctx context.Context, stdout io.Writer, opts aliasGetOptions, name, alias string) error {
	var at time.Time
	if opts.At != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, opts.At); err != nil {
			return usagef("--at: %v", err)
		}
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	e, err := c.ResolveAlias(ctx, name, alias, at)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, e)
	}
	_, err = fmt.Fprintln(stdout, e.Version)
	return err
}

type aliasHistoryOptions struct {
	clientOptions
	JSON bool
}

func newAliasHistoryCommand() *cobra.Command {
	var opts aliasHistoryOptions
	cmd := &cobra.Command{
		Use:   "history NAME ALIAS",
		Short: "Print every change of an alias, oldest first",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAliasHistory(cmd.Context(), cmd.OutOrStdout(), opts, args[0], args[1])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the history as JSON")
	return cmd
}

func runAliasHistory(ctx context.Context, stdout io.Writer, opts aliasHistoryOptions, name, alias string) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	h, err := c.AliasHistory(ctx, name, alias)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, h)
	}
	for _, e := range h {
		prev, v := e.Previous, e.Version
		if prev == "" {
			prev = "-"
		}
		if v == "" {
			v = "(removed)"
		}
		fmt.Fprintf(stdout, "%s  %s -> %s  by %s\n", e.At.Format(time.RFC3339Nano), prev, v, e.Actor)
	}
	return nil
}
