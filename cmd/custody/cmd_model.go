package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/trust"
	"github.com/spf13/cobra"
)

func init() { register(newModelCommand) }

func newModelCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Register and inspect model versions in a registry server"}
	cmd.AddCommand(newModelRegisterCommand(), newModelShowCommand(), newModelListCommand(), newModelUpdateCommand(), newModelStatusCommand())
	return cmd
}

type modelRegisterOptions struct {
	clientOptions
	Version     string
	Model       string
	Sigs        []string
	URI         string
	Format      string
	ScanVerdict string
	Run         string
	EnvLock     string
	Datasets    []string
	Ignore      []string
	JSON        bool
}

func newModelRegisterCommand() *cobra.Command {
	var opts modelRegisterOptions
	cmd := &cobra.Command{
		Use:   "register NAME --version V --model PATH --sig SIG",
		Short: "Register an immutable, signed model version",
		Long: `Hash the model at --model (with the serialization recorded in the
signature), and register it as NAME@V with its OMS signature bundles. The
server verifies every signature against its trusted keys.

Registering the same bytes again is a no-op; different bytes under an
existing version are refused (exit 1), as are signatures that do not verify.
--run attaches a training run (JSON: params, metrics, code_repo, code_commit,
image_digest, env_lock, inputs), --env-lock sets its environment lock from a
file (custody env capture --out) and --dataset NAME@VER adds input datasets.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelRegister(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&opts.Version, "version", "", "version label (required)")
	f.StringVar(&opts.Model, "model", "", "model file or directory (required)")
	f.StringArrayVar(&opts.Sigs, "sig", nil, "OMS signature bundle of the model (repeatable, at least one)")
	f.StringVar(&opts.URI, "uri", "", "where the artifact lives (e.g. s3://bucket/key)")
	f.StringVar(&opts.Format, "format", "", "artifact format (e.g. safetensors, gguf, onnx)")
	f.StringVar(&opts.ScanVerdict, "scan-verdict", "", "scan verdict: safe, suspicious, unsafe or unknown")
	f.StringVar(&opts.Run, "run", "", "training run description (JSON file)")
	f.StringVar(&opts.EnvLock, "env-lock", "", "the run's environment lock (custody env capture output); replaces env_lock of --run")
	f.StringArrayVar(&opts.Datasets, "dataset", nil, "input dataset NAME@VERSION (repeatable)")
	f.StringArrayVar(&opts.Ignore, "ignore", nil, "leave this path (relative to the model root) out, in addition to the signature's ignore paths (repeatable)")
	f.BoolVar(&opts.JSON, "json", false, "print the registered version as JSON")
	return cmd
}

func runModelRegister(ctx context.Context, stdout io.Writer, opts modelRegisterOptions, name string) error {
	if err := registry.CheckName(name); err != nil {
		return usagef("%v", err)
	}
	if opts.Version == "" || opts.Model == "" || len(opts.Sigs) == 0 {
		return usagef("--version, --model and --sig are required")
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	body := &api.RegisterBody{URI: opts.URI, Format: opts.Format, ScanVerdict: opts.ScanVerdict}
	var ser *digest.Serialization
	for _, p := range opts.Sigs {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return usagef("--sig %s: not a JSON signature bundle", p)
		}
		body.Signatures = append(body.Signatures, json.RawMessage(b))
		if ser == nil {
			// Hash the model the way it was signed; the server verifies.
			if ser, err = trust.Serialization(b); err != nil {
				return usagef("--sig %s: %v", p, err)
			}
		}
	}
	dopts := digest.Options{}
	if ser != nil {
		if dopts, err = digest.OptionsFor(&digest.Manifest{Serialization: *ser}, dopts); err != nil {
			return err
		}
	}
	dopts.Ignore = append(dopts.Ignore, opts.Ignore...)
	// Signature files inside the model directory are not part of it.
	for _, p := range opts.Sigs {
		if rel, err := filepath.Rel(opts.Model, p); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
			dopts.Ignore = append(dopts.Ignore, filepath.ToSlash(rel))
		}
	}
	m, err := digest.Hash(ctx, opts.Model, dopts)
	if err != nil {
		return err
	}
	body.Manifest = *m
	if opts.Run != "" {
		raw, err := os.ReadFile(opts.Run)
		if err != nil {
			return err
		}
		body.Run = new(registry.RunSpec)
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(body.Run); err != nil {
			return usagef("--run %s: %v", opts.Run, err)
		}
	}
	if opts.EnvLock != "" {
		raw, err := os.ReadFile(opts.EnvLock)
		if err != nil {
			return err
		}
		if !json.Valid(raw) {
			return usagef("--env-lock %s: not JSON", opts.EnvLock)
		}
		if body.Run == nil {
			body.Run = new(registry.RunSpec)
		}
		body.Run.EnvLock = json.RawMessage(raw)
	}
	for _, d := range opts.Datasets {
		n, v, err := refArg(d)
		if err != nil {
			return err
		}
		if body.Run == nil {
			body.Run = new(registry.RunSpec)
		}
		body.Run.Inputs = append(body.Run.Inputs, store.DatasetRef{Name: n, Version: v})
	}
	v, created, err := c.RegisterVersion(ctx, name, opts.Version, body)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, v)
	}
	if created {
		fmt.Fprintf(stdout, "registered %s@%s %s\n", name, opts.Version, v.Manifest.Digest)
	} else {
		fmt.Fprintf(stdout, "already registered with the same bytes: %s@%s %s\n", name, opts.Version, v.Manifest.Digest)
	}
	return nil
}

type modelShowOptions struct {
	clientOptions
	JSON bool
}

func newModelShowCommand() *cobra.Command {
	var opts modelShowOptions
	cmd := &cobra.Command{
		Use:   "show NAME@VERSION",
		Short: "Show a registered model version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelShow(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the version as JSON")
	return cmd
}

func runModelShow(ctx context.Context, stdout io.Writer, opts modelShowOptions, ref string) error {
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	v, err := c.GetVersion(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, v)
	}
	fmt.Fprintf(stdout, "model:     %s@%s\n", v.Model, v.Version)
	fmt.Fprintf(stdout, "digest:    %s\n", v.Manifest.Digest)
	fmt.Fprintf(stdout, "oms_root:  %s\n", v.Manifest.OMSRoot)
	fmt.Fprintf(stdout, "files:     %d\n", len(v.Manifest.Files))
	for _, s := range v.Signatures {
		fmt.Fprintf(stdout, "signed by: %s\n", s.Signer)
	}
	for _, kv := range [][2]string{{"uri", v.URI}, {"format", v.Format}, {"scan", v.ScanVerdict}, {"run", v.RunID}} {
		if kv[1] != "" {
			fmt.Fprintf(stdout, "%-10s %s\n", kv[0]+":", kv[1])
		}
	}
	fmt.Fprintf(stdout, "created:   %s by %s\n", v.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), v.CreatedBy)
	return nil
}

type modelListOptions struct {
	clientOptions
	JSON bool
}

func newModelListCommand() *cobra.Command {
	var opts modelListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered models",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelList(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the models as JSON")
	return cmd
}

func runModelList(ctx context.Context, stdout io.Writer, opts modelListOptions) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	ms, err := c.ListModels(ctx)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, ms)
	}
	for _, m := range ms {
		fmt.Fprintln(stdout, m.Name)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type modelUpdateOptions struct {
	clientOptions
	Description string
	Owners      []string
	Tags        []string
}

func newModelUpdateCommand() *cobra.Command {
	var opts modelUpdateOptions
	cmd := &cobra.Command{
		Use:   "update NAME [--description D] [--owner O]... [--tag T]...",
		Short: "Create a model or replace its description, owners and tags",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelUpdate(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Description, "description", "", "what the model is for")
	cmd.Flags().StringArrayVar(&opts.Owners, "owner", nil, "owner (repeatable)")
	cmd.Flags().StringArrayVar(&opts.Tags, "tag", nil, "tag (repeatable)")
	return cmd
}

func runModelUpdate(ctx context.Context, stdout io.Writer, opts modelUpdateOptions, name string) error {
	if err := registry.CheckName(name); err != nil {
		return usagef("%v", err)
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	m, err := c.PutModel(ctx, name, api.ModelBody{Description: opts.Description, Owners: opts.Owners, Tags: opts.Tags})
	if err != nil {
		return serverError(err)
	}
	return printJSON(stdout, m)
}
