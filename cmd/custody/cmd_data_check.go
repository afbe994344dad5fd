package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/contract"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
	"github.com/spf13/cobra"
)

type dataCheckOptions struct {
	Contract         string
	Suite            string
	Dataset          string
	Format           string
	Out              string
	JSON             bool
	MaxExamples      int
	UniqueCap        int
	SampleCap        int
	MaxLineBytes     sizeFlag
	AllowUnsupported bool
}

func (o *dataCheckOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Contract, "contract", "", "data contract (YAML, docs/data.md)")
	f.StringVar(&o.Suite, "suite", "", "Great Expectations expectation suite (JSON)")
	f.StringVar(&o.Dataset, "dataset", "", "the dataset (file or directory) the DATA files belong to: its digest and DVC hash are recorded so the evidence can be attached to its registry version; without DATA, every CSV, JSONL and Parquet file in it is checked")
	f.StringVar(&o.Format, "format", "", "input format: csv, jsonl or parquet (default: the contract's, else from the file extension)")
	f.StringVar(&o.Out, "out", "", "write the results as JSON to this file (the evidence to sign)")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.IntVar(&o.MaxExamples, "max-examples", 0, "failing values kept per expectation (default: the contract's max_examples, else 5)")
	f.IntVar(&o.UniqueCap, "unique-cap", contract.DefaultLimits.UniqueCap, "distinct values a uniqueness check may hold (8 bytes each)")
	f.IntVar(&o.SampleCap, "sample-cap", contract.DefaultLimits.SampleCap, "values a quantile check holds: exact up to this, sampled past it")
	f.Var(&o.MaxLineBytes, "max-line-bytes", "longest line or CSV record accepted; longer ones are reported and skipped (default 1MiB)")
	f.BoolVar(&o.AllowUnsupported, "allow-unsupported", false, "exit 0 when every supported expectation passes, even if some are unsupported")
}

