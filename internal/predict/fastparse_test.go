package predict

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// refItems is the original body splitter (encoding/json throughout),
// kept as the reference for eachItem.
func refItems(body io.Reader, ndjson bool, lim Limits) ([]json.RawMessage, error) {
	r := io.Reader(&capReader{r: body, left: lim.MaxDecompressed})
	var out []json.RawMessage
	if ndjson {
		br := bufio.NewReaderSize(r, 64<<10)
		var line []byte
		tooLong := false
		for {
			chunk, err := br.ReadSlice('\n')
			if len(line)+len(chunk) > lim.MaxRecordBytes+2 {
				tooLong = true
			} else {
				line = append(line, chunk...)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && err != io.EOF {
				return nil, readErr(err)
			}
			switch t := bytes.TrimSpace(line); {
			case tooLong:
				out = append(out, nil)
			case len(t) > 0:
				out = append(out, json.RawMessage(bytes.Clone(t)))
			}
			if len(out) > lim.MaxRecords {
				return nil, fmt.Errorf("%w: more than %d records", ErrTooLarge, lim.MaxRecords)
			}
			line, tooLong = line[:0], false
			if err == io.EOF {
				return out, nil
			}
		}
	}
	br := bufio.NewReader(r)
	for {
		c, err := br.ReadByte()
		if err != nil {
			return nil, readErr(err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		br.UnreadByte()
		if c == '{' {
			raw, err := io.ReadAll(io.LimitReader(br, int64(lim.MaxRecordBytes)+1))
			if err != nil {
				return nil, readErr(err)
			}
			if len(raw) > lim.MaxRecordBytes {
				return []json.RawMessage{nil}, nil
			}
			return []json.RawMessage{bytes.TrimSpace(raw)}, nil
		}
		break
	}
	dec := json.NewDecoder(br)
	tok, err := dec.Token()
	if err != nil {
		return nil, readErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("%w: not an array", ErrMalformed)
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, readErr(fmt.Errorf("record %d: %w", len(out), err))
		}
		if len(raw) > lim.MaxRecordBytes {
			raw = nil
		}
		out = append(out, raw)
		if len(out) > lim.MaxRecords {
			return nil, fmt.Errorf("%w: more than %d records", ErrTooLarge, lim.MaxRecords)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, readErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the array", ErrMalformed)
	}
	return out, nil
}

// refParseBatch is ParseBatch as it was before the fast parser: the
// reference (encoding/json, reflection) for every record.
func refParseBatch(body io.Reader, ndjson bool, lim Limits) ([]Input, error) {
	raws, err := refItems(body, ndjson, lim)
	if err != nil {
		return nil, err
	}
	out := make([]Input, len(raws))
	for i, raw := range raws {
		if raw == nil {
			out[i].Reason = fmt.Sprintf("record larger than %d bytes", lim.MaxRecordBytes)
			continue
		}
		if err := parseRecord(raw, lim, &out[i].Record); err != nil {
			out[i].Reason = err.Error()
		}
	}
	return out, nil
}

var fastSeeds = []string{
	`{"ts":1780000000,"request_id":"b1-2","model":"m","model_sha256":"0123456789abcdef","features":{"f1":3,"f2":"v3","f3":0.5},"prediction":0.3,"latency_ms":1.25}`,
	`{"ts": "2026-01-02T03:04:05.000000006+01:00", "request_id": "r", "model": "m", "model_sha256": "SHA256:ABCDEF0123456789", "features": {"b": 2, "a": "x", "c": true, "d": null}, "prediction": 0.25}`,
	`{"ts": 1700000000.25, "model": "m", "model_sha256": "abcdef0123456789", "prediction": "cat", "segment": {"sport": "NBA", "a": "b"}}`,
	`{"ts": 1, "model": "m.v-1", "model_sha256": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "prediction": {"b": 0.75, "a": 0.25e0, "c": 1E-7}}`,
	`{"TS": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1}`,
	`{"ts": 1, "ts": 2, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1, "features": {"a": 1, "a": 2}}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1e400}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": -0, "latency_ms": -0}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": "a<b", "features": {"k\u00e9": "v\n", "\u00e9": "\ud800"}}`,
	`{"ts": null, "request_id": null, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1, "features": null, "latency_ms": null}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1}}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": {"a": null}}`,
	`{"ts": 1, "request_id": "", "model": "m", "model_sha256": "abcdef0123456789", "prediction": 123456789012345678901234567890}`,
	`{"ts": 1, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1, "features": {"a": [1]}}`,
	`{"ts": 9300000000, "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1}`,
	`{"ts": "1969-12-31T23:59:59Z", "model": "m", "model_sha256": "abcdef0123456789", "prediction": 1}`,
}

// FuzzFastParse is the differential check of the fast record parser
// against the reference (encoding/json): on every body, ParseBatch and
// the original implementation must agree on the records, their accept or
// reject, the reasons and every parsed value; and wherever the fast path
// accepts a record by itself, the reference accepts it with identical
// values.
func FuzzFastParse(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s), true)
		f.Add([]byte("["+s+","+s+"]"), false)
	}
	f.Add([]byte(fastSeeds[0]+"\n\n"+fastSeeds[1]+"\r\n"+fastSeeds[2]), true)
	lim := DefaultLimits()
	lim.MaxRecordBytes = 4096
	lim.MaxFeatures = 8
	lim.MaxKeyLen = 16
	lim.MaxStringLen = 32
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		got, gerr := ParseBatch(bytes.NewReader(body), ndjson, false, lim)
		want, werr := refParseBatch(bytes.NewReader(body), ndjson, lim)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("errors differ: got %v, want %v", gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batches differ:\ngot  %+v\nwant %+v", got, want)
		}
		p := fastParser{lim: lim}
		var fast Input
		if p.parse(body, &fast.Record) {
			var ref Input
			if err := parseRecord(body, lim, &ref.Record); err != nil {
				t.Fatalf("fast path accepted what the reference rejects (%v): %s", err, body)
			}
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("records differ:\nfast %+v\nref  %+v", fast.Record, ref.Record)
			}
		}
	})
}

// TestFastPathTaken checks that the common record shapes take the fast
// path (so the benchmark measures it).
func TestFastPathTaken(t *testing.T) {
	lim := DefaultLimits()
	for i, s := range fastSeeds[:4] {
		p := fastParser{lim: lim}
		var in Input
		if !p.parse([]byte(s), &in.Record) {
			t.Errorf("seed %d did not take the fast path: %s", i, s)
		}
	}
}
