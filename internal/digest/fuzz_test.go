package digest

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
	"testing"
)

func FuzzReadManifest(f *testing.F) {
	for _, m := range []*Manifest{
		{Kind: KindFile, Name: "m.bin", Serialization: Serialization{Method: MethodFiles, HashType: "sha256"}},
	} {
		js, _ := json.Marshal(m)
		f.Add(js)
	}
	f.Add([]byte(`{"kind":"directory","name":"m","digest":"sha256:` + strings.Repeat("0", 64) + `","oms_root":"sha256:` + strings.Repeat("0", 64) + `","serialization":{"method":"shards","hash_type":"sha256","shard_size":4,"allow_symlinks":false},"resources":[{"name":"a:0:4","algorithm":"sha256","digest":"` + strings.Repeat("a", 64) + `"}],"files":[{"name":"a","size":4}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever parses is self-consistent, and survives a round trip.
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadManifest(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("re-read of an accepted manifest failed: %v", err)
		}
		if !back.Digest.Equal(m.Digest) || !Compare(m, back).Empty() {
			t.Fatal("round trip changed the manifest")
		}
	})
}

func FuzzNormalizeIgnore(f *testing.F) {
	for _, s := range []string{"a", "./a/b/", "a//b", "../a", "/abs", "a/./b", "*", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n, err := NormalizeIgnore("/root", p)
		if err != nil {
			return
		}
		if n == "" || strings.HasPrefix(n, "/") || path.Clean(n) != n || n == "." || strings.HasPrefix(n, "../") || n == ".." || strings.Contains(n, "/../") || strings.ContainsAny(n, "*?[") {
			t.Fatalf("NormalizeIgnore(%q) = %q is not canonical", p, n)
		}
		if again, err := NormalizeIgnore("/root", n); err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", p, n, again, err)
		}
	})
}

func FuzzSplitShardName(f *testing.F) {
	for _, s := range []string{"a:0:8", "a:b:0:8", ":0:1", "a:01:2", "a:-1:2", "a:2:1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file, start, end, err := SplitShardName(s)
		if err != nil {
			return
		}
		if shardName(file, start, end) != s {
			t.Fatalf("%q does not round-trip: %q %d %d", s, file, start, end)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32))
	f.Add(strings.Repeat("AB", 32))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if back, err := ParseDigest(d.String()); err != nil || back != d {
			t.Fatalf("round trip of %q failed", s)
		}
	})
}
