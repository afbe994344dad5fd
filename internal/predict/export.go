package predict

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/parquet-go/parquet-go"
)

// ExportRow is one exported record: the Parquet schema (columns in this
// order) and the NDJSON object. JSON-valued fields (features, prediction,
// segment, label) are JSON text in Parquet; score is the numeric view of
// the prediction (see [Score]).
type ExportRow struct {
	TS          int64    `parquet:"ts,timestamp(nanosecond)" json:"-"`
	RequestID   string   `parquet:"request_id" json:"request_id"`
	Model       string   `parquet:"model,dict" json:"model"`
	Version     string   `parquet:"version,dict" json:"version"`
	ModelSHA256 string   `parquet:"model_sha256,dict" json:"model_sha256"`
	Features    string   `parquet:"features,json" json:"-"`
	Prediction  string   `parquet:"prediction,json" json:"-"`
	Score       *float64 `parquet:"score,optional" json:"score,omitempty"`
	Segment     string   `parquet:"segment,json" json:"-"`
	LatencyMS   *float64 `parquet:"latency_ms,optional" json:"latency_ms,omitempty"`
	Label       *string  `parquet:"label,optional" json:"-"`
	LabelTS     *int64   `parquet:"label_ts,optional,timestamp(nanosecond)" json:"-"`
}

func exportRow(r *predstore.Record, l *predstore.Label) ExportRow {
	row := ExportRow{
		TS: r.TS.UnixNano(), RequestID: r.RequestID, Model: r.Model, Version: r.Version, ModelSHA256: r.Digest,
		Features: orEmpty(r.Features), Prediction: string(r.Prediction), Segment: orEmpty(r.Segment), LatencyMS: r.LatencyMS,
	}
	if s, ok := Score(r.Prediction); ok {
		row.Score = &s
	}
	if l != nil {
		lab, ts := string(l.Label), l.TS.UnixNano()
		row.Label, row.LabelTS = &lab, &ts
	}
	return row
}

func orEmpty(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

// ExportParquet writes the records matching q to w as one Parquet file
// (schema [ExportRow], zstd-compressed, row groups of 64k rows) and
// returns how many it wrote.
func ExportParquet(ctx context.Context, st predstore.Store, q predstore.ExportQuery, w io.Writer) (int64, error) {
	pw := parquet.NewGenericWriter[ExportRow](w, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(64<<10))
	buf := make([]ExportRow, 0, 1024)
	var n int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := pw.Write(buf); err != nil {
			return fmt.Errorf("failed to write Parquet: %w", err)
		}
		n += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	err := st.Export(ctx, q, func(r *predstore.Record, l *predstore.Label) error {
		buf = append(buf, exportRow(r, l))
		if len(buf) == cap(buf) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return n, err
	}
	if err := pw.Close(); err != nil {
		return n, fmt.Errorf("failed to write Parquet: %w", err)
	}
	return n, nil
}

// ndjsonRow is the NDJSON export of a record: the record as ingested
// (resolved), plus its label.
type ndjsonRow struct {
	predstore.Record
	Label   json.RawMessage `json:"label,omitempty"`
	LabelTS *time.Time      `json:"label_ts,omitempty"`
}

// ExportNDJSON writes the records matching q to w, one JSON object per
// line, and returns how many it wrote.
func ExportNDJSON(ctx context.Context, st predstore.Store, q predstore.ExportQuery, w io.Writer) (int64, error) {
	enc := json.NewEncoder(w)
	var n int64
	err := st.Export(ctx, q, func(r *predstore.Record, l *predstore.Label) error {
		row := ndjsonRow{Record: *r}
		if l != nil {
			row.Label, row.LabelTS = l.Label, &l.TS
		}
		n++
		return enc.Encode(&row)
	})
	return n, err
}

// Retention is how long records are kept, per model; Default applies to
// models not listed. Zero means forever.
type Retention struct {
	ByModel map[string]time.Duration
	Default time.Duration
}

// ParseRetention reads {"model": "720h", "*": "2160h"} style settings.
func ParseRetention(m map[string]string) (Retention, error) {
	r := Retention{ByModel: map[string]time.Duration{}}
	for k, v := range m {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return r, fmt.Errorf("retention of %q: want a non-negative duration like 720h, got %q", k, v)
		}
		if k == "*" {
			r.Default = d
		} else {
			r.ByModel[k] = d
		}
	}
	return r, nil
}

// IsZero reports whether nothing is ever deleted.
func (r Retention) IsZero() bool {
	if r.Default != 0 {
		return false
	}
	for _, d := range r.ByModel {
		if d != 0 {
			return false
		}
	}
	return true
}

func (r Retention) String() string {
	var parts []string
	for k, d := range r.ByModel {
		parts = append(parts, k+"="+d.String())
	}
	sort.Strings(parts)
	if r.Default != 0 {
		parts = append(parts, "*="+r.Default.String())
	}
	return strings.Join(parts, ",")
}

// EnforceRetention deletes, for every model with records, the records
// older than its retention (relative to now) and returns the number
// deleted per model.
func (s *Service) EnforceRetention(ctx context.Context, r Retention) (map[string]int64, error) {
	models, err := s.st.Models(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	now := s.opts.Now()
	for _, m := range models {
		d, ok := r.ByModel[m]
		if !ok {
			d = r.Default
		}
		if d == 0 {
			continue
		}
		n, err := s.st.DeleteBefore(ctx, m, now.Add(-d))
		if err != nil {
			return out, fmt.Errorf("failed to enforce the retention of %s: %w", m, err)
		}
		if n > 0 {
			out[m] = n
		}
	}
	return out, nil
}
