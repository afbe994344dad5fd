package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// flatten is the reference for tensorValues: the scalars of a document
// decoded by decodeAny, in row-major order.
func flatten(v any, out *[]any, depth int) error {
	if depth > 32 {
		return errors.New("arrays nested too deeply")
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := flatten(e, out, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		return errors.New("object in tensor data")
	}
	*out = append(*out, v)
	return nil
}

// referenceTensorValues is what extraction did before tensorValues.
func referenceTensorValues(data []byte) ([]any, error) {
	v, err := decodeAny(data)
	if err != nil {
		return nil, err
	}
	var vals []any
	if err := flatten(v, &vals, 0); err != nil {
		return nil, err
	}
	return vals, nil
}

var tensorSeeds = []string{
	`[1,2,3]`, `[[1,2],[3,4]]`, ` [ 1 , -0.5e+3 , 2E-7 ] `, `["a","b\u00e9\n","\ud800"]`, `"x"`, `7`, `null`,
	`[true,false,null]`, `[]`, `[[]]`, `[{"a":1}]`, `[1,]`, `[01]`, `[1.]`, `[-]`, `[1e]`, `[1] x`, `["\x"]`,
	`["a` + "\x01" + `"]`, "[\"\xff\"]", `[nul]`, `[1 2]`, ``, ` `, `[`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `1.5e400`, `-0`, `"\u2028<&>"`,
}

func TestTensorValuesMatchesEncodingJSON(t *testing.T) {
	for _, s := range tensorSeeds {
		checkTensorValues(t, []byte(s))
	}
}

func FuzzTensorValues(f *testing.F) {
	for _, s := range tensorSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkTensorValues(t, data) })
}

func checkTensorValues(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := referenceTensorValues(data)
	got, err := tensorValues(data, nil)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json: %v", data, err, wantErr)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %#v, encoding/json %#v", data, got, want)
	}
}

func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 0, 0, 123456000, time.UTC)
	recs := []Record{
		{TS: ts, RequestID: "abc", Model: "win-probability", ModelSHA256: testDigest,
			Features:   map[string]any{"elo_diff": json.Number("35"), "home": json.Number("1"), "name": "a<b>&\"\\\n\t\x01\u2028\u2029é\xff", "ok": true, "none": nil},
			Prediction: map[string]any{"win": json.Number("0.61"), "loss": json.Number("0.39")}, LatencyMS: 0.211},
		{TS: ts.Add(time.Nanosecond), RequestID: "abc/1", Model: "m", ModelSHA256: testDigest, Features: map[string]any{},
			Prediction: "win", Segment: map[string]string{"sport": "tennis", "a": "<x>"}, LatencyMS: 1e-7},
		{TS: ts, RequestID: "x", Features: nil, Prediction: json.Number("-1.5e-3"), LatencyMS: 1e21},
		{TS: ts, Features: map[string]any{"0": json.Number("")}, Prediction: false, LatencyMS: 0},
		{TS: ts, Prediction: []any{json.Number("1")}, LatencyMS: 12345.678},
	}
	for _, rec := range recs {
		checkRecord(t, rec)
	}
	// The fallbacks answer what json.Marshal answers.
	for _, rec := range []Record{
		{TS: ts, Prediction: json.Number("1x")},
		{TS: ts, LatencyMS: math.NaN()},
		{TS: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := appendRecord(nil, &rec); err == nil {
			t.Errorf("%+v: no error", rec)
		}
	}
}

func checkRecord(t *testing.T, rec Record) {
	t.Helper()
	want, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := appendRecord([]byte("prefix"), &rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("appendRecord:\n%s\njson.Marshal:\n%s", got[len("prefix"):], want)
	}
}

func FuzzAppendRecord(f *testing.F) {
	f.Add("abc", "win-probability", "elo_diff", "x<y>&\u2028", "sport", "tennis", int64(1763780400123456789), 0.211, []byte(`[35,"a",true,null]`))
	f.Add("", "", "", "\xff\x00\"\\", "", "", int64(0), 1e-9, []byte(`["\ud800"]`))
	f.Fuzz(func(t *testing.T, id, model, key, str, segKey, segVal string, nanos int64, latency float64, data []byte) {
		vals, err := tensorValues(data, nil)
		if err != nil || math.IsNaN(latency) || math.IsInf(latency, 0) {
			return
		}
		feats := map[string]any{key: str}
		for i, v := range vals {
			feats[key+string(rune('a'+i%26))] = v
		}
		rec := Record{TS: time.Unix(0, nanos).UTC(), RequestID: id, Model: model, ModelSHA256: str,
			Features: feats, Prediction: map[string]any{segVal: json.Number("0.5")}, LatencyMS: latency}
		if segKey != "" {
			rec.Segment = map[string]string{segKey: segVal, key: str}
		}
		checkRecord(t, rec)
	})
}

var v2Seeds = []string{
	string(benchRequest), string(benchResponse),
	`{"id":"x","parameters":{"a":[1,{"b":null}],"c":"\u00e9"},"inputs":[{"name":"x","shape":[2,4],"datatype":"FP64","data":[[1,2,3,4],[5,6,7,8]],"parameters":{}}]}`,
	`{"inputs":[]}`, `{"inputs":null}`, `{"INPUTS":[]}`, `{"inputs":[{"Name":"x"}]}`, `{"inputs":[{"name":"x","name":"y"}]}`,
	`{"inputs":[{"name":"x","shape":[1.0]}]}`, `{"inputs":[{"name":"x","shape":[-0,99999999999999999999]}]}`,
	`{"inputs":[{"name":"x","shape":[],"data":null}]}`, `{"inputs":[{"name":null}]}`, `{"inputs":[{"name":"\u0078"}]}`,
	`{"inputs":[{}],"outputs":[{"data":"s"}]} `, `{"inputs":[{}]} x`, `[]`, `{"a":tru}`, `{"inputs":{}}`, `{"inputs":[1]}`,
	`{"inputs":[{"name":"x","data":[1,2]}],"inputs":[]}`, "{\"k\u212a\":1}", `{"inputs":[{"name":"x","data":{"a":[}}]}`,
}

func TestDecodeV2MatchesEncodingJSON(t *testing.T) {
	fast := 0
	for _, s := range v2Seeds {
		if checkDecodeV2(t, []byte(s)) {
			fast++
		}
	}
	if fast < 5 {
		t.Fatalf("only %d seeds took the fast path", fast)
	}
}

func FuzzDecodeV2(f *testing.F) {
	for _, s := range v2Seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeV2(t, data) })
}

// checkDecodeV2 compares decodeV2 with json.Unmarshal and reports whether
// the fast path answered.
func checkDecodeV2(t *testing.T, data []byte) bool {
	t.Helper()
	var want, got, fast v2Body
	wantErr := json.Unmarshal(data, &want)
	err := decodeV2(data, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json: %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %+v, encoding/json %+v", data, got, want)
	}
	if !fastV2(data, &fast) {
		return false
	}
	if wantErr != nil || !reflect.DeepEqual(fast, want) {
		t.Fatalf("%q: fast path %+v, encoding/json %+v (%v)", data, fast, want, wantErr)
	}
	return true
}
