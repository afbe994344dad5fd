package scan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzScan runs the whole scanner (sniffing, containers, every format) on
// arbitrary bytes: no panics, a valid verdict, bounded work.
func FuzzScan(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*/*")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
	s := New(nil, Limits{MaxDecompressed: 64 << 20, MaxBuffer: 16 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := s.Scan(t.Context(), "fuzz", bytes.NewReader(data), int64(len(data)))
		if r.Verdict < Safe || r.Verdict > Dangerous {
			t.Fatalf("verdict %d", r.Verdict)
		}
		for _, fd := range r.Findings {
			if fd.Verdict > r.Verdict {
				t.Fatalf("finding %+v worse than the verdict %s", fd, r.Verdict)
			}
		}
	})
}
