package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	cmd.AddCommand(newDatasetRegisterCommand(), newDatasetAttachCommand(), newDatasetShowCommand())
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

type datasetAttachOptions struct {
	clientOptions
	Evidence string
	Sig      string
	JSON     bool
}

func (o *datasetAttachOptions) AddFlags(cmd *cobra.Command) {
	o.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Evidence, "evidence", "", "data-contract results JSON ('custody data check --dataset PATH --out FILE')")
	cmd.Flags().StringVar(&o.Sig, "sig", "", "signature bundle over the results file ('custody sign FILE --sig SIG')")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the stored evidence record as JSON")
}

func newDatasetAttachCommand() *cobra.Command {
	var opts datasetAttachOptions
	cmd := &cobra.Command{
		Use:   "attach NAME@VERSION --evidence RESULT.json --sig RESULT.sig",
		Short: "Attach signed data-contract results to a registered dataset version",
		Long: `Send a data-contract result ('custody data check --dataset PATH --out
RESULT.json') and its signature ('custody sign RESULT.json --key K --sig SIG')
to the registry. The server attaches it only if the signature verifies
against its trusted keys over exactly these bytes, and the result names the
dataset version's digest (and DVC hash) and only files of that version;
otherwise it is refused (exit 1). Attaching the same result again is a no-op.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetAttach(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runDatasetAttach(ctx context.Context, stdout io.Writer, opts datasetAttachOptions, ref string) error {
	if opts.Evidence == "" || opts.Sig == "" {
		return usagef("--evidence and --sig are required")
	}
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	doc, err := readCapped(opts.Evidence, registry.MaxEvidenceSize)
	if err != nil {
		return err
	}
	sig, err := readCapped(opts.Sig, registry.MaxBundleSize)
	if err != nil {
		return err
	}
	e, created, err := c.AttachEvidence(ctx, name, version, &api.EvidenceBody{Name: filepath.Base(opts.Evidence), Document: doc, Signature: sig})
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, e)
	}
	verb := "attached"
	if !created {
		verb = "already attached:"
	}
	_, err = fmt.Fprintf(stdout, "%s evidence %s to %s@%s: contract %q %s (%d of %d expectations failed), signed by %s\n",
		verb, e.Digest, name, version, e.Contract, e.Outcome, e.Failed, e.Expectations, e.Signature.Signer)
	return err
}

type datasetShowOptions struct {
	clientOptions
	JSON bool
}

func newDatasetShowCommand() *cobra.Command {
	var opts datasetShowOptions
	cmd := &cobra.Command{
		Use:   "show NAME@VERSION",
		Short: "Show a registered dataset version and its attached contract evidence",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatasetShow(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON: {dataset, evidence: [summaries]}")
	return cmd
}

// evidenceSummary is what `dataset show` prints of an evidence record (the
// document itself is served by GET .../evidence).
type evidenceSummary struct {
	Digest       digest.Digest `json:"digest"`
	Name         string        `json:"name"`
	Contract     string        `json:"contract"`
	Outcome      string        `json:"outcome"`
	Passed       bool          `json:"passed"`
	Expectations int           `json:"expectations"`
	Failed       int           `json:"failed"`
	Signer       string        `json:"signer"`
	ToolVersion  string        `json:"tool_version,omitempty"`
	CheckedAt    string        `json:"checked_at"`
	CreatedBy    string        `json:"created_by"`
}

func runDatasetShow(ctx context.Context, stdout io.Writer, opts datasetShowOptions, ref string) error {
	name, version, c, err := opts.refClient(ref)
	if err != nil {
		return err
	}
	d, err := c.GetDataset(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	evs, err := c.ListEvidence(ctx, name, version)
	if err != nil {
		return serverError(err)
	}
	sums := make([]evidenceSummary, len(evs))
	for i, e := range evs {
		sums[i] = evidenceSummary{Digest: e.Digest, Name: e.Name, Contract: e.Contract, Outcome: e.Outcome, Passed: e.Outcome == "pass",
			Expectations: e.Expectations, Failed: e.Failed, Signer: e.Signature.Signer, ToolVersion: e.ToolVersion,
			CheckedAt: e.CheckedAt.Format("2006-01-02T15:04:05Z07:00"), CreatedBy: e.CreatedBy}
	}
	if opts.JSON {
		return printJSON(stdout, map[string]any{"dataset": d, "evidence": sums})
	}
	rows := "unknown"
	if d.Rows != nil {
		rows = fmt.Sprint(*d.Rows)
	}
	fmt.Fprintf(stdout, "dataset:   %s@%s\ndigest:    %s\ndvc_md5:   %s\nsize:      %d bytes in %d files\nrows:      %s\n",
		d.Name, d.Version, d.Digest, d.DVCMD5, d.Size, len(d.Files), rows)
	if d.SourceURI != "" {
		fmt.Fprintf(stdout, "source:    %s\n", d.SourceURI)
	}
	fmt.Fprintf(stdout, "created:   %s by %s\n", d.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), d.CreatedBy)
	fmt.Fprintf(stdout, "evidence:  %d\n", len(sums))
	for _, s := range sums {
		verdict := "FAILED"
		if s.Passed {
			verdict = "passed"
		} else if s.Outcome == "incomplete" {
			verdict = "incomplete"
		}
		fmt.Fprintf(stdout, "  contract %q %s (%d of %d expectations failed) signed by %s, checked %s, %s\n",
			s.Contract, verdict, s.Failed, s.Expectations, s.Signer, s.CheckedAt, s.Digest)
	}
	return nil
}
