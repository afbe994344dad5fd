package predict_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/predict"
	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/predstore/predsql"
	"github.com/custody-ml/custody/internal/predstore/predtest"
	"github.com/parquet-go/parquet-go"
)

// The Parquet export read back with parquet-go's file reader (not the
// writer's types): the schema's columns and logical types, the row count,
// and the values.
func TestExportParquet(t *testing.T) {
	st, err := predsql.OpenDir(t.Context(), t.TempDir(), predsql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 7, time.UTC)
	var recs []predstore.Record
	for i := range 2500 {
		r := predtest.Rec(fmt.Sprintf("r%04d", i), "m", t0.Add(time.Duration(i)*time.Second), float64(i)/2500)
		if i%2 == 1 {
			r.Prediction = json.RawMessage(`{"a":0.25,"b":0.75}`)
			r.LatencyMS, r.Segment = nil, nil
		}
		recs = append(recs, r)
	}
	if _, err := st.Append(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Label(t.Context(), []predstore.Label{{RequestID: "r0000", Label: json.RawMessage(`1`), TS: t0}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := predict.ExportParquet(t.Context(), st, predstore.ExportQuery{Since: t0.Add(-time.Hour)}, &buf)
	if err != nil || n != 2500 {
		t.Fatalf("exported %d, %v", n, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 2500 {
		t.Fatalf("%d rows", f.NumRows())
	}
	var cols []string
	for _, c := range f.Schema().Fields() {
		cols = append(cols, c.Name()+":"+fmt.Sprint(c.Type())+fmt.Sprintf(":%v", c.Optional()))
	}
	want := "ts:TIMESTAMP(isAdjustedToUTC=true,unit=NANOS):false request_id:STRING:false model:STRING:false version:STRING:false " +
		"model_sha256:STRING:false features:JSON:false prediction:JSON:false score:DOUBLE:true segment:JSON:false " +
		"latency_ms:DOUBLE:true label:STRING:true label_ts:TIMESTAMP(isAdjustedToUTC=true,unit=NANOS):true"
	if got := strings.Join(cols, " "); got != want {
		t.Fatalf("schema\n got %s\nwant %s", got, want)
	}
	rows := make([]parquet.Row, 2500)
	rr := f.RowGroups()[0].Rows()
	k, _ := rr.ReadRows(rows)
	rr.Close()
	if k == 0 {
		t.Fatal("no rows read")
	}
	// Row 0: ts, id, model, ..., label 1; row 1: score 0.75 (max probability), no latency.
	r0, r1 := rows[0], rows[1]
	if r0[0].Int64() != t0.UnixNano() || r0[1].String() != "r0000" || r0[5].String() != `{"a":1,"b":"x"}` ||
		r0[7].Double() != 0 || r0[10].String() != "1" || r0[11].Int64() != t0.UnixNano() {
		t.Fatalf("row 0 %v", r0)
	}
	if r1[7].Double() != 0.75 || !r1[9].IsNull() || !r1[10].IsNull() || r1[8].String() != "{}" {
		t.Fatalf("row 1 %v", r1)
	}
}
