package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/spf13/cobra"
)

func init() { register(newPredictionsCommand) }

func newPredictionsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "predictions", Short: "Log, look up and export predictions (docs/predictions.md)"}
	cmd.AddCommand(newPredictionsIngestCommand(false), newPredictionsIngestCommand(true), newPredictionsGetCommand(), newPredictionsExportCommand())
	return cmd
}

type predictionsIngestOptions struct {
	clientOptions
	JSON bool
}

func newPredictionsIngestCommand(labels bool) *cobra.Command {
	var opts predictionsIngestOptions
	use, short := "ingest FILE", "Send prediction records (NDJSON, or a JSON array) to the server; '-' reads stdin"
	if labels {
		use, short = "label FILE", "Send labels ({\"request_id\", \"label\"} per line, or a JSON array) to the server; '-' reads stdin"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

The records are sent as gzip-compressed NDJSON, 10,000 per request (needs
the ingester or admin role). Exit status 1 if the server rejected any
record; the reasons are printed (indexes count from 0 over the whole file).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPredictionsIngest(cmd.Context(), cmd.OutOrStdout(), opts, args[0], labels)
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the server's answer as JSON")
	return cmd
}

func runPredictionsIngest(ctx context.Context, stdout io.Writer, opts predictionsIngestOptions, path string, labels bool) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	var raw []byte
	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	recs, err := splitRecords(raw)
	if err != nil {
		return usagef("%s: %v", path, err)
	}
	// Sent as gzip-compressed NDJSON in batches the server accepts.
	var rejected []predict.Rejection
	var out any
	var summary string
	pres := &predict.IngestResult{Rejected: []predict.Rejection{}, RequestIDs: []string{}}
	lres := &predict.LabelResult{Rejected: []predict.Rejection{}}
	for off := 0; off < len(recs) || off == 0; off += ingestBatch {
		chunk := recs[off:min(len(recs), off+ingestBatch)]
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		for _, r := range chunk {
			zw.Write(r)
			zw.Write([]byte("\n"))
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if labels {
			res, err := c.IngestLabels(ctx, &z, true, true)
			if err != nil {
				return serverError(err)
			}
			lres.Stored += res.Stored
			for _, r := range res.Rejected {
				r.Index += off
				lres.Rejected = append(lres.Rejected, r)
			}
		} else {
			res, err := c.IngestPredictions(ctx, &z, true, true)
			if err != nil {
				return serverError(err)
			}
			pres.Stored += res.Stored
			pres.Duplicates += res.Duplicates
			pres.RequestIDs = append(pres.RequestIDs, res.RequestIDs...)
			for _, r := range res.Rejected {
				r.Index += off
				pres.Rejected = append(pres.Rejected, r)
			}
		}
		if len(recs) == 0 {
			break
		}
	}
	if labels {
		out, rejected = lres, lres.Rejected
		summary = fmt.Sprintf("stored %d labels, rejected %d", lres.Stored, len(lres.Rejected))
	} else {
		out, rejected = pres, pres.Rejected
		summary = fmt.Sprintf("stored %d, duplicates %d, rejected %d", pres.Stored, pres.Duplicates, len(pres.Rejected))
	}
	if opts.JSON {
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, summary)
		for _, r := range rejected {
			fmt.Fprintf(stdout, "  record %d (%s): %s\n", r.Index, r.RequestID, r.Reason)
		}
	}
	if len(rejected) > 0 {
		return notHold(fmt.Errorf("%d records rejected", len(rejected)))
	}
	return nil
}

// ingestBatch is the number of records per request of `predictions
// ingest` and `label`.
const ingestBatch = 10_000

// splitRecords returns the records of a file: the elements of a JSON
// array, or the non-blank lines of NDJSON (sent as they are: the server
// rejects bad ones one by one).
func splitRecords(raw []byte) ([]json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if bytes.HasPrefix(t, []byte("[")) {
		var recs []json.RawMessage
		if err := json.Unmarshal(t, &recs); err != nil {
			return nil, fmt.Errorf("not a JSON array of records: %v", err)
		}
		for i, r := range recs {
			var c bytes.Buffer
			json.Compact(&c, r)
			recs[i] = c.Bytes()
		}
		return recs, nil
	}
	var recs []json.RawMessage
	for line := range bytes.Lines(t) {
		if l := bytes.TrimSpace(line); len(l) > 0 {
			recs = append(recs, l)
		}
	}
	return recs, nil
}

type predictionsGetOptions struct {
	clientOptions
	JSON bool
}

