package pickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, globs ...string) {
	for _, g := range globs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzAnalyze: no panics, every error is an *Error wrapping a sentinel,
// events lie inside the input, memory stays bounded by the limits.
func FuzzAnalyze(f *testing.F) {
	addSeeds(f, "../testdata/benign/*.pkl", "../testdata/malicious/*.pkl", "../testdata/benign/*.joblib")
	f.Add(floats(3000, false))
	f.Add([]byte("cos\nsystem\n(S'id'\ntR."))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxStack: 1 << 16, MaxMemo: 1 << 16, MaxMarks: 1 << 12, MaxOps: 1 << 20}
		var evs []Event
		_, err := AnalyzeStream(bytes.NewReader(data), Options{Limits: lim, Joblib: true, OnEvent: func(e Event) { evs = append(evs, e) }})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrLimit)) {
				t.Fatalf("error %T %v is not a located sentinel", err, err)
			}
		}
		for _, e := range evs {
			if e.Offset < 0 || e.Offset >= int64(len(data)) {
				t.Fatalf("event %+v outside the %d-byte input", e, len(data))
			}
		}
	})
}
