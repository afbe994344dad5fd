package attest

import (
	"testing"

	"github.com/custody-ml/custody/internal/digest"
)

// FuzzParse: the strict statement reader never panics, and whatever it
// accepts has a subject it can report or refuse cleanly.
func FuzzParse(f *testing.F) {
	m := &digest.Manifest{Digest: digest.Digest{1}, OMSRoot: digest.Digest{2}, Serialization: digest.Serialization{Method: "files", HashType: "sha256"}}
	good, err := Statement(Input{ModelName: "m", Manifest: m, Run: Run{ID: "r", Params: map[string]string{"a": "b"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse(data)
		if err != nil {
			return
		}
		if _, _, _, _, err := p.Subject(); err == nil {
			if err := p.Check(m); err != nil && string(data) == string(good) {
				t.Errorf("the statement built for m does not match m: %v", err)
			}
		}
	})
}
