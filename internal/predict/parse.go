package predict

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custody-ml/custody/internal/predstore"
	"github.com/custody-ml/custody/internal/registry"
)

var (
	// ErrTooLarge: the body (decompressed) or the number of records
	// exceeds the limits. Check with errors.Is.
	ErrTooLarge = errors.New("too large")
	// ErrMalformed: the body as a whole cannot be read (bad gzip, a JSON
	// array that is not well-formed). Individual bad records are not
	// errors; they are rejected with a reason.
	ErrMalformed = errors.New("malformed body")
)

// Limits cap what one request may carry.
type Limits struct {
	// MaxDecompressed caps the body after gzip decompression.
	MaxDecompressed int64
	// MaxRecords caps the records in one body.
	MaxRecords int
	// MaxRecordBytes caps one record's JSON.
	MaxRecordBytes int
	// MaxFeatures caps the keys of features (and the classes of a
	// probability map).
	MaxFeatures int
	// MaxKeyLen caps feature, class and segment keys.
	MaxKeyLen int
	// MaxStringLen caps string values (features, classes, segments,
	// labels).
	MaxStringLen int
}

// DefaultLimits returns the production limits.
func DefaultLimits() Limits {
	return Limits{MaxDecompressed: 64 << 20, MaxRecords: 100_000, MaxRecordBytes: 64 << 10,
		MaxFeatures: 1000, MaxKeyLen: 128, MaxStringLen: 4096}
}

const (
	maxRequestID = 128
	maxSegments  = 32
)

// Input is one parsed record of an ingest body: valid (Reason empty, then
// Record holds everything but Version and Digest, and Digest holds the
// model_sha256 as sent, lowercased) or rejected with Reason.
type Input struct {
	Record predstore.Record
	Reason string
}

// LabelInput is one parsed label, or its rejection reason.
type LabelInput struct {
	Label  predstore.Label
	Reason string
}

