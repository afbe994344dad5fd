package policy

import (
	"encoding/json"
	"testing"
)

// FuzzPromote checks that the default promote policy never allows an input
// whose scan verdict is not "safe" or that has no trusted signature, and that
// an allow never comes with reasons.
func FuzzPromote(f *testing.F) {
	e, err := NewDefault(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(goodInput))
	f.Add([]byte(`{"version":{"scan":{"verdict":"safe"},"signatures":[{"trusted":"true"}],"approvals":[{"approver":"b"}],"publisher":"a"}}`))
	f.Add([]byte(`{"version":{"scan":{"verdict":"SAFE"},"signatures":[{"trusted":true}],"approvals":[{"approver":"b"}],"publisher":"a"}}`))
	f.Add([]byte(`{"version":{"scan":{"verdict":"safe"},"signatures":[{"trusted":true}],"approvals":[{"approver":"a"}],"publisher":"a"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := e.Evaluate(t.Context(), "promote", in)
		if err != nil || !d.Allow {
			return
		}
		if len(d.Deny) != 0 {
			t.Fatalf("allow with reasons %q", d.Deny)
		}
		var doc struct {
			Version struct {
				Scan struct {
					Verdict any `json:"verdict"`
				} `json:"scan"`
				Signatures []struct {
					Trusted any `json:"trusted"`
				} `json:"signatures"`
			} `json:"version"`
			Config struct {
				TrustedKeys []any `json:"trusted_keys"`
			} `json:"config"`
		}
		if err := json.Unmarshal(in, &doc); err != nil {
			return // OPA's parser accepted what encoding/json does not; nothing to compare
		}
		if doc.Version.Scan.Verdict != "safe" {
			t.Fatalf("allowed with scan verdict %v", doc.Version.Scan.Verdict)
		}
		trusted := len(doc.Config.TrustedKeys) > 0
		for _, s := range doc.Version.Signatures {
			if s.Trusted == true {
				trusted = true
			}
		}
		if !trusted {
			t.Fatalf("allowed without a trusted signature: %s", in)
		}
	})
}
