package predict

import (
	"testing"

	"github.com/custody-ml/custody/internal/predstore"
)

// BenchmarkFastParse parses one typical record (ten features, a segment,
// class probabilities) with the fast path, as ingest does for each record.
func BenchmarkFastParse(b *testing.B) {
	raw := []byte(`{"ts":"2026-11-22T05:00:00.123Z","request_id":"r-0001","model":"win-probability","model_sha256":"0123456789abcdef",` +
		`"features":{"a":1.5,"b":-2,"c":"NBA","d":0.25,"e":true,"f":null,"g":1e-3,"h":"home","i":42,"j":7.125},` +
		`"segment":{"sport":"NBA","region":"eu"},"prediction":{"win":0.61,"loss":0.39},"latency_ms":3.2}`)
	p := fastParser{lim: DefaultLimits()}
	var r predstore.Record
	if !p.parse(raw, &r) {
		b.Fatal("the fast path refused the benchmark record")
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if !p.parse(raw, &r) {
			b.Fatal("refused")
		}
	}
}
