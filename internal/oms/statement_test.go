package oms

import (
	"context"
	"crypto"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

const okRoot = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // sha256 of nothing

// stmt builds a statement payload with the given predicate type, subject
// digest, resources and serialization JSON.
func stmt(predType, root, resources, ser string) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m","digest":{"sha256":"` + root +
		`"}}],"predicateType":"` + predType + `","predicate":{"resources":` + resources + `,"serialization":` + ser + `}}`)
}

func TestParseStatement(t *testing.T) {
	a := `{"name":"a","algorithm":"sha256","digest":"` + strings.Repeat("ab", 32) + `"}`
	rootA, _ := RootDigest([]Resource{{Name: "a", Algorithm: "sha256", Digest: strings.Repeat("ab", 32)}})
	root := func() string { return strings.TrimLeft(string(stmtHex(rootA)), " ") }
	files := `{"method":"files","hash_type":"sha256","allow_symlinks":false}`
	shardRes := `[{"name":"a:0:10","algorithm":"sha256-sharded-10","digest":"` + strings.Repeat("ab", 32) + `"}]`
	shardRoot, _ := RootDigest([]Resource{{Name: "a:0:10", Digest: strings.Repeat("ab", 32)}})

	ok := map[string][]byte{
		"minimal":              stmt(PredicateType, root(), "["+a+"]", files),
		"python shard float":   stmt(PredicateType, string(stmtHex(shardRoot)), shardRes, `{"method":"shards","hash_type":"sha256","shard_size":10.0,"allow_symlinks":false}`),
		"extra resource field": stmt(PredicateType, root(), `[{"name":"a","algorithm":"sha256","digest":"`+strings.Repeat("ab", 32)+`","annotations":{"x":"y"}}]`, files),
		"python single file":   stmt(PredicateType, root(), `[{"name":".","algorithm":"sha256","digest":"`+strings.Repeat("ab", 32)+`"}]`, files),
	}
	for name, p := range ok {
		if _, err := ParseStatement(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string]struct {
		payload []byte
		want    string
	}{
		"wrong predicate":         {stmt("https://example.com/other", root(), "["+a+"]", files), "predicate type"},
		"subject mismatch":        {stmt(PredicateType, okRoot, "["+a+"]", files), "does not match the resources"},
		"no resources":            {stmt(PredicateType, okRoot, "[]", files), "no resources"},
		"duplicate key":           {[]byte(`{"_type":"https://in-toto.io/Statement/v1","_type":"x"}`), "duplicate JSON key"},
		"unknown predicate field": {[]byte(strings.Replace(string(stmt(PredicateType, root(), "["+a+"]", files)), `"resources"`, `"extra":1,"resources"`, 1)), "unknown predicate field"},
		"unknown serialization":   {stmt(PredicateType, root(), "["+a+"]", `{"method":"files","hash_type":"sha256","allow_symlinks":false,"x":1}`), "unknown serialization field"},
		"missing allow_symlinks":  {stmt(PredicateType, root(), "["+a+"]", `{"method":"files","hash_type":"sha256"}`), "allow_symlinks"},
		"shard size for files":    {stmt(PredicateType, root(), "["+a+"]", `{"method":"files","hash_type":"sha256","shard_size":5,"allow_symlinks":false}`), "shard_size"},
		"fractional shard size":   {stmt(PredicateType, string(stmtHex(shardRoot)), shardRes, `{"method":"shards","hash_type":"sha256","shard_size":10.5,"allow_symlinks":false}`), "not a positive integer"},
		"parent path":             {stmt(PredicateType, root(), `[{"name":"../a","algorithm":"sha256","digest":"`+strings.Repeat("ab", 32)+`"}]`, files), "escapes"},
		"absolute path":           {stmt(PredicateType, root(), `[{"name":"/a","algorithm":"sha256","digest":"`+strings.Repeat("ab", 32)+`"}]`, files), "absolute"},
		"uppercase digest":        {stmt(PredicateType, root(), `[{"name":"a","algorithm":"sha256","digest":"`+strings.Repeat("AB", 32)+`"}]`, files), "lowercase hex"},
		"algorithm mismatch":      {stmt(PredicateType, root(), `[{"name":"a","algorithm":"md5","digest":"`+strings.Repeat("ab", 32)+`"}]`, files), "algorithm"},
		"repeated resource":       {stmt(PredicateType, root(), "["+a+","+a+"]", files), "listed twice"},
		"trailing data":           {append(stmt(PredicateType, root(), "["+a+"]", files), []byte(" {}")...), "trailing data"},
		"statement v0.1":          {[]byte(strings.Replace(string(stmt(PredicateType, root(), "["+a+"]", files)), "Statement/v1", "Statement/v0.1", 1)), "_type"},
	}
	for name, c := range bad {
		_, err := ParseStatement(c.payload)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func stmtHex(d [32]byte) []byte {
	const hexd = "0123456789abcdef"
	out := make([]byte, 64)
	for i, b := range d {
		out[2*i], out[2*i+1] = hexd[b>>4], hexd[b&15]
	}
	return out
}

// TestSignedWrongPredicate: a statement with another predicate type is
// rejected even when its signature is valid.
func TestSignedWrongPredicate(t *testing.T) {
	key := mustKey(t, AlgoECDSAP256)
	st, err := NewStatement("m", []Resource{{Name: "a", Algorithm: "sha256", Digest: strings.Repeat("ab", 32)}}, Serialization{Method: "files", HashType: "sha256"})
	if err != nil {
		t.Fatal(err)
	}
	st.PredicateType = "https://slsa.dev/provenance/v1"
	if _, err := st.Marshal(); err == nil {
		t.Fatal("marshalled a statement with a foreign predicate type")
	}
	st.PredicateType = PredicateType
	b, err := Sign(context.Background(), st, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := b.Payload()
	forged := strings.Replace(string(payload), PredicateType, "https://slsa.dev/provenance/v1", 1)
	env, err := (&dsseSignerEnv{key}).sign([]byte(forged))
	if err != nil {
		t.Fatal(err)
	}
	b.DSSEEnvelope = env
	if _, err := VerifyKeys(b, []crypto.PublicKey{key.Public()}); err == nil || !strings.Contains(err.Error(), "predicate type") {
		t.Fatalf("err = %v, want a predicate type error", err)
	}
}

// dsseSignerEnv signs an arbitrary payload into an envelope, for tests.
type dsseSignerEnv struct{ key crypto.Signer }

func (s *dsseSignerEnv) sign(payload []byte) (*dsse.Envelope, error) {
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s.key})
	if err != nil {
		return nil, err
	}
	return es.SignPayload(context.Background(), PayloadType, payload)
}
