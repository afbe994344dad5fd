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

	"github.com/custody-ml/custody/internal/monitor"
	"github.com/custody-ml/custody/internal/monitor/summary"
)

// Prediction is one logged prediction as a monitor sees it (the record of
// docs/predictions wire contract, decoded).
type Prediction struct {
	TS          time.Time
	RequestID   string
	Model       string
	ModelSHA256 string
	// Features: float64 (numbers), string, bool or nil (missing).
	Features map[string]any
	// Score is the probability of the positive class, when the model gave
	// one; Class the predicted class ("" to derive it from Score).
	Score   *float64
	Class   string
	Segment map[string]string
}

// Label is a label joined to its prediction: the prediction's time,
// model, score or class and segment decide where it counts (the window of
// the prediction, not of the label). Features are not used.
type Label struct {
	Prediction Prediction
	Label      string
}

// OtherValue replaces segment values and categories beyond the caps.
const OtherValue = "__other__"

// maxCategories caps the distinct values counted per categorical feature
// and window.
const maxCategories = 1000

// windowSummary is the mergeable state of one segment of one window.
// Features are summarised only in the whole window (segment "").
type windowSummary struct {
	Version     int                            `json:"version"`
	Predictions int64                          `json:"predictions"`
	Labelled    int64                          `json:"labelled"`
	Digests     map[string]int64               `json:"digests,omitempty"`
	BadScores   int64                          `json:"bad_scores,omitempty"`
	Calibration *summary.Calibration           `json:"calibration"`
	Confusion   *summary.Confusion             `json:"confusion"`
	Numeric     map[string]*numericSummary     `json:"numeric,omitempty"`
	Categorical map[string]*summary.Categories `json:"categorical,omitempty"`
}

type numericSummary struct {
	Binned *summary.Binned `json:"binned"`
	Sketch *summary.Sketch `json:"sketch"`
}

const summaryVersion = 1

func (e *Engine) newSummary(whole bool) *windowSummary {
	cal, _ := summary.NewCalibration(e.m.Bins)
	s := &windowSummary{Version: summaryVersion, Calibration: cal, Confusion: summary.NewConfusion(), Digests: map[string]int64{}}
	if whole {
		s.Numeric = map[string]*numericSummary{}
		s.Categorical = map[string]*summary.Categories{}
		for _, cp := range e.ref.Columns {
			if cp.Kind == monitor.Numerical {
				b, _ := summary.NewBinned(cp.Binned.Edges)
				sk, _ := summary.NewSketch(cp.Sketch.Alpha)
				s.Numeric[cp.Column] = &numericSummary{b, sk}
			} else {
				s.Categorical[cp.Column] = summary.NewCategories()
			}
		}
	}
	return s
}

