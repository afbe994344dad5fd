package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/dvc"
	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/spf13/cobra"
)

func init() { register(newDataCommand) }

func newDataCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Hash datasets (SHA-256 and DVC md5), read DVC files, check data contracts",
		Long: `Data lineage and data contracts, offline.

  custody data hash PATH            SHA-256 manifest, pinned digest and DVC md5 / .dir hash
  custody data import-dvc FILE      the data versions a .dvc file or dvc.lock records
  custody data check DATA...        check data against a contract or a GE suite
  custody data profile DATA         a column's reference distribution for PSI

See docs/data.md.`,
	}
	cmd.AddCommand(newDataHashCommand(), newDataImportDVCCommand(), newDataCheckCommand(), newDataProfileCommand())
	return cmd
}

type dataHashOptions struct {
	manifestOptions
	JSON      bool
	DVCLegacy bool
}

func newDataHashCommand() *cobra.Command {
	var opts dataHashOptions
	cmd := &cobra.Command{
		Use:   "hash PATH",
		Short: "Hash a dataset: SHA-256 manifest, pinned digest, DVC md5 and .dir hash",
		Long: `Hash a dataset (a file or a directory) two ways:

  - the SHA-256 manifest and pinned digest, with the same rules as
    'custody hash' (docs/manifest.md);
  - DVC's md5 of every file and, for a directory, DVC's ".dir" hash, the
    values 'dvc add' writes (DVC 3.x; --dvc-legacy for DVC 2.x md5-dos2unix).

Prints "digest" and "dvc_md5" lines, or everything with --json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDataHash(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.manifestOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the dataset manifest as JSON")
	cmd.Flags().BoolVar(&opts.DVCLegacy, "dvc-legacy", false, "compute DVC 2.x md5 (md5-dos2unix: CRLF normalised in text files)")
	return cmd
}

// dataFile is one file of a dataset manifest.
type dataFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	MD5    string `json:"md5,omitempty"`
}

// dataManifest is what 'custody data hash --json' prints (docs/data.md).
type dataManifest struct {
	Path   string        `json:"path"`
	Kind   digest.Kind   `json:"kind"`
	Digest digest.Digest `json:"digest"`
	// MD5 is set for a single file, DVCMD5 for a directory.
	MD5      string           `json:"md5,omitempty"`
	DVCMD5   string           `json:"dvc_md5,omitempty"`
	DVC      *dvc.Result      `json:"dvc"`
	Files    []dataFile       `json:"files"`
	Manifest *digest.Manifest `json:"manifest"`
}

func runDataHash(ctx context.Context, stdout io.Writer, opts dataHashOptions, path string) error {
	m, err := digest.Hash(ctx, path, opts.digestOptions())
	if err != nil {
		if errors.Is(err, digest.ErrBadOptions) {
			return &usageError{msg: err.Error()}
		}
		if errors.Is(err, digest.ErrRefused) || errors.Is(err, digest.ErrChanged) || errors.Is(err, digest.ErrEmptyModel) {
			return notHold(err)
		}
		return err
	}
	alg := dvc.AlgMD5
	if opts.DVCLegacy {
		alg = dvc.AlgMD5Dos2Unix
	}
	d, err := dvc.Hash(ctx, path, dvc.Options{Algorithm: alg, AllowSymlinks: opts.AllowSymlinks, Workers: opts.Workers})
	if err != nil {
		if errors.Is(err, dvc.ErrSymlink) {
			return notHold(err)
		}
		return err
	}
	out := &dataManifest{Path: path, Kind: m.Kind, Digest: m.Digest, DVC: d, Manifest: m}
	files := map[string]*dataFile{}
	for _, f := range m.Files {
		files[f.Name] = &dataFile{Name: f.Name, Size: f.Size}
	}
	if m.Serialization.Method == digest.MethodFiles {
		for _, r := range m.Resources {
			if f, ok := files[r.Name]; ok {
				f.SHA256 = r.Digest
			}
		}
	}
	if d.IsDir {
		out.DVCMD5 = d.Hash
		for _, e := range d.Files {
			f, ok := files[e.RelPath]
			if !ok {
				f = &dataFile{Name: e.RelPath, Size: e.Size}
				files[e.RelPath] = f
			}
			f.MD5 = e.MD5
		}
	} else {
		out.MD5 = d.Hash
		for _, f := range files {
			f.MD5 = d.Hash
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out.Files = append(out.Files, *files[n])
	}
	if opts.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	md5Key := "md5"
	if d.IsDir {
		md5Key = "dvc_md5"
	}
	_, err = fmt.Fprintf(stdout, "digest   %s  %s\n%-8s %s  %s\n", m.Digest, path, md5Key, d.Hash, path)
	return err
}

type importDVCOptions struct {
	Verify        bool
	AllowSymlinks bool
	Out           string
}

func newDataImportDVCCommand() *cobra.Command {
	var opts importDVCOptions
	cmd := &cobra.Command{
		Use:   "import-dvc FILE.dvc|dvc.lock",
		Short: "Read the data versions a .dvc file or dvc.lock records",
		Long: `Read a .dvc file or a dvc.lock and print, as JSON, the data versions it
records (path, md5 or .dir hash, hash algorithm, size, nfiles; for dvc.lock
the stage and whether it is a dep or an out).

With --verify, every local path that exists beside the file is hashed the
way DVC hashes it and compared: a mismatch exits 1; missing data and remote
URLs are reported and skipped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImportDVC(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	cmd.Flags().BoolVar(&opts.Verify, "verify", false, "hash the data on disk and compare it with the recorded versions")
	cmd.Flags().BoolVar(&opts.AllowSymlinks, "allow-symlinks", false, "follow symbolic links to files when verifying")
	cmd.Flags().StringVar(&opts.Out, "out", "", "also write the JSON to this file")
	return cmd
}

type importedVersion struct {
	dvc.Version
	Check *dvc.Check `json:"verify,omitempty"`
}

type importResult struct {
	Source   string            `json:"source"`
	SHA256   digest.Digest     `json:"sha256"`
	Versions []importedVersion `json:"versions"`
	// Verified is set with --verify: true when nothing mismatched.
	Verified *bool `json:"verified,omitempty"`
}

func runImportDVC(ctx context.Context, stdout io.Writer, opts importDVCOptions, path string) error {
	m, err := digest.Hash(ctx, path, digest.Options{})
	if err != nil {
		return err
	}
	vs, err := dvc.ParseFile(path)
	if err != nil {
		return err
	}
	res := &importResult{Source: path, SHA256: m.Digest}
	mismatches := 0
	for i := range vs {
		iv := importedVersion{Version: vs[i]}
		if opts.Verify {
			c, err := dvc.Verify(ctx, filepath.Dir(path), &vs[i], dvc.Options{AllowSymlinks: opts.AllowSymlinks})
			if err != nil {
				return err
			}
			if c.Status == dvc.StatusMismatch {
				mismatches++
			}
			iv.Check = c
		}
		res.Versions = append(res.Versions, iv)
	}
	if opts.Verify {
		ok := mismatches == 0
		res.Verified = &ok
	}
	if err := writeJSON(stdout, opts.Out, res); err != nil {
		return err
	}
	if mismatches > 0 {
		return notHold(fmt.Errorf("%d data version(s) do not match %s", mismatches, path))
	}
	return nil
}

// writeJSON prints v as indented JSON to stdout and, when out is set, writes
// the same bytes atomically and durably to out (fileutil.WriteFileAtomic).
func writeJSON(stdout io.Writer, out string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out != "" {
		if err := fileutil.WriteFileAtomic(out, b, 0o644); err != nil {
			return err
		}
	}
	if stdout != nil {
		_, err = stdout.Write(b)
	}
	return err
}
