package oms

import (
	"bytes"
	"crypto"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/custody-ml/custody/internal/testvectors"
)

// fuzzSeeds adds every vector bundle (and its payload) as seeds.
func fuzzSeeds(f *testing.F, payloads bool) {
	f.Helper()
	var files []string
	for _, pat := range []string{
		filepath.Join("sigstore-model-transparency", "scripts", "tests", "*", "model.sig"),
		filepath.Join("ossf-model-signing-spec", "test-vectors", "v1.0", "*", "*.json"),
	} {
		m, _ := filepath.Glob(filepath.Join(testvectors.Dir(f), pat))
		files = append(files, m...)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if !payloads {
			f.Add(data)
			continue
		}
		var b struct {
			DSSEEnvelope struct {
				Payload string `json:"payload"`
			} `json:"dsseEnvelope"`
		}
		if json.Unmarshal(data, &b) == nil {
			if p, err := decodeB64(b.DSSEEnvelope.Payload); err == nil {
				f.Add(p)
			}
		}
	}
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
}

// FuzzParseBundle: no panics; whatever parses marshals and parses again to
// the same bundle.
func FuzzParseBundle(f *testing.F) {
	fuzzSeeds(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseBundle(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled bundle: %v\n%s", err, out)
		}
		out2, _ := b2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("marshal is not stable:\n%s\n%s", out, out2)
		}
		// Every later step must cope with what the parser accepts.
		if b.DSSEEnvelope != nil {
			if p, err := b.Payload(); err == nil {
				ParseStatement(p)
			}
		}
		ParseBlobSignature(data)
	})
}

var fuzzKey, _ = GenerateKey(AlgoECDSAP256)

// FuzzParseEnvelope: no panics; accepted envelopes have a payload and
// signatures that decode.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA==","keyid":null}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30","signatures":[{"sig":"AA-_"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		if _, err := decodeB64(e.Payload); err != nil {
			t.Fatalf("accepted envelope with undecodable payload")
		}
		if len(e.Signatures) == 0 {
			t.Fatalf("accepted envelope without signatures")
		}
		if _, err := verifyEnvelope(e, []crypto.PublicKey{fuzzKey.Public()}); err == nil {
			t.Fatalf("a fuzzed envelope verified with a fresh key")
		}
	})
}

// FuzzParseStatement: no panics; accepted statements are consistent (the
// subject digest follows from the resources) and, when sorted, survive a
// build-marshal-parse round trip unchanged.
func FuzzParseStatement(f *testing.F) {
	fuzzSeeds(f, true)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m","digest":{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{"resources":[],"serialization":{"method":"shards","hash_type":"sha256","shard_size":1e9,"allow_symlinks":false}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err != nil {
			return
		}
		root, err := RootDigest(st.Resources)
		if err != nil || root != st.RootDigest {
			t.Fatalf("accepted a statement whose subject does not follow from its resources")
		}
		if st.PredicateType != PredicateType {
			return
		}
		again, err := NewStatement(st.SubjectName, st.Resources, st.Serialization)
		if err != nil {
			return // unsorted resources (Python order): valid to verify, not to write
		}
		out, err := again.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		st2, err := ParseStatement(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		a, _ := json.Marshal(st)
		b, _ := json.Marshal(st2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the statement:\n%s\n%s", a, b)
		}
	})
}