// merge adds o into s.
func (s *windowSummary) merge(o *windowSummary) error {
	s.Predictions += o.Predictions
	s.Labelled += o.Labelled
	s.BadScores += o.BadScores
	for k, v := range o.Digests {
		s.Digests[k] += v
	}
	if err := s.Calibration.Merge(o.Calibration); err != nil {
		return err
	}
	if err := s.Confusion.Merge(o.Confusion); err != nil {
		return err
	}
	for k, v := range o.Numeric {
		mine, ok := s.Numeric[k]
		if !ok {
			continue
		}
		if err := mine.Binned.Merge(v.Binned); err != nil {
			return fmt.Errorf("feature %q: %w", k, err)
		}
		if err := mine.Sketch.Merge(v.Sketch); err != nil {
			return fmt.Errorf("feature %q: %w", k, err)
		}
	}
	for k, v := range o.Categorical {
		if mine, ok := s.Categorical[k]; ok {
			if err := mine.Merge(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeSummary reads a stored summary into a fresh one (so that stored
// data over other bins is rejected rather than mixed).
func (e *Engine) decodeSummary(data []byte, whole bool) (*windowSummary, error) {
	var s windowSummary
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("stored summary: %w", err)
	}
	if s.Version != summaryVersion || s.Calibration == nil || s.Confusion == nil {
		return nil, errors.New("stored summary: unknown version or missing parts")
	}
	if s.Digests == nil {
		s.Digests = map[string]int64{}
	}
	for _, n := range s.Numeric {
		if n == nil || n.Binned == nil || n.Sketch == nil || n.Binned.Validate() != nil || n.Sketch.Validate() != nil {
			return nil, errors.New("stored summary: malformed feature summary")
		}
	}
	for _, c := range s.Categorical {
		if c == nil || c.Counts == nil || c.Validate() != nil {
			return nil, errors.New("stored summary: malformed feature summary")
		}
	}
	fresh := e.newSummary(whole)
	if err := fresh.merge(&s); err != nil {
		return nil, fmt.Errorf("stored summary does not match the monitor's configuration or reference: %w", err)
	}
	return fresh, nil
}

// window is the in-memory state of one window: a summary per segment.
type window struct {
	start    time.Time
	segments map[string]*windowSummary
	perKey   map[string]int // distinct values seen per segment key
	dirty    map[string]bool
}

// segmentNames returns the segments a record counts in: "key=value" for
// each configured key it has (from its segment object, else its
// features), with values past the cap folded into OtherValue.
func (e *Engine) segmentNames(w *window, p *Prediction) []string {
	var out []string
	for _, k := range e.m.Segments {
		v, ok := p.Segment[k]
		if !ok {
			f, found := p.Features[k]
			if !found || f == nil {
				continue
			}
			v = valueText(f)
		}
		if len(v) > 256 {
			v = v[:256]
		}
		name := k + "=" + v
		if _, seen := w.segments[name]; !seen {
			if w.perKey[k] >= e.m.MaxSegmentValues {
				name = k + "=" + OtherValue
			}
		}
		out = append(out, name)
	}
	return out
}

func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

func (e *Engine) segmentSummary(w *window, name string) *windowSummary {
	s, ok := w.segments[name]
	if !ok {
		s = e.newSummary(name == "")
		w.segments[name] = s
		if name != "" {
			k, _, _ := cutSegment(name)
			w.perKey[k]++
		}
	}
	w.dirty[name] = true
	return s
}

func cutSegment(name string) (key, value string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '=' {
			return name[:i], name[i+1:], true
		}
	}
	return name, "", false
}

// predictedClass is the class the monitor counts for a prediction.
func (e *Engine) predictedClass(p *Prediction) (string, bool) {
	if p.Class != "" {
		return p.Class, true
	}
	if p.Score != nil && *p.Score >= 0 && *p.Score <= 1 {
		if *p.Score >= *e.m.DecisionThreshold {
			return e.m.PositiveClass, true
		}
		return e.m.NegativeClass, true
	}
	return "", false
}

func (e *Engine) addPrediction(s *windowSummary, p *Prediction) {
	s.Predictions++
	if p.ModelSHA256 != "" && (len(s.Digests) < 64 || s.Digests[p.ModelSHA256] > 0) {
		s.Digests[p.ModelSHA256]++
	}
	for name, ns := range s.Numeric {
		v, ok := p.Features[name]
		f, isNum := v.(float64)
		if !ok || !isNum {
			f = math.NaN() // absent, null or not a number: missing
		}
		ns.Binned.Add(f)
		ns.Sketch.Add(f)
	}
	for name, cs := range s.Categorical {
		v, ok := p.Features[name]
		if !ok || v == nil {
			cs.Add("", true)
			continue
		}
		t := valueText(v)
		if _, seen := cs.Counts[t]; !seen && len(cs.Counts) >= maxCategories {
			t = OtherValue
		}
		cs.Add(t, false)
	}
}

func (e *Engine) addLabel(s *windowSummary, l *Label) {
	p := &l.Prediction
	if p.Score != nil {
		if !s.Calibration.Add(*p.Score, l.Label == e.m.PositiveClass) {
			s.BadScores++
		}
	}
	pred, ok := e.predictedClass(p)
	if !ok {
		return
	}
	s.Labelled++
	s.Confusion.Add("", l.Label, pred)
}

// sortedSegments returns the segment names of a window, "" first.
func sortedSegments(m map[string]*windowSummary) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
