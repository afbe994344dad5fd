package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/custody-ml/custody/internal/monitor"
)

// maxLine caps one JSONL record.
const maxLine = 16 << 20

// ReadPredictions reads a file of logged predictions and calls fn for
// each, with its label when the file has one (nil otherwise).
//
// .jsonl/.ndjson files hold one wire record per line (see Record), with
// an optional "label". .csv and .parquet files are flat: the columns ts
// and prediction are required; request_id, model (default: the
// monitor's), model_sha256 and label are optional; a column named like a
// segment key of m, or "segment.KEY", is a segment; every other column is
// a feature (a number when it parses as one, text otherwise, missing when
// empty).
func ReadPredictions(ctx context.Context, path string, m *Monitor, fn func(p Prediction, label *string) error) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return readJSONL(ctx, path, func(n int, line []byte) error {
			var r Record
			dec := json.NewDecoder(strings.NewReader(string(line)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("%s:%d: %v", path, n, err)
			}
			if r.Model == "" {
				r.Model = m.Model
			}
			p, err := m.Prediction(&r)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", path, n, err)
			}
			var label *string
			if len(r.Label) > 0 && string(r.Label) != "null" {
				l, err := LabelText(r.Label)
				if err != nil {
					return fmt.Errorf("%s:%d: %v", path, n, err)
				}
				label = &l
			}
			return fn(p, label)
		})
	}
	src, closer, err := monitor.OpenSource(path)
	if err != nil {
		return err
	}
	defer closer.Close()
	cols := src.Columns()
	idx := func(name string) int { return slices.Index(cols, name) }
	its, ipred := idx("ts"), idx("prediction")
	if its < 0 || ipred < 0 {
		return fmt.Errorf("%s: columns ts and prediction are required: %w", path, ErrConfig)
	}
	ireq, imodel, idig, ilabel := idx("request_id"), idx("model"), idx("model_sha256"), idx("label")
	segCol := map[int]string{}
	featCol := map[int]string{}
	for i, c := range cols {
		switch {
		case i == its || i == ipred || i == ireq || i == imodel || i == idig || i == ilabel:
		case strings.HasPrefix(c, "segment."):
			segCol[i] = strings.TrimPrefix(c, "segment.")
		case slices.Contains(m.Segments, c):
			segCol[i] = c
		default:
			featCol[i] = c
		}
	}
	var row []monitor.Cell
	for n := 2; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err = src.Next(row)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		text := func(i int) (string, bool) {
			if i < 0 || row[i].Null {
				return "", false
			}
			return row[i].Text, true
		}
		r := Record{Model: m.Model, Features: map[string]any{}, Segment: map[string]string{}}
		if ts, ok := text(its); ok {
			if v, isNum := monitor.ParseNumber(ts); isNum {
				r.TS = json.RawMessage(fmt.Sprint(v))
			} else {
				r.TS, _ = json.Marshal(ts)
			}
		}
		if pv, ok := text(ipred); ok {
			if v, isNum := monitor.ParseNumber(pv); isNum {
				r.Prediction = json.RawMessage(fmt.Sprint(v))
			} else if strings.HasPrefix(pv, "{") {
				r.Prediction = json.RawMessage(pv)
			} else {
				r.Prediction, _ = json.Marshal(pv)
			}
		}
		r.RequestID, _ = text(ireq)
		if v, ok := text(imodel); ok {
			r.Model = v
		}
		r.ModelSHA256, _ = text(idig)
		for i, k := range segCol {
			if v, ok := text(i); ok {
				r.Segment[k] = v
			}
		}
		for i, k := range featCol {
			v, ok := text(i)
			switch f, isNum := monitor.ParseNumber(v); {
			case !ok:
				r.Features[k] = nil
			case isNum:
				r.Features[k] = f
			default:
				r.Features[k] = v
			}
		}
		p, err := m.Prediction(&r)
		if err != nil {
			return fmt.Errorf("%s: row %d: %v", path, n, err)
		}
		var label *string
		if v, ok := text(ilabel); ok {
			if f, isNum := monitor.ParseNumber(v); isNum {
				v, _ = LabelText(json.RawMessage(fmt.Sprint(f)))
			}
			label = &v
		}
		if err := fn(p, label); err != nil {
			return err
		}
	}
}

// ReadLabels reads a labels file (request_id and label: .csv, .parquet,
// or .jsonl with the wire shape {"request_id", "label", "ts"}) and calls
// fn for each.
func ReadLabels(ctx context.Context, path string, fn func(requestID, label string) error) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return readJSONL(ctx, path, func(n int, line []byte) error {
			var v struct {
				RequestID string          `json:"request_id"`
				Label     json.RawMessage `json:"label"`
				TS        json.RawMessage `json:"ts"`
			}
			dec := json.NewDecoder(strings.NewReader(string(line)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil {
				return fmt.Errorf("%s:%d: %v", path, n, err)
			}
			l, err := LabelText(v.Label)
			if err != nil || v.RequestID == "" {
				return fmt.Errorf("%s:%d: want request_id and label", path, n)
			}
			return fn(v.RequestID, l)
		})
	}
	src, closer, err := monitor.OpenSource(path)
	if err != nil {
		return err
	}
	defer closer.Close()
	ireq, ilabel := slices.Index(src.Columns(), "request_id"), slices.Index(src.Columns(), "label")
	if ireq < 0 || ilabel < 0 {
		return fmt.Errorf("%s: columns request_id and label are required: %w", path, ErrConfig)
	}
	var row []monitor.Cell
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		row, err = src.Next(row)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if row[ireq].Null || row[ilabel].Null {
			continue
		}
		l := row[ilabel].Text
		if f, isNum := monitor.ParseNumber(l); isNum {
			l, _ = LabelText(json.RawMessage(fmt.Sprint(f)))
		}
		if err := fn(row[ireq].Text, l); err != nil {
			return err
		}
	}
}

func readJSONL(ctx context.Context, path string, fn func(n int, line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