func newPredictionsGetCommand() *cobra.Command {
	var opts predictionsGetOptions
	cmd := &cobra.Command{
		Use:   "get REQUEST_ID",
		Short: "Show a logged prediction: the record, the model version and its pinned digest and signers, and the aliases at that moment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPredictionsGet(cmd.Context(), cmd.OutOrStdout(), opts, args[0])
		},
	}
	opts.clientOptions.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print everything as JSON")
	return cmd
}

func runPredictionsGet(ctx context.Context, stdout io.Writer, opts predictionsGetOptions, id string) error {
	c, err := opts.client()
	if err != nil {
		return err
	}
	l, err := c.GetPrediction(ctx, id)
	if err != nil {
		return serverError(err)
	}
	if opts.JSON {
		return printJSON(stdout, l)
	}
	r := l.Record
	fmt.Fprintf(stdout, "request_id  %s\nts          %s\nmodel       %s@%s\ndigest      %s\nprediction  %s\n",
		r.RequestID, r.TS.Format(time.RFC3339Nano), r.Model, r.Version, r.Digest, r.Prediction)
	if len(r.Features) > 0 {
		fmt.Fprintf(stdout, "features    %s\n", r.Features)
	}
	if len(r.Segment) > 0 {
		fmt.Fprintf(stdout, "segment     %s\n", r.Segment)
	}
	if r.LatencyMS != nil {
		fmt.Fprintf(stdout, "latency_ms  %g\n", *r.LatencyMS)
	}
	if l.Label != nil {
		fmt.Fprintf(stdout, "label       %s (at %s)\n", l.Label.Label, l.Label.TS.Format(time.RFC3339))
	}
	for _, s := range l.Version.Signatures {
		fmt.Fprintf(stdout, "signed by   %s\n", s.Signer)
	}
	for _, a := range l.Aliases {
		now := ""
		if !a.Current {
			now = " (moved since)"
		}
		fmt.Fprintf(stdout, "alias       %s -> %s since %s%s\n", a.Alias, a.Version, a.Since.Format(time.RFC3339), now)
	}
	return nil
}

type predictionsExportOptions struct {
	storeOptions
	Since, Until string
	Model        string
	Format       string
	Out          string
}

func newPredictionsExportCommand() *cobra.Command {
	var opts predictionsExportOptions
	cmd := &cobra.Command{
		Use:   "export --data DIR | --db URL --since T [--until T] [--model M] --format parquet|ndjson -o FILE",
		Short: "Export logged predictions (with their labels) as Parquet or NDJSON, reading the server's store directly",
		Long: `Export logged predictions with ts in [--since, --until), of one model or of
all, with their labels, reading the prediction store directly (like 'custody
log audit'): DIR/predictions.db, or the PostgreSQL database. It is safe while
the server runs. The file is written atomically (temporary file, fsync,
rename). The Parquet schema is in docs/predictions.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPredictionsExport(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	opts.storeOptions.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&opts.Since, "since", "", "first ts exported (RFC 3339, or a duration like 24h meaning that long ago; required)")
	f.StringVar(&opts.Until, "until", "", "ts at which the export stops (exclusive; default: no end)")
	f.StringVar(&opts.Model, "model", "", "export only this model")
	f.StringVar(&opts.Format, "format", "parquet", "parquet or ndjson")
	f.StringVarP(&opts.Out, "out", "o", "", "output file (required)")
	return cmd
}

func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want RFC 3339 or a duration", flag, s)
	}
	return t, nil
}

func runPredictionsExport(ctx context.Context, stdout io.Writer, opts predictionsExportOptions) error {
	if opts.Since == "" || opts.Out == "" {
		return usagef("--since and -o are required")
	}
	if opts.Format != "parquet" && opts.Format != "ndjson" {
		return usagef("--format must be parquet or ndjson")
	}
	now := time.Now()
	var q predstore.ExportQuery
	var err error
	if q.Since, err = parseWhen("since", opts.Since, now); err != nil {
		return err
	}
	if opts.Until != "" {
		if q.Until, err = parseWhen("until", opts.Until, now); err != nil {
			return err
		}
	}
	q.Model = opts.Model
	st, err := opts.openPredictions(ctx, predsql.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	var n int64
	err = fileutil.WriteAtomic(opts.Out, 0o644, func(w io.Writer) error {
		var err error
		if opts.Format == "parquet" {
			n, err = predict.ExportParquet(ctx, st, q, w)
		} else {
			n, err = predict.ExportNDJSON(ctx, st, q, w)
		}
		return err
	})
	if err != nil {
		return err
	}
	what := "all models"
	if q.Model != "" {
		what = q.Model
	}
	_, err = fmt.Fprintf(stdout, "exported %d predictions of %s to %s (%s)\n", n, what, opts.Out, strings.ToUpper(opts.Format[:1])+opts.Format[1:])
	return err
}
