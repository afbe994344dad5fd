package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/custody-ml/custody/internal/api"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/dvc"
	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/spf13/cobra"
)

func init() { register(newDatasetCommand) }

func newDatasetCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dataset", Short: "Register datasets in a registry server"}
	cmd.AddCommand(newDatasetRegisterCommand())
	return cmd
}

type datasetRegisterOptions struct {
	clientOptions
	Version string
	Source  string
	Rows    int64
	JSON    bool
}

func newDatasetRegisterCommand() *cobra.Command {
	var opts datasetRegisterOptions
	cmd := &cobra.Command{
		Use:   "register NAME --version V PATH",
		Short: "Hash a dataset (SHA-256 and DVC md5) and register it",
		Long: `Hash the dataset at PATH (a file or a directory): every file's SHA-256 and
MD5, the custody digest (as custody hash computes it) and the DVC hash (the
file's md5, or the "<md5>.dir" hash of a directory, so DVC-tracked data links
in), and register it as NAME@V. Dataset versions are immutable: the same
content again is a no-op, different content is refused (exit 1).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetRegister(cmd.Context(), cmd.OutOrStdout(), opts, args[0], args[1])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.Version, "version", "", "version label (required)")
	cmd.Flags().StringVar(&opts.Source, "source", "", "where the dataset comes from (URI)")
	cmd.Flags().Int64Var(&opts.Rows, "rows", -1, "number of rows, if known")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the registered dataset as JSON")
	return cmd
}

// hashDataset computes the dataset body for path: SHA-256 through
// digest.Hash (which refuses symlinks, special files and files that change
// while hashed), then each file's MD5 for DVC.
func hashDataset(ctx context.Context, path string) (*api.DatasetBody, error) {
	m, err := digest.Hash(ctx, path, digest.Options{})
	if err != nil {
		return nil, err
	}
	body := &api.DatasetBody{Kind: m.Kind, Digest: m.Digest}
	sums := map[string]string{}
	for _, r := range m.Resources {
		sums[r.Name] = r.Digest
	}
	open := func(name string) (io.ReadCloser, error) { return os.Open(path) }
	if m.Kind == digest.KindDirectory {
		root, err := os.OpenRoot(path)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		open = func(name string) (io.ReadCloser, error) { return root.Open(name) }
	}
	var entries []dvc.Entry
	for _, f := range m.Files {
		rc, err := open(f.Name)
		if err != nil {
			return nil, err
		}
		md5, n, err := dvc.MD5(rc, dvc.AlgMD5)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("failed to hash %s: %w", f.Name, err)
		}
		if n != f.Size {
			return nil, fmt.Errorf("%w: %s changed size while hashing", digest.ErrChanged, f.Name)
		}
		body.Files = append(body.Files, store.DatasetFile{Path: f.Name, Size: f.Size, SHA256: sums[f.Name], MD5: md5})
		entries = append(entries, dvc.Entry{RelPath: f.Name, MD5: md5, Size: f.Size})
	}
	if m.Kind == digest.KindFile {
		body.DVCMD5 = body.Files[0].MD5
	} else {
		body.DVCMD5 = dvc.DirHash(entries)
	}
	return body, nil
}

func runDatasetRegister(ctx context.Context, stdout io.Writer, opts datasetRegisterOptions, name, path string) error {
	if err := registry.CheckName(name); err != nil {
		return usagef("%v", err)
	}
	if opts.Version == "" {
		return usagef("--version is required")
	}
	c, err := opts.client()
	if err != nil {
		return err
	}
	body, err := hashDataset(ctx, path)
	if err != nil {
		return err
	}
	body.SourceURI = opts.Source
	if opts.Rows >= 0 {
		body.Rows = &opts.Rows
	}
	d, created, err := c.RegisterDataset(ctx, name, opts.Version, body)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, d)
	}
	verb := "registered"
	if !created {
		verb = "already registered with the same content:"
	}
	_, err = fmt.Fprintf(stdout, "%s %s@%s %s dvc:%s\n", verb, name, opts.Version, d.Digest, d.DVCMD5)
	return err
}
