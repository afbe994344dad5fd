package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// FuzzCSV: the streaming reader never panics, and whenever it accepts an
// unquoted file the parallel batch reader gives the same table.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "a\n\"x\"\"y\"\n", "a,b\r\n1,\n\n3,NA\n", "x\n1\n2\ninf\nnan\n",
		"a,b\n1,2,3\n", "\ufeffa\n\"multi\nline\"\n", "a,b\n,\n", "a\n0x1p3\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := streamTable(t, data, nil)
		for _, w := range []int{1, 3} {
			got, ok, berr := parseCSVBatch(context.Background(), data, nil, nil, w)
			if !ok || bytes.IndexByte(data, '"') >= 0 {
				continue
			}
			if (err == nil) != (berr == nil) {
				t.Fatalf("streaming err %v, batch err %v", err, berr)
			}
			if err == nil && !sameTable(got, want) {
				t.Fatalf("batch (%d workers) differs from streaming", w)
			}
		}
	})
}

// FuzzJSONL: the JSON Lines reader never panics and every row it returns
// has one cell per column.
func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x"}` + "\n" + `{"a":null}` + "\n", `{"a":[1,2],"b":{"c":true}}`, "\n\n{}\n", `[1]`, `{"a":1}{"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewJSONLSource(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			row, err := src.Next(nil)
			if err != nil {
				return
			}
			if len(row) != len(src.Columns()) {
				t.Fatalf("row of %d cells, %d columns", len(row), len(src.Columns()))
			}
		}
	})
}

// FuzzThreshold: ParseThreshold never panics and what it accepts is a
// known statistic with a finite, in-range limit.
func FuzzThreshold(f *testing.F) {
	for _, s := range []string{"psi=0.2", "age:ks_pvalue=0.01", "a:b:psi=1", ":psi=1", "psi=", "psi=NaN", "chi2_pvalue=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			return
		}
		known := false
		for _, k := range ThresholdStats {
			known = known || k == th.Stat
		}
		if !known || th.Limit < 0 || th.Limit != th.Limit {
			t.Fatalf("accepted %q as %+v", s, th)
		}
	})
}

// FuzzParquet: the Parquet reader returns an error, never panics, on any
// input, and rows it returns have one cell per column.
func FuzzParquet(f *testing.F) {
	var buf bytes.Buffer
	type row struct {
		X float64 `parquet:"x"`
		C string  `parquet:"c,optional"`
	}
	if err := parquet.Write(&buf, []row{{1.5, "a"}, {2, ""}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewParquetSource(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			row, err := src.Next(nil)
			if err != nil {
				return
			}
			if len(row) != len(src.Columns()) {
				t.Fatalf("row of %d cells, %d columns", len(row), len(src.Columns()))
			}
		}
	})
}

// FuzzProfile: a profile read from any JSON is validated or rejected, and
// comparing a table with an accepted one never panics.
func FuzzProfile(f *testing.F) {
	tab, err := ReadTable(context.Background(), "testdata/drift/tiny_ref.csv", nil)
	if err != nil {
		f.Fatal(err)
	}
	p, err := BuildProfile(tab, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(p)
	f.Add(good)
	f.Add([]byte(`{"version":1,"columns":[{"column":"t","type":"numerical","binned":{"edges":[0,1],"counts":[1]}}]}`))
	f.Add([]byte(`{"version":1,"columns":[{"column":"t","type":"categorical","categories":{"counts":{"a":-1}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Profile
		if json.Unmarshal(data, &p) != nil {
			return
		}
		_, _ = CompareProfile(&p, tab)
	})
}
