package sigcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-ml/custody/internal/digest"
)

func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), []byte("aaa"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.bin"), []byte("bbb"), 0o644)
	m, err := digest.Hash(t.Context(), dir, digest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParsePublicKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := New(keys)
	b, err := Sign(key, m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Verify(t.Context(), b, m)
	if err != nil || !strings.HasPrefix(s.Identity, "key ") || len(s.KeyIDs) != 1 {
		t.Fatalf("Verify = %+v, %v", s, err)
	}
	// Other bytes: the manifest no longer matches the signed statement.
	os.WriteFile(filepath.Join(dir, "b.bin"), []byte("bbX"), 0o644)
	m2, _ := digest.Hash(t.Context(), dir, digest.Options{})
	if _, err := v.Verify(t.Context(), b, m2); err == nil {
		t.Fatal("bundle verified for changed bytes")
	}
	// Another key.
	_, pub2, _ := GenerateKey()
	keys2, _ := ParsePublicKeys(pub2)
	v2, _ := New(keys2)
	if _, err := v2.Verify(t.Context(), b, m); err == nil {
		t.Fatal("bundle verified with an untrusted key")
	}
	// A flipped payload byte.
	bad := []byte(strings.Replace(string(b), `"payload":"`, `"payload":"A`, 1))
	if _, err := v.Verify(t.Context(), bad, m); err == nil {
		t.Fatal("tampered bundle verified")
	}
}
