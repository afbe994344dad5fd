package monitor

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestParquetMatchesCSV writes the "basic" drift fixture as Parquet and
// checks that the report equals the one from CSV, which the fixture tests
// compare with numpy/scipy.
func TestParquetMatchesCSV(t *testing.T) {
	type row struct {
		X        float64  `parquet:"x"`
		SmallInt int64    `parquet:"small_int"`
		WithNaN  *float64 `parquet:"with_nan,optional"`
		Const    float64  `parquet:"const"`
		Color    string   `parquet:"color"`
		Binary   string   `parquet:"binary"`
		Shifted  float64  `parquet:"shifted"`
	}
	dir := t.TempDir()
	var reports []*DriftReport
	var csvTables [2]*Table
	for i, which := range []string{"ref", "cur"} {
		tab, err := ReadTable(t.Context(), "testdata/drift/basic_"+which+".csv", nil)
		if err != nil {
			t.Fatal(err)
		}
		csvTables[i] = tab
		f := func(name string) []float64 { return tab.Column(name).Floats() }
		txt := func(name string) []string {
			codes, dict := tab.Column(name).Text()
			out := make([]string, len(codes))
			for k, c := range codes {
				out[k] = dict[c]
			}
			return out
		}
		rows := make([]row, tab.Rows)
		colors, bins := txt("color"), txt("binary")
		for k := range rows {
			rows[k] = row{X: f("x")[k], SmallInt: int64(f("small_int")[k]), Const: f("const")[k], Color: colors[k], Binary: bins[k], Shifted: f("shifted")[k]}
			if v := f("with_nan")[k]; !math.IsNaN(v) {
				rows[k].WithNaN = &v
			}
		}
		if err := parquet.WriteFile(filepath.Join(dir, which+".parquet"), rows); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := ReadTable(t.Context(), filepath.Join(dir, "ref.parquet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ReadTable(t.Context(), filepath.Join(dir, "cur.parquet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*Table{{ref, cur}, {csvTables[0], csvTables[1]}} {
		rep, err := CompareTables(pair[0], pair[1], DriftOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, rep)
	}
	a, b := reports[0].Columns, reports[1].Columns
	if len(a) != len(b) || len(a) != 7 {
		t.Fatalf("%d and %d columns", len(a), len(b))
	}
	for i := range a {
		if a[i].Column != b[i].Column || a[i].PSI != b[i].PSI || a[i].JensenShannon != b[i].JensenShannon ||
			a[i].ReferenceMissingShare != b[i].ReferenceMissingShare || a[i].CurrentMissingShare != b[i].CurrentMissingShare || a[i].Kind != b[i].Kind {
			t.Errorf("column %s: parquet %+v, csv %+v", a[i].Column, a[i], b[i])
		}
	}
}
