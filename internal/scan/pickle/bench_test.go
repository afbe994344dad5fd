package pickle

import (
	"bytes"
	"testing"
)

// BenchmarkFloats: a pickle of 2 million floats (about 18 MB).
func BenchmarkFloats(b *testing.B) {
	data := floats(2_000_000, false)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := AnalyzeStream(bytes.NewReader(data), Options{OnEvent: func(Event) {}}); err != nil {
			b.Fatal(err)
		}
	}
}
