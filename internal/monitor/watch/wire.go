package watch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Record is a logged prediction in the shape of the prediction ingest's
// wire contract (POST /api/v1/predictions), optionally with its label
// (offline files may carry both).
type Record struct {
	TS          json.RawMessage   `json:"ts"`
	RequestID   string            `json:"request_id"`
	Model       string            `json:"model"`
	ModelSHA256 string            `json:"model_sha256"`
	Features    map[string]any    `json:"features"`
	Prediction  json.RawMessage   `json:"prediction"`
	Segment     map[string]string `json:"segment"`
	LatencyMS   *float64          `json:"latency_ms"`
	Label       json.RawMessage   `json:"label"`
}

// ParseTS reads a record time: an RFC 3339 string (nanoseconds allowed)
// or Unix seconds (a number).
func ParseTS(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New("ts is required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf("ts: %v", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("ts %q: not RFC 3339", s)
		}
		return t.UTC(), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, fmt.Errorf("ts %s: not Unix seconds", raw)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// ParsePrediction reads a record's prediction: a number is the score (the
// probability of positiveClass); a string is the predicted class; an
// object {class: probability} gives the most probable class (the smallest
// name on ties) and, when it has positiveClass, its probability as score.
func ParsePrediction(raw json.RawMessage, positiveClass string) (score *float64, class string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, "", errors.New("prediction is required")
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &class); err != nil {
			return nil, "", fmt.Errorf("prediction: %v", err)
		}
		if class == "" {
			return nil, "", errors.New("prediction: empty class name")
		}
		return nil, class, nil
	case '{':
		var m map[string]float64
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, "", fmt.Errorf("prediction: want {class: probability}: %v", err)
		}
		if len(m) == 0 {
			return nil, "", errors.New("prediction: empty object")
		}
		keys := make([]string, 0, len(m))
		for k, p := range m {
			if k == "" {
				return nil, "", errors.New("prediction: empty class name")
			}
			if math.IsNaN(p) {
				return nil, "", fmt.Errorf("prediction: probability of %q is not a number", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		best := keys[0]
		for _, k := range keys[1:] {
			if m[k] > m[best] {
				best = k
			}
		}
		if p, ok := m[positiveClass]; ok {
			score = &p
		}
		return score, best, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, "", fmt.Errorf("prediction: want a number, a string or an object: %v", err)
	}
	return &f, "", nil
}

// LabelText reads a label (number or string) as the class name monitors
// compare: numbers in their shortest form, so 1 and 1.0 are one class.
func LabelText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New("label is missing")
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("label %s: want a number or a string", raw)
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// Prediction converts a record for monitor m.
func (m *Monitor) Prediction(r *Record) (Prediction, error) {
	ts, err := ParseTS(r.TS)
	if err != nil {
		return Prediction{}, err
	}
	score, class, err := ParsePrediction(r.Prediction, m.PositiveClass)
	if err != nil {
		return Prediction{}, err
	}
	for k, v := range r.Features {
		switch v.(type) {
		case nil, float64, string, bool:
		default:
			return Prediction{}, fmt.Errorf("feature %q: nested values are not allowed", k)
		}
	}
	return Prediction{TS: ts, RequestID: r.RequestID, Model: r.Model, ModelSHA256: r.ModelSHA256,
		Features: r.Features, Score: score, Class: class, Segment: r.Segment}, nil
}

// RawRecord is a stored prediction as the ingest keeps it, its JSON parts
// undecoded (the shape of the prediction store's records).
type RawRecord struct {
	TS          time.Time
	RequestID   string
	Model       string
	ModelSHA256 string
	Features    json.RawMessage // flat object, or empty
	Prediction  json.RawMessage // number, string or {class: probability}
	Segment     json.RawMessage // flat object of strings, or empty
}

// RawLabel is a stored label joined to its stored prediction.
type RawLabel struct {
	Prediction RawRecord
	Label      json.RawMessage // number or string
}

// DecodeRaw converts a stored record for monitor m.
func (m *Monitor) DecodeRaw(r *RawRecord) (Prediction, error) {
	p := Prediction{TS: r.TS, RequestID: r.RequestID, Model: r.Model, ModelSHA256: r.ModelSHA256}
	var err error
	if p.Score, p.Class, err = ParsePrediction(r.Prediction, m.PositiveClass); err != nil {
		return Prediction{}, err
	}
	if len(bytes.TrimSpace(r.Features)) > 0 {
		if err := json.Unmarshal(r.Features, &p.Features); err != nil {
			return Prediction{}, fmt.Errorf("features: %v", err)
		}
		for k, v := range p.Features {
			switch v.(type) {
			case nil, float64, string, bool:
			default:
				return Prediction{}, fmt.Errorf("feature %q: nested values are not allowed", k)
			}
		}
	}
	if len(bytes.TrimSpace(r.Segment)) > 0 {
		if err := json.Unmarshal(r.Segment, &p.Segment); err != nil {
			return Prediction{}, fmt.Errorf("segment: %v", err)
		}
	}
	return p, nil
}
