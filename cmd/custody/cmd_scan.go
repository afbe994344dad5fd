package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/custody-ml/custody/internal/scan"
	"github.com/custody-ml/custody/internal/scan/policy"
	"github.com/spf13/cobra"
)

func init() { register(newScanCommand) }

type scanOptions struct {
	Format string
	Policy string
	Stdin  io.Reader // for the path "-"
	Stdout io.Writer
	Stderr io.Writer
}

func (o *scanOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Format, "format", "text", "output format: text, json or sarif")
	f.StringVar(&o.Policy, "policy", "", "JSON policy file extending the built-in allowlist (see docs/scan.md)")
}

func newScanCommand() *cobra.Command {
	opts := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan PATH... (- for standard input)",
		Short: "Check model files for code that would run when they are loaded, without loading them",
		Long: `Scan files and directories (every regular file, whatever its name) and give each a
verdict: safe, dangerous, unknown or malformed. Exit status: 0 if every file is
safe, 1 if any is not, 2 for usage or I/O errors. See docs/scan.md.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Stdin, opts.Stdout, opts.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runScan(cmd.Context(), opts, args)
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

// scanFileResult is a result, or the I/O error that prevented one.
type scanFileResult struct {
	scan.Result
	Error string `json:"error,omitempty"`
}

// ioError is the result for a file that could not be read: not analysed, so
// malformed, with the error set (the exit code is 2).
func ioError(path string, err error) scanFileResult {
	return scanFileResult{Result: scan.Result{Path: path, Verdict: scan.Malformed, Format: "unread", Findings: []scan.Finding{}}, Error: err.Error()}
}

func runScan(ctx context.Context, opts *scanOptions, args []string) error {
	if len(args) == 0 {
		return usagef("scan: at least one PATH is required")
	}
	switch opts.Format {
	case "text", "json", "sarif":
	default:
		return usagef("scan: unknown --format %q (want text, json or sarif)", opts.Format)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	pol := policy.Default()
	if opts.Policy != "" {
		p, err := policy.Load(opts.Policy)
		if err != nil {
			if errors.Is(err, policy.ErrBadPolicy) {
				return usagef("scan: %v", err)
			}
			return err
		}
		pol = p
	}
	sc := scan.New(pol, scan.Limits{})

	var files []string
	var ioErrs []scanFileResult
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			stdin = true
			continue
		}
		st, err := os.Stat(arg)
		if err != nil {
			ioErrs = append(ioErrs, ioError(arg, err))
			continue
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				ioErrs = append(ioErrs, ioError(p, err))
				return nil
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			} else if d.Type()&fs.ModeSymlink != 0 {
				// Follow links to regular files (a loader would); never
				// descend into linked directories.
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					files = append(files, p)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	results := make([]scanFileResult, 0, len(files)+len(ioErrs))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := sc.ScanFile(ctx, f)
		if err != nil {
			results = append(results, ioError(f, err))
			continue
		}
		results = append(results, scanFileResult{Result: r})
	}
	if stdin {
		in := opts.Stdin
		if in == nil {
			in = os.Stdin
		}
		results = append(results, scanFileResult{Result: sc.ScanReader(ctx, "-", in)})
	}
	results = append(results, ioErrs...)
	sort.SliceStable(results, func(i, j int) bool { return results[i].Path < results[j].Path })

	var err error
	switch opts.Format {
	case "json":
		err = writeScanJSON(opts.Stdout, results)
	case "sarif":
		err = writeScanSARIF(opts.Stdout, results)
	default:
		err = writeScanText(opts.Stdout, results)
	}
	if err != nil {
		return err
	}
	notSafe, failed := 0, 0
	for _, r := range results {
		switch {
		case r.Error != "":
			failed++
			fmt.Fprintf(opts.Stderr, "custody: scan %s: %s\n", r.Path, r.Error)
		case r.Verdict != scan.Safe:
			notSafe++
		}
	}
	if failed > 0 {
		return fmt.Errorf("scan: %d of %d files could not be read", failed, len(results))
	}
	if notSafe > 0 {
		return notHold(fmt.Errorf("scan: %d of %d files are not safe", notSafe, len(results)))
	}
	return nil
}

func writeScanText(w io.Writer, results []scanFileResult) error {
	for _, r := range results {
		if r.Error != "" {
			if _, err := fmt.Fprintf(w, "%s: error: %s\n", r.Path, r.Error); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: %s (%s)\n", printable(r.Path), r.Verdict, r.Format); err != nil {
			return err
		}
		for _, f := range r.Findings {
			where := fmt.Sprintf("offset %d", f.Offset)
			if f.Member != "" {
				where = printable(f.Member) + " " + where
			}
			if _, err := fmt.Fprintf(w, "  %s %s [%s]: %s\n", f.Verdict, f.Rule, where, printable(f.Message)); err != nil {
				return err
			}
		}
		if r.Suppressed > 0 {
			if _, err := fmt.Fprintf(w, "  ... %d more findings\n", r.Suppressed); err != nil {
				return err
			}
		}
	}
	return nil
}

// printable escapes control characters (terminal escape sequences in
// attacker-chosen member names) for text output.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func writeScanJSON(w io.Writer, results []scanFileResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Files []scanFileResult `json:"files"`
	}{results})
}

// SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html):
// one run, one result per finding that affects a verdict, level "error" for
// dangerous and malformed, "warning" for unknown.
func writeScanSARIF(w io.Writer, results []scanFileResult) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID   string `json:"id"`
		Desc msg    `json:"shortDescription"`
	}
	type region struct {
		ByteOffset int64 `json:"byteOffset"`
	}
	type physical struct {
		Artifact struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region *region `json:"region,omitempty"`
	}
	type logical struct {
		FQN  string `json:"fullyQualifiedName"`
		Kind string `json:"kind"`
	}
	type location struct {
		Physical physical  `json:"physicalLocation"`
		Logical  []logical `json:"logicalLocations,omitempty"`
	}
	type result struct {
		RuleID     string         `json:"ruleId"`
		Level      string         `json:"level"`
		Message    msg            `json:"message"`
		Locations  []location     `json:"locations"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	rules := map[string]bool{}
	var out []result
	for _, r := range results {
		add := func(id, level, text string, f *scan.Finding) {
			rules[id] = true
			var loc location
			loc.Physical.Artifact.URI = filepath.ToSlash(r.Path)
			props := map[string]any{"fileVerdict": r.Verdict.String()}
			if f != nil {
				if f.Member == "" {
					loc.Physical.Region = &region{ByteOffset: f.Offset}
				} else {
					loc.Logical = []logical{{FQN: f.Member, Kind: "resource"}}
					props["memberOffset"] = f.Offset
				}
				if f.Module != "" || f.Name != "" {
					props["global"] = f.Module + "." + f.Name
				}
			}
			out = append(out, result{RuleID: id, Level: level, Message: msg{text}, Locations: []location{loc}, Properties: props})
		}
		if r.Error != "" {
			add("io/error", "error", r.Error, nil)
			continue
		}
		for i := range r.Findings {
			f := &r.Findings[i]
			level := "error"
			switch f.Verdict {
			case scan.Safe:
				continue
			case scan.Unknown:
				level = "warning"
			}
			add(f.Rule, level, fmt.Sprintf("%s: %s", f.Verdict, f.Message), f)
		}
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	driverRules := make([]rule, 0, len(ids))
	for _, id := range ids {
		driverRules = append(driverRules, rule{ID: id, Desc: msg{id}})
	}
	if out == nil {
		out = []result{}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "custody-scan", "informationUri": "https://github.com/custody-ml/custody",
				"rules": driverRules,
			}},
			"results": out,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