func newDataCheckCommand() *cobra.Command {
	var opts dataCheckOptions
	cmd := &cobra.Command{
		Use:   "check (--contract FILE | --suite FILE) [--dataset PATH] DATA...",
		Short: "Check CSV, JSONL or Parquet data against a contract or a Great Expectations suite",
		Long: `Check each DATA file, in one streaming pass, against the expectations of a
data contract (--contract, YAML) and/or a Great Expectations expectation suite
(--suite, JSON). Every expectation reports pass, fail, unsupported or error,
with observed values and example failing rows with their line numbers.

Exit status: 0 every expectation passed; 1 some expectation failed (or a row
is malformed); 2 nothing failed but something could not be checked (an
unsupported or invalid expectation, unreadable data), unless
--allow-unsupported and only unsupported expectations are left.

With --dataset PATH the results also name the dataset's pinned digest and
DVC hash (as 'custody dataset register PATH' computes them), and every DATA
file must be one of its files; sign the --out file with 'custody sign' and
attach it with 'custody dataset attach'.

The JSON results (--json, --out) are described in docs/data.md.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDataCheck(cmd.Context(), cmd.OutOrStdout(), opts, args)
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

// specRef identifies the contract or suite the results were checked against.
type specRef struct {
	Path   string        `json:"path"`
	SHA256 digest.Digest `json:"sha256"`
	Name   string        `json:"name,omitempty"`
}

// inputReport is one DATA file's results.
type inputReport struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	// SHA256 is the file's plain SHA-256, the digest 'custody data hash'
	// pins for a single file.
	SHA256  digest.Digest `json:"sha256"`
	Size    int64         `json:"size"`
	Outcome string        `json:"outcome"`
	contract.Report
}

type checkSummary struct {
	Expectations int `json:"expectations"`
	Pass         int `json:"pass"`
	Fail         int `json:"fail"`
	Unsupported  int `json:"unsupported"`
	Error        int `json:"error"`
}

// toolRef names the program that produced the results.
type toolRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// datasetRef binds the results to a dataset's exact bytes.
type datasetRef struct {
	Path   string        `json:"path"`
	Kind   digest.Kind   `json:"kind"`
	Digest digest.Digest `json:"digest"`
	DVCMD5 string        `json:"dvc_md5"`
	Files  int           `json:"files"`
}

// checkReport is the evidence document (docs/data.md, schema
// "custody.data.check/v1").
type checkReport struct {
	Schema    string        `json:"schema"`
	Outcome   string        `json:"outcome"`
	Tool      toolRef       `json:"tool"`
	CheckedAt time.Time     `json:"checked_at"`
	Dataset   *datasetRef   `json:"dataset,omitempty"`
	Contract  *specRef      `json:"contract,omitempty"`
	Suite     *specRef      `json:"suite,omitempty"`
	Summary   checkSummary  `json:"summary"`
	Inputs    []inputReport `json:"inputs"`
}

const checkSchema = "custody.data.check/v1"

// maxLineCap bounds --max-line-bytes: the line buffer is allocated up front.
const maxLineCap = 1 << 30

func readSpecFile(path string) ([]byte, digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, digest.Digest{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, contract.MaxSpecBytes+1))
	if err != nil {
		return nil, digest.Digest{}, err
	}
	return b, digest.Digest(sha256.Sum256(b)), nil
}

func runDataCheck(ctx context.Context, stdout io.Writer, opts dataCheckOptions, args []string) error {
	if opts.Contract == "" && opts.Suite == "" {
		return usagef("data check: give --contract or --suite")
	}
	switch opts.Format {
	case "", "csv", "jsonl", "parquet":
	default:
		return usagef("data check: --format must be csv, jsonl or parquet")
	}
	if opts.MaxLineBytes > maxLineCap {
		return usagef("data check: --max-line-bytes must be at most 1GiB")
	}
	if opts.MaxExamples < 0 || opts.MaxExamples > 1000 {
		return usagef("data check: --max-examples must be in 0..1000")
	}
	checkedAt, err := checkTime()
	if err != nil {
		return err
	}
	rep := &checkReport{Schema: checkSchema, Tool: toolRef{Name: "custody", Version: versionString()}, CheckedAt: checkedAt}
	var dsFiles map[string]bool
	if opts.Dataset != "" {
		body, err := hashDataset(ctx, opts.Dataset)
		if err != nil {
			return err
		}
		rep.Dataset = &datasetRef{Path: opts.Dataset, Kind: body.Kind, Digest: body.Digest, DVCMD5: body.DVCMD5, Files: len(body.Files)}
		dsFiles = map[string]bool{}
		for _, f := range body.Files {
			dsFiles["sha256:"+f.SHA256] = true
		}
		if len(args) == 0 {
			args = datasetDataFiles(opts.Dataset, body.Kind, body.Files)
			if len(args) == 0 {
				return usagef("data check: the dataset %s has no CSV, JSONL or Parquet file; name the DATA files", opts.Dataset)
			}
		}
	} else if len(args) == 0 {
		return usagef("data check: name the DATA files (or --dataset)")
	}
	var exps []contract.Expectation
	var con *contract.Contract
	specDir := "."
	if opts.Contract != "" {
		b, sum, err := readSpecFile(opts.Contract)
		if err != nil {
			return err
		}
		con, err = contract.ParseContract(bytesReader(b), filepath.Base(opts.Contract))
		if err != nil {
			return err
		}
		rep.Contract = &specRef{Path: opts.Contract, SHA256: sum, Name: con.Name}
		exps = append(exps, con.Expectations...)
		specDir = filepath.Dir(opts.Contract)
	}
	if opts.Suite != "" {
		b, sum, err := readSpecFile(opts.Suite)
		if err != nil {
			return err
		}
		s, err := contract.ParseSuite(bytesReader(b), filepath.Base(opts.Suite))
		if err != nil {
			return err
		}
		rep.Suite = &specRef{Path: opts.Suite, SHA256: sum, Name: s.Name}
		exps = append(exps, s.Expectations...)
	}
	lim := contract.Limits{MaxExamples: opts.MaxExamples, UniqueCap: opts.UniqueCap, SampleCap: opts.SampleCap}
	if lim.MaxExamples == 0 && con != nil {
		lim.MaxExamples = con.MaxExamples
		if lim.MaxExamples == 0 {
			lim.MaxExamples = -1
		}
	}
	copts := contract.CheckOptions{
		Limits: lim,
		LoadReference: func(p string) (map[string]any, error) {
			if !filepath.IsAbs(p) {
				p = filepath.Join(specDir, p)
			}
			b, _, err := readSpecFile(p)
			if err != nil {
				return nil, err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, err
			}
			return m, nil
		},
	}
	for _, path := range args {
		in, err := checkInput(ctx, path, opts, con, exps, copts)
		if err != nil {
			return err
		}
		if dsFiles != nil && !dsFiles[in.SHA256.String()] {
			return fmt.Errorf("data check: %s (%s) is not a file of the dataset %s", path, in.SHA256, opts.Dataset)
		}
		rep.Inputs = append(rep.Inputs, *in)
	}
	var all []contract.Result
	for _, in := range rep.Inputs {
		for _, r := range in.Results {
			all = append(all, r)
			rep.Summary.Expectations++
			switch r.Status {
			case contract.StatusPass:
				rep.Summary.Pass++
			case contract.StatusFail:
				rep.Summary.Fail++
			case contract.StatusUnsupported:
				rep.Summary.Unsupported++
			case contract.StatusError:
				rep.Summary.Error++
			}
		}
	}
	rep.Outcome = contract.Outcome(all)
	var out io.Writer
	if opts.JSON {
		out = stdout
	}
	if opts.Out != "" || opts.JSON {
		if err := writeJSON(out, opts.Out, rep); err != nil {
			return err
		}
	}
	if !opts.JSON {
		printCheck(stdout, rep)
	}
	switch {
	case rep.Outcome == "fail":
		return notHold(fmt.Errorf("data contract does not hold: %d of %d expectations failed", rep.Summary.Fail, rep.Summary.Expectations))
	case rep.Summary.Error > 0:
		return fmt.Errorf("data contract could not be checked: %d expectation(s) in error", rep.Summary.Error)
	case rep.Summary.Unsupported > 0 && !opts.AllowUnsupported:
		return fmt.Errorf("data contract could not be fully checked: %d unsupported expectation(s) (--allow-unsupported to accept)", rep.Summary.Unsupported)
	}
	return nil
}

// checkTime is now, or SOURCE_DATE_EPOCH (Unix seconds) when set, for
// reproducible results.
func checkTime() (time.Time, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, usagef("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}

// datasetDataFiles lists the dataset's files whose extension names a
// format data check reads, in the dataset's (sorted) order.
func datasetDataFiles(root string, kind digest.Kind, files []store.DatasetFile) []string {
	var out []string
	for _, f := range files {
		switch strings.ToLower(filepath.Ext(f.Path)) {
		case ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq":
		default:
			continue
		}
		if kind == digest.KindFile {
			out = append(out, root)
		} else {
			out = append(out, filepath.Join(root, filepath.FromSlash(f.Path)))
		}
	}
	return out
}

func inputFormat(path string, opts dataCheckOptions, con *contract.Contract) (string, error) {
	if opts.Format != "" {
		return opts.Format, nil
	}
	if con != nil && con.Format != "" {
		return con.Format, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".parquet", ".pq":
		return "parquet", nil
	}
	return "", usagef("data check: cannot tell the format of %s from its extension; use --format", path)
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func checkInput(ctx context.Context, path string, opts dataCheckOptions, con *contract.Contract, exps []contract.Expectation, copts contract.CheckOptions) (*inputReport, error) {
	format, err := inputFormat(path, opts, con)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	in := &inputReport{Path: path, Format: format}
	var co contract.CSVOptions
	if con != nil {
		co = con.CSV
	}
	src, hr, err := openSource(f, fi.Size(), path, format, co, int(opts.MaxLineBytes))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	r, err := contract.Check(ctx, src, exps, copts)
	if err != nil {
		return nil, fmt.Errorf("failed to check %s: %w", path, err)
	}
	in.Report = *r
	in.Outcome = contract.Outcome(r.Results)
	if hr != nil {
		// Whatever the reader left unread (nothing, normally) is hashed too.
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return nil, err
		}
		in.SHA256 = digest.Digest(hr.h.Sum(nil))
		in.Size = hr.n
	} else {
		// Parquet is read out of order, so it is hashed in a second pass;
		// a file that changed in between is an error, not evidence.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if n != fi.Size() || !os.SameFile(fi, after) || after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
			return nil, fmt.Errorf("%s changed while it was checked", path)
		}
		in.SHA256, in.Size = digest.Digest(h.Sum(nil)), n
	}
	return in, nil
}

// openSource returns a Source over f. For CSV and JSONL, the returned
// hashingReader sees every byte read; for Parquet it is nil.
func openSource(f *os.File, size int64, path, format string, co contract.CSVOptions, maxLine int) (contract.Source, *hashingReader, error) {
	if format == "parquet" {
		src, err := contract.NewParquet(f, size)
		return src, nil, err
	}
	hr := &hashingReader{r: f, h: sha256.New()}
	br := bufio.NewReaderSize(hr, 1<<20)
	if format == "jsonl" {
		src, err := contract.NewJSONL(br, maxLine)
		return src, hr, err
	}
	if co.Comma == 0 && strings.EqualFold(filepath.Ext(path), ".tsv") {
		co.Comma = '\t'
	}
	co.MaxLineBytes = maxLine
	src, err := contract.NewCSV(br, co)
	return src, hr, err
}

func printCheck(w io.Writer, rep *checkReport) {
	for _, in := range rep.Inputs {
		fmt.Fprintf(w, "%s: %s (%d rows, %d malformed; %s)\n", in.Path, in.Outcome, in.Rows, in.MalformedRows, in.SHA256)
		for _, r := range in.Results {
			fmt.Fprintf(w, "  %-11s %s%s", strings.ToUpper(string(r.Status)), r.Type, kwargsText(r.Kwargs))
			if r.Observed != nil {
				b, _ := json.Marshal(r.Observed)
				if len(b) > 120 {
					b = append(b[:117], "..."...)
				}
				fmt.Fprintf(w, " observed=%s", b)
			}
			if r.UnexpectedCount != nil && *r.UnexpectedCount > 0 {
				fmt.Fprintf(w, " unexpected=%d", *r.UnexpectedCount)
				if r.UnexpectedPercent != nil {
					fmt.Fprintf(w, " (%.4g%%)", *r.UnexpectedPercent)
				}
			}
			if r.Detail != "" {
				fmt.Fprintf(w, " -- %s", r.Detail)
			}
			fmt.Fprintln(w)
			for _, e := range r.Examples {
				b, _ := json.Marshal(e.Value)
				fmt.Fprintf(w, "      line %d: %s", e.Line, b)
				if e.Note != "" {
					fmt.Fprintf(w, " (%s)", e.Note)
				}
				fmt.Fprintln(w)
			}
		}
	}
	fmt.Fprintf(w, "outcome: %s (%d pass, %d fail, %d unsupported, %d error)\n", rep.Outcome, rep.Summary.Pass, rep.Summary.Fail, rep.Summary.Unsupported, rep.Summary.Error)
}

func kwargsText(kw map[string]any) string {
	if c, ok := kw["column"].(string); ok {
		return "(" + c + ")"
	}
	return ""
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