// eachItem splits a body into its JSON records and calls fn with each,
// in order: a JSON array, a single object, or NDJSON (one object per
// line, blank lines ignored). raw is only valid during the call. A record
// whose NDJSON line (or array element) is too long is passed as nil
// (rejected by the caller); a JSON array that is not well-formed is
// ErrMalformed.
func eachItem(body io.Reader, ndjson, gzipped bool, lim Limits, fn func(raw []byte)) error {
	r := body
	if gzipped {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
		}
		defer zr.Close()
		r = zr
	}
	r = &capReader{r: r, left: lim.MaxDecompressed}
	n := 0
	if ndjson {
		br := bufio.NewReaderSize(r, 64<<10)
		var line []byte // a line longer than the reader's buffer
		tooLong := false
		for {
			chunk, err := br.ReadSlice('\n')
			cur := chunk // valid until the next read
			if len(line) > 0 || errors.Is(err, bufio.ErrBufferFull) {
				if len(line)+len(chunk) > lim.MaxRecordBytes+2 {
					tooLong = true
				} else {
					line = append(line, chunk...)
				}
				if errors.Is(err, bufio.ErrBufferFull) {
					continue
				}
				cur = line
			} else if len(chunk) > lim.MaxRecordBytes+2 {
				tooLong = true
			}
			if err != nil && err != io.EOF {
				return readErr(err)
			}
			switch t := bytes.TrimSpace(cur); {
			case tooLong:
				fn(nil)
				n++
			case len(t) > 0:
				fn(t)
				n++
			}
			if n > lim.MaxRecords {
				return fmt.Errorf("%w: more than %d records", ErrTooLarge, lim.MaxRecords)
			}
			line, tooLong = line[:0], false
			if err == io.EOF {
				return nil
			}
		}
	}
	br := bufio.NewReader(r)
	for {
		c, err := br.ReadByte()
		if err != nil {
			return readErr(err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		br.UnreadByte()
		if c == '{' {
			// A single object.
			raw, err := io.ReadAll(io.LimitReader(br, int64(lim.MaxRecordBytes)+1))
			if err != nil {
				return readErr(err)
			}
			if len(raw) > lim.MaxRecordBytes {
				fn(nil)
				return nil
			}
			fn(bytes.TrimSpace(raw))
			return nil
		}
		break
	}
	dec := json.NewDecoder(br)
	tok, err := dec.Token()
	if err != nil {
		return readErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%w: want a JSON array of records (or NDJSON with Content-Type application/x-ndjson)", ErrMalformed)
	}
	var raw json.RawMessage
	for dec.More() {
		raw = raw[:0]
		if err := dec.Decode(&raw); err != nil {
			return readErr(fmt.Errorf("record %d: %w", n, err))
		}
		if len(raw) > lim.MaxRecordBytes {
			fn(nil)
		} else {
			fn(raw)
		}
		n++
		if n > lim.MaxRecords {
			return fmt.Errorf("%w: more than %d records", ErrTooLarge, lim.MaxRecords)
		}
	}
	if _, err := dec.Token(); err != nil {
		return readErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the array", ErrMalformed)
	}
	return nil
}

func readErr(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	var mbe interface{ Error() string }
	if errors.As(err, &mbe) && strings.Contains(err.Error(), "request body too large") {
		return fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// capReader fails with ErrTooLarge once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("%w: body larger than the decompressed limit", ErrTooLarge)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, fmt.Errorf("%w: body larger than the decompressed limit", ErrTooLarge)
	}
	return n, err
}

// grow appends a zero element, doubling the capacity when full (append
// grows large slices by only 1.25x: five times the final size allocated
// in all for a 100,000-record body).
func grow[T any](s []T) []T {
	if len(s) == cap(s) {
		s = append(make([]T, 0, 2*cap(s)+16), s...)
	}
	var zero T
	return append(s, zero)
}

// ParseBatch parses an ingest body (see docs/predictions.md): a JSON
// array, a single object or NDJSON, optionally gzip-compressed. Records
// that are not valid are returned with a Reason; a body that cannot be
// read at all is an error wrapping ErrMalformed or ErrTooLarge.
func ParseBatch(body io.Reader, ndjson, gzipped bool, lim Limits) ([]Input, error) {
	out := make([]Input, 0, 16)
	p := fastParser{lim: lim}
	err := eachItem(body, ndjson, gzipped, lim, func(raw []byte) {
		out = grow(out)
		in := &out[len(out)-1]
		switch {
		case raw == nil:
			in.Reason = fmt.Sprintf("record larger than %d bytes", lim.MaxRecordBytes)
		case p.parse(raw, &in.Record):
		default:
			// Anything off the fast path: the reference parser decides
			// (and words the reason).
			in.Record = predstore.Record{}
			if err := parseRecord(raw, lim, &in.Record); err != nil {
				in.Reason = err.Error()
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type wireRecord struct {
	TS          json.RawMessage            `json:"ts"`
	RequestID   *string                    `json:"request_id"`
	Model       string                     `json:"model"`
	ModelSHA256 string                     `json:"model_sha256"`
	Features    map[string]json.RawMessage `json:"features"`
	Prediction  json.RawMessage            `json:"prediction"`
	Segment     map[string]json.RawMessage `json:"segment"`
	LatencyMS   *float64                   `json:"latency_ms"`
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid record: %v", err)
	}
	if dec.More() {
		return errors.New("invalid record: trailing data")
	}
	return nil
}

func parseRecord(raw []byte, lim Limits, r *predstore.Record) error {
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("a record must be a JSON object")
	}
	var w wireRecord
	if err := decodeStrict(raw, &w); err != nil {
		return err
	}
	ts, err := parseTime(w.TS, true)
	if err != nil {
		return err
	}
	r.TS = ts
	if w.RequestID != nil && *w.RequestID != "" {
		if err := CheckRequestID(*w.RequestID); err != nil {
			return err
		}
		r.RequestID = *w.RequestID
	}
	if w.Model == "" {
		return errors.New("model is required")
	}
	if err := registry.CheckName(w.Model); err != nil {
		return fmt.Errorf("model: %v", err)
	}
	r.Model = w.Model
	if w.ModelSHA256 == "" {
		return errors.New("model_sha256 is required")
	}
	d, err := normDigest(w.ModelSHA256)
	if err != nil {
		return err
	}
	r.Digest = d
	if r.Features, err = flatObject("features", w.Features, lim.MaxFeatures, lim, false); err != nil {
		return err
	}
	if r.Segment, err = flatObject("segment", w.Segment, maxSegments, lim, true); err != nil {
		return err
	}
	if r.Prediction, err = parsePrediction(w.Prediction, lim); err != nil {
		return err
	}
	if w.LatencyMS != nil {
		if *w.LatencyMS < 0 || math.IsInf(*w.LatencyMS, 0) {
			return errors.New("latency_ms must be a non-negative number")
		}
		r.LatencyMS = w.LatencyMS
	}
	return nil
}

// CheckRequestID validates a client-supplied request id: 1 to 128 bytes
// of printable ASCII without spaces.
func CheckRequestID(id string) error {
	if id == "" || len(id) > maxRequestID {
		return fmt.Errorf("request_id must be 1 to %d bytes", maxRequestID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return errors.New("request_id must be printable ASCII without spaces")
		}
	}
	return nil
}

var (
	minTime = time.Unix(0, 0)
	maxTime = time.Unix(0, math.MaxInt64)
)

// parseTime reads an RFC 3339 string or Unix seconds (a JSON number).
func parseTime(raw json.RawMessage, required bool) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return time.Time{}, errors.New("ts is required")
		}
		return time.Time{}, nil
	}
	var t time.Time
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, errors.New("ts: invalid string")
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("ts: want RFC 3339 or Unix seconds: %q", truncate(s))
		}
	} else {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return time.Time{}, errors.New("ts: want RFC 3339 or Unix seconds")
		}
		if f < 0 || f >= float64(maxTime.Unix()) {
			return time.Time{}, errors.New("ts is out of range (1970 to 2262)")
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1e9)))
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, errors.New("ts is out of range (1970 to 2262)")
	}
	return t.UTC(), nil
}

