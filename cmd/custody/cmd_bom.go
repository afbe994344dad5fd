package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/custody-ml/custody/internal/bom"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/spf13/cobra"
)

func init() { register(newBOMCommand) }

type bomOptions struct {
	clientOptions
	Out     string
	Lineage string
}

func newBOMCommand() *cobra.Command {
	var opts bomOptions
	cmd := &cobra.Command{
		Use:   "bom NAME@VERSION [--out F] | bom --lineage LINEAGE.json",
		Short: "Print the CycloneDX 1.6 ML-BOM (AI bill of materials) of a model version",
		Long: `Fetch a model version, its training run, the run's input datasets and the
model's metadata from the registry server and print a CycloneDX 1.6 JSON
ML-BOM: the model (machine-learning-model, with hashes and a model card),
the datasets (data), the environment lock's packages (library, pkg:pypi),
and the training run as the formulation. docs/bom.md maps every field.

--lineage builds the BOM offline from what 'custody lineage --json NAME@V'
printed (no server, no model metadata).

Every BOM is checked against the official CycloneDX 1.6 JSON schema before
it is written. 'custody bom validate FILE' checks any BOM file: exit 0 valid,
1 invalid, 2 unreadable.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBOM(cmd.Context(), cmd.OutOrStdout(), opts, args)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Out, "out", "", "write the BOM to this file (default: standard output)")
	cmd.Flags().StringVar(&opts.Lineage, "lineage", "", "build offline from this 'custody lineage --json' output")
	cmd.AddCommand(newBOMValidateCommand())
	return cmd
}

func runBOM(ctx context.Context, stdout io.Writer, opts bomOptions, args []string) error {
	var in bom.Input
	switch {
	case opts.Lineage != "":
		raw, err := os.ReadFile(opts.Lineage)
		if err != nil {
			return err
		}
		var l registry.Lineage
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return usagef("--lineage %s: %v", opts.Lineage, err)
		}
		if l.Version == nil {
			return usagef("--lineage %s: no version (want 'custody lineage --json NAME@V' output)", opts.Lineage)
		}
		if len(args) == 1 {
			name, version, err := refArg(args[0])
			if err != nil {
				return err
			}
			if name != l.Version.Model || version != l.Version.Version {
				return usagef("--lineage %s describes %s@%s, not %s", opts.Lineage, l.Version.Model, l.Version.Version, args[0])
			}
		}
		in = bom.Input{Version: l.Version, Run: l.Run, Datasets: l.Datasets}
	case len(args) == 1:
		name, version, err := refArg(args[0])
		if err != nil {
			return err
		}
		c, err := opts.client()
		if err != nil {
			return err
		}
		l, err := c.Upstream(ctx, name, version)
		if err != nil {
			return serverError(err)
		}
		m, err := c.GetModel(ctx, name)
		if err != nil {
			return serverError(err)
		}
		in = bom.Input{Model: m, Version: l.Version, Run: l.Run, Datasets: l.Datasets}
	default:
		return usagef("name a model version (NAME@VERSION) or --lineage FILE")
	}
	b, err := bom.Build(in, bom.Options{ToolVersion: versionString()})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := bom.Encode(&buf, b); err != nil {
		return err
	}
	if err := bom.Validate(bytes.NewReader(buf.Bytes())); err != nil {
		// A bug in the mapping, not in the records: never hand it out.
		return fmt.Errorf("refusing to write a BOM that fails the CycloneDX 1.6 schema: %w", err)
	}
	return writeOutput(stdout, opts.Out, buf.Bytes(), fmt.Sprintf("wrote the CycloneDX 1.6 BOM of %s@%s to %s", in.Version.Model, in.Version.Version, opts.Out))
}

func newBOMValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a BOM against the official CycloneDX 1.6 JSON schema (exit 0 valid, 1 invalid, 2 unreadable)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBOMValidate(cmd.OutOrStdout(), args[0])
		},
	}
}

func runBOMValidate(stdout io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := bom.Validate(f); err != nil {
		if errors.Is(err, bom.ErrInvalid) {
			return notHold(fmt.Errorf("%s: %w", path, err))
		}
		return err
	}
	_, err = fmt.Fprintf(stdout, "OK  %s is a valid CycloneDX 1.6 BOM\n", path)
	return err
}
