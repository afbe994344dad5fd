package watch

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestParseWire(t *testing.T) {
	ts, err := ParseTS(json.RawMessage(`"2026-11-20T01:02:03.5Z"`))
	if err != nil || !ts.Equal(time.Date(2026, 11, 20, 1, 2, 3, 5e8, time.UTC)) {
		t.Fatal(ts, err)
	}
	ts, err = ParseTS(json.RawMessage(`1795219200.25`))
	if err != nil || ts.Unix() != 1795219200 || ts.Nanosecond() != 25e7 {
		t.Fatal(ts, err)
	}
	for _, bad := range []string{``, `null`, `"yesterday"`, `1e300`, `true`} {
		if _, err := ParseTS(json.RawMessage(bad)); err == nil {
			t.Errorf("ts %s accepted", bad)
		}
	}
	s, c, err := ParsePrediction(json.RawMessage(`{"0": 0.3, "1": 0.7}`), "1")
	if err != nil || c != "1" || *s != 0.7 {
		t.Fatal(s, c, err)
	}
	s, c, err = ParsePrediction(json.RawMessage(`{"b": 0.5, "a": 0.5}`), "1")
	if err != nil || c != "a" || s != nil {
		t.Fatal(s, c, err)
	}
	if s, c, err = ParsePrediction(json.RawMessage(`"cat"`), "1"); err != nil || c != "cat" || s != nil {
		t.Fatal(s, c, err)
	}
	if s, _, err = ParsePrediction(json.RawMessage(`0.25`), "1"); err != nil || *s != 0.25 {
		t.Fatal(s, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `[1]`, `{"a": "x"}`} {
		if _, _, err := ParsePrediction(json.RawMessage(bad), "1"); err == nil {
			t.Errorf("prediction %s accepted", bad)
		}
	}
	for in, want := range map[string]string{`1`: "1", `1.0`: "1", `"yes"`: "yes", `true`: "true", `0`: "0"} {
		if got, err := LabelText(json.RawMessage(in)); err != nil || got != want {
			t.Errorf("label %s: %q %v", in, got, err)
		}
	}
}

func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"ts": "2026-11-20T00:00:00Z", "request_id": "a", "model": "m", "features": {"x": 1, "c": "r", "b": true, "n": null}, "prediction": {"1": 0.9, "0": 0.1}, "segment": {"s": "v"}, "label": 1}`))
	f.Add([]byte(`{"ts": 1795219200, "model": "m", "prediction": 0.4}`))
	m := Monitor{Name: "f", Model: "m", Reference: "r", Window: Duration(time.Hour)}
	if err := m.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var r Record
		if json.Unmarshal(line, &r) != nil {
			return
		}
		p, err := m.Prediction(&r)
		if err != nil {
			return
		}
		if p.TS.IsZero() && len(r.TS) == 0 {
			t.Fatal("record without ts accepted")
		}
		if p.Score == nil && p.Class == "" {
			if _, _, err := ParsePrediction(r.Prediction, "1"); err == nil {
				// An object of classes always yields a class.
				t.Fatalf("prediction %s gave neither score nor class", r.Prediction)
			}
		}
		if p.Score != nil && math.IsNaN(*p.Score) {
			t.Fatal("NaN score")
		}
		_, _ = LabelText(r.Label)
	})
}

func FuzzDecodeRaw(f *testing.F) {
	f.Add([]byte(`{"x":1,"c":"r"}`), []byte(`{"1":0.9,"0":0.1}`), []byte(`{"s":"v"}`))
	f.Add([]byte(``), []byte(`0.3`), []byte(``))
	m := Monitor{Name: "f", Model: "m", Reference: "r", Window: Duration(time.Hour)}
	if err := m.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, features, prediction, segment []byte) {
		r := RawRecord{TS: time.Unix(0, 0), Model: "m", Features: features, Prediction: prediction, Segment: segment}
		p, err := m.DecodeRaw(&r)
		if err != nil {
			return
		}
		if p.Score == nil && p.Class == "" {
			t.Fatalf("prediction %q gave neither score nor class", prediction)
		}
		for k, v := range p.Features {
			switch v.(type) {
			case nil, float64, string, bool:
			default:
				t.Fatalf("feature %q: %T accepted", k, v)
			}
		}
	})
}
