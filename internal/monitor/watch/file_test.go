package watch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestReadPredictionsFormats feeds the same rows as CSV, Parquet and JSONL
// wire records (labels in the file, or in a separate file joined by
// request_id) and requires identical results.
func TestReadPredictionsFormats(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	rows := generate(t0, time.Hour, scenario{rows: 600, seed: 9, shift: 0.1})
	type prow struct {
		TS         string  `parquet:"ts"`
		RequestID  string  `parquet:"request_id"`
		X          float64 `parquet:"x"`
		Color      string  `parquet:"color"`
		Sport      string  `parquet:"sport"`
		Prediction float64 `parquet:"prediction"`
		Label      int64   `parquet:"label"`
	}
	var csv, jsonl, labels strings.Builder
	csv.WriteString("ts,request_id,x,color,sport,prediction,label\n")
	labels.WriteString("request_id,label\n")
	var prows []prow
	for i, r := range rows {
		ts := r.ts.Format(time.RFC3339Nano)
		id := fmt.Sprintf("r%d", i)
		fmt.Fprintf(&csv, "%s,%s,%v,%s,%s,%v,%d\n", ts, id, r.x, r.color, r.sport, r.score, r.label)
		rec, _ := json.Marshal(map[string]any{"ts": ts, "request_id": id, "model": "churn",
			"features": map[string]any{"x": r.x, "color": r.color}, "prediction": r.score, "segment": map[string]string{"sport": r.sport}})
		jsonl.Write(append(rec, '\n'))
		fmt.Fprintf(&labels, "%s,%d\n", id, r.label)
		prows = append(prows, prow{ts, id, r.x, r.color, r.sport, r.score, int64(r.label)})
	}
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	csvPath, jsonlPath, labelsPath := write("p.csv", csv.String()), write("p.jsonl", jsonl.String()), write("l.csv", labels.String())
	parquetPath := filepath.Join(dir, "p.parquet")
	if err := parquet.WriteFile(parquetPath, prows); err != nil {
		t.Fatal(err)
	}
	ref := referenceProfile(t, 10)
	run := func(input, labelsFile string) *Result {
		m := Monitor{Name: "f", Model: "churn", Reference: "r", Window: Duration(time.Hour), Segments: []string{"sport"}}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		store, _ := NewFileStore(t.TempDir())
		e, err := New(m, ref, Options{Store: store, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		pending := map[string]Prediction{}
		err = ReadPredictions(ctx, input, &m, func(p Prediction, label *string) error {
			if _, err := e.ObservePrediction(ctx, p); err != nil {
				return err
			}
			if label != nil {
				_, err := e.ObserveLabel(ctx, Label{Prediction: p, Label: *label})
				return err
			}
			pending[p.RequestID] = p
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if labelsFile != "" {
			err := ReadLabels(ctx, labelsFile, func(id, l string) error {
				_, err := e.ObserveLabel(ctx, Label{Prediction: pending[id], Label: l})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		r, err := e.Evaluate(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Labelled != int64(len(rows)) {
			t.Fatalf("%s: %d labelled", input, r.Labelled)
		}
		return r
	}
	// JSON, not reflect.DeepEqual: empty buckets hold NaN.
	want, _ := json.Marshal(run(csvPath, ""))
	for _, c := range [][2]string{{parquetPath, ""}, {jsonlPath, labelsPath}} {
		if got, _ := json.Marshal(run(c[0], c[1])); !bytes.Equal(got, want) {
			t.Fatalf("%s differs from CSV:\n%s\n%s", c[0], got, want)
		}
	}
}
