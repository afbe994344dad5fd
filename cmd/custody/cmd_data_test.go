package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type tripRow struct {
	ID     int64   `parquet:"id"`
	Fare   float64 `parquet:"fare"`
	Vendor string  `parquet:"vendor"`
}

// TestDataCheckParquet runs the CLI path on a Parquet file: evidence JSON
// written with --out, exit status via notHold, line numbers = row numbers.
func TestDataCheckParquet(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "trips.parquet")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := parquet.Write(f, []tripRow{{1, 5.5, "a"}, {2, -1, "b"}, {3, 7, "a"}}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	con := filepath.Join(dir, "c.yaml")
	os.WriteFile(con, []byte("custody_contract: 1\ncolumns:\n  - {name: id, type: int64, unique: true}\n  - {name: fare, min: 0}\n  - {name: vendor, in_set: [a, b]}\n"), 0o644)
	out := filepath.Join(dir, "result.json")
	var stdout bytes.Buffer
	err = runDataCheck(t.Context(), &stdout, dataCheckOptions{Contract: con, Out: out}, []string{data})
	if !errors.Is(err, errNotHold) {
		t.Fatalf("err = %v, want a not-hold error; output:\n%s", err, stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep checkReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	in := rep.Inputs[0]
	if rep.Schema != checkSchema || rep.Outcome != "fail" || in.Format != "parquet" || in.Rows != 3 || rep.Summary.Fail != 1 {
		t.Fatalf("report: %s", b)
	}
	raw, _ := os.ReadFile(data)
	if in.Size != int64(len(raw)) {
		t.Fatalf("size %d, want %d", in.Size, len(raw))
	}
	for _, r := range in.Results {
		if r.Type == "expect_column_values_to_be_between" {
			if r.Status != "fail" || len(r.Examples) != 1 || r.Examples[0].Line != 2 || r.Examples[0].Value != -1.0 {
				t.Fatalf("between: %+v", r)
			}
		}
	}
}