func normDigest(s string) (string, error) {
	h := strings.TrimPrefix(strings.ToLower(s), "sha256:")
	if len(h) != 16 && len(h) != 64 {
		return "", errors.New(`model_sha256 must be "sha256:<64 hex>" or a 16-hex-digit prefix`)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", errors.New("model_sha256 is not hexadecimal")
		}
	}
	return h, nil
}

// flatObject checks a flat object (values: numbers, strings, booleans,
// null; strings only if onlyStrings) and returns it as compact JSON with
// sorted keys (nil if empty).
func flatObject(what string, m map[string]json.RawMessage, maxKeys int, lim Limits, onlyStrings bool) (json.RawMessage, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > maxKeys {
		return nil, fmt.Errorf("%s has more than %d keys", what, maxKeys)
	}
	for k, v := range m {
		if k == "" || len(k) > lim.MaxKeyLen || !utf8.ValidString(k) {
			return nil, fmt.Errorf("%s key %q is empty or longer than %d bytes", what, truncate(k), lim.MaxKeyLen)
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 {
			return nil, fmt.Errorf("%s.%s is empty", what, truncate(k))
		}
		switch c := v[0]; {
		case c == '{' || c == '[':
			return nil, fmt.Errorf("%s.%s is nested (values must be numbers, strings, booleans or null)", what, truncate(k))
		case c == '"':
			if len(v) > lim.MaxStringLen+2 {
				return nil, fmt.Errorf("%s.%s is longer than %d bytes", what, truncate(k), lim.MaxStringLen)
			}
		case onlyStrings:
			return nil, fmt.Errorf("%s.%s must be a string", what, truncate(k))
		}
	}
	// Sorted keys, values as sent (scalars carry no whitespace): the same
	// input always gives the same bytes, without a reflective re-encode.
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, k)
		out = append(out, ':')
		out = append(out, bytes.TrimSpace(m[k])...)
	}
	return append(out, '}'), nil
}

