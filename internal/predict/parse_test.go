package predict

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseForms(t *testing.T) {
	rec := `{"ts": "2026-01-02T03:04:05.000000006+01:00", "request_id": "r", "model": "m", "model_sha256": "SHA256:ABCDEF0123456789", "features": {"b": 2, "a": "x"}, "prediction": 0.25}`
	for name, c := range map[string]struct {
		body   string
		ndjson bool
	}{
		"array":  {"[" + rec + "," + rec + "]", false},
		"object": {"  " + rec + "\n", false},
		"ndjson": {rec + "\n\n" + rec, true},
	} {
		in, err := ParseBatch(strings.NewReader(c.body), c.ndjson, false, DefaultLimits())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := 2
		if name == "object" {
			want = 1
		}
		if len(in) != want {
			t.Fatalf("%s: %d records", name, len(in))
		}
		r := in[0].Record
		if in[0].Reason != "" || r.RequestID != "r" || r.Digest != "abcdef0123456789" || string(r.Features) != `{"a":"x","b":2}` ||
			!r.TS.Equal(time.Date(2026, 1, 2, 2, 4, 5, 6, time.UTC)) || string(r.Prediction) != "0.25" {
			t.Fatalf("%s: %+v %q", name, r, in[0].Reason)
		}
	}
	// Unix seconds with a fraction.
	in, _ := ParseBatch(strings.NewReader(`[{"ts": 1700000000.25, "model": "m", "model_sha256": "abcdef0123456789", "prediction": "cat"}]`), false, false, DefaultLimits())
	if in[0].Reason != "" || !in[0].Record.TS.Equal(time.Unix(1700000000, 250_000_000)) {
		t.Fatalf("%+v", in[0])
	}
}

func TestScore(t *testing.T) {
	for in, want := range map[string]float64{`0.3`: 0.3, `{"a":0.1,"b":0.7,"c":0.2}`: 0.7, `-2`: -2} {
		if got, ok := Score(json.RawMessage(in)); !ok || got != want {
			t.Errorf("Score(%s) = %v, %v", in, got, ok)
		}
	}
	if _, ok := Score(json.RawMessage(`"cat"`)); ok {
		t.Error("a class has no score")
	}
}

func TestRequestID(t *testing.T) {
	now := time.Now()
	a, b := NewRequestID(now), NewRequestID(now.Add(time.Millisecond))
	if len(a) != 36 || a[14] != '7' || a >= b || CheckRequestID(a) != nil {
		t.Fatalf("ids %s %s", a, b)
	}
}

// FuzzParseBatch: never panics, and every accepted record re-encodes to a
// record that parses to the same thing (round trip).
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`[{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1, "features": {"a": null}}]`), false)
	f.Add([]byte(`{"ts": "2026-01-01T00:00:00Z", "request_id": "x", "model": "m", "model_sha256": "abcdef0123456789", "prediction": {"a": 0.5}, "segment": {"s": "v"}, "latency_ms": 2}`+"\n"+`{"ts":1}`), true)
	f.Add([]byte(`[{"ts": -1}, 3, "x", [], {"features": {"a": [1]}}]`), false)
	lim := DefaultLimits()
	lim.MaxRecordBytes = 4096
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		in, err := ParseBatch(bytes.NewReader(body), ndjson, false, lim)
		if err != nil {
			return
		}
		for _, x := range in {
			if x.Reason != "" {
				continue
			}
			r := x.Record
			w := map[string]any{"ts": r.TS.Format(time.RFC3339Nano), "model": r.Model, "model_sha256": r.Digest, "prediction": r.Prediction}
			if r.RequestID != "" {
				w["request_id"] = r.RequestID
			}
			if r.Features != nil {
				w["features"] = r.Features
			}
			if r.Segment != nil {
				w["segment"] = r.Segment
			}
			if r.LatencyMS != nil {
				w["latency_ms"] = *r.LatencyMS
			}
			raw, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseBatch(bytes.NewReader(raw), true, false, lim)
			if err != nil || len(again) != 1 || again[0].Reason != "" {
				t.Fatalf("re-encoded record %s does not parse: %v %+v", raw, err, again)
			}
			a, b := again[0].Record, r
			if !a.TS.Equal(b.TS) || a.Model != b.Model || a.Digest != b.Digest || !bytes.Equal(a.Prediction, b.Prediction) ||
				!sameJSON(a.Features, b.Features) || !sameJSON(a.Segment, b.Segment) || a.RequestID != b.RequestID {
				t.Fatalf("round trip changed the record:\n%+v\n%+v", b, a)
			}
		}
	})
}

// sameJSON compares two JSON texts as values (escapes may differ).
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// FuzzParseLabels: never panics; accepted labels are numbers or strings
// with a request id that passes CheckRequestID.
func FuzzParseLabels(f *testing.F) {
	f.Add([]byte(`[{"request_id": "r1", "label": 1}, {"request_id": "r2", "label": "cat", "ts": 1700000000}]`), false)
	f.Add([]byte(`{"request_id": "r1", "label": null}`+"\n"+`{"label": 1}`), true)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		in, err := ParseLabels(bytes.NewReader(body), ndjson, false, DefaultLimits(), time.Unix(1e9, 0))
		if err != nil {
			return
		}
		for _, l := range in {
			if l.Reason != "" {
				continue
			}
			if CheckRequestID(l.Label.RequestID) != nil || len(l.Label.Label) == 0 || l.Label.TS.IsZero() {
				t.Fatalf("accepted %+v", l.Label)
			}
			var v any
			if err := json.Unmarshal(l.Label.Label, &v); err != nil {
				t.Fatalf("label %s is not JSON", l.Label.Label)
			}
			switch v.(type) {
			case float64, string:
			default:
				t.Fatalf("label %s is neither a number nor a string", l.Label.Label)
			}
		}
	})
}