// appendString appends s as a JSON string (s is valid UTF-8: it came out
// of the JSON decoder).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// parsePrediction checks a prediction: a number, a string (class) or an
// object of class probabilities in [0, 1].
func parsePrediction(raw json.RawMessage, lim Limits) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("prediction is required")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" || len(s) > lim.MaxStringLen {
			return nil, fmt.Errorf("prediction: a class must be a non-empty string of at most %d bytes", lim.MaxStringLen)
		}
		return json.Marshal(s)
	case c == '{':
		var m map[string]float64
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, errors.New("prediction: a probability map must map classes to numbers")
		}
		if len(m) == 0 || len(m) > lim.MaxFeatures {
			return nil, fmt.Errorf("prediction: a probability map needs 1 to %d classes", lim.MaxFeatures)
		}
		for k, p := range m {
			if k == "" || len(k) > lim.MaxKeyLen {
				return nil, fmt.Errorf("prediction: class %q is empty or longer than %d bytes", truncate(k), lim.MaxKeyLen)
			}
			if !(p >= 0 && p <= 1) {
				return nil, fmt.Errorf("prediction: probability of %q is not in [0, 1]", truncate(k))
			}
		}
		return json.Marshal(m)
	case c == '-' || c >= '0' && c <= '9':
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, errors.New("prediction: invalid number")
		}
		return json.Marshal(f)
	}
	return nil, errors.New("prediction must be a number, a class string or an object of class probabilities")
}

// Score is the numeric view of a prediction for histograms: the number
// itself, or the highest class probability; false for a bare class.
func Score(pred json.RawMessage) (float64, bool) {
	if len(pred) == 0 {
		return 0, false
	}
	switch pred[0] {
	case '"':
		return 0, false
	case '{':
		var m map[string]float64
		if json.Unmarshal(pred, &m) != nil {
			return 0, false
		}
		best, ok := 0.0, false
		for _, p := range m {
			if !ok || p > best {
				best, ok = p, true
			}
		}
		return best, ok
	}
	f, err := strconv.ParseFloat(string(pred), 64)
	return f, err == nil
}

// ParseLabels parses a labels body: one object, a JSON array or NDJSON of
// {"request_id", "label" (number or string), "ts" (optional)}; now is the
// default ts.
func ParseLabels(body io.Reader, ndjson, gzipped bool, lim Limits, now time.Time) ([]LabelInput, error) {
	out := make([]LabelInput, 0, 16)
	err := eachItem(body, ndjson, gzipped, lim, func(raw []byte) {
		out = grow(out)
		l := &out[len(out)-1]
		if raw == nil {
			l.Reason = fmt.Sprintf("record larger than %d bytes", lim.MaxRecordBytes)
			return
		}
		if err := parseLabel(raw, lim, now, &l.Label); err != nil {
			l.Reason = err.Error()
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func parseLabel(raw []byte, lim Limits, now time.Time, l *predstore.Label) error {
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("a label must be a JSON object")
	}
	var w struct {
		RequestID string          `json:"request_id"`
		Label     json.RawMessage `json:"label"`
		TS        json.RawMessage `json:"ts"`
	}
	if err := decodeStrict(raw, &w); err != nil {
		return err
	}
	if err := CheckRequestID(w.RequestID); err != nil {
		return err
	}
	l.RequestID = w.RequestID
	ts, err := parseTime(w.TS, false)
	if err != nil {
		return err
	}
	if ts.IsZero() {
		ts = now.UTC()
	}
	l.TS = ts
	v := bytes.TrimSpace(w.Label)
	switch {
	case len(v) == 0 || string(v) == "null":
		return errors.New("label is required")
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) != nil || s == "" || len(s) > lim.MaxStringLen {
			return fmt.Errorf("label: a class must be a non-empty string of at most %d bytes", lim.MaxStringLen)
		}
		l.Label, _ = json.Marshal(s)
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			return errors.New("label: invalid number")
		}
		l.Label, _ = json.Marshal(f)
	default:
		return errors.New("label must be a number or a string")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
