//go:build linux || darwin || freebsd || netbsd || openbsd

package digest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMappedAndReadPathsAgree hashes files large enough for the mapping
// path, with shard boundaries that are not page aligned, both ways.
func TestMappedAndReadPathsAgree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	os.Mkdir(dir, 0o755)
	for name, size := range map[string]int{"a.bin": 5<<20 + 123, "b.bin": 1 << 20, "c.bin": 3<<20 - 1, "small": 100} {
		data := make([]byte, size)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, opts := range []Options{{}, {ShardSize: 1<<20 + 4097}, {ShardSize: 3 << 20}, {ShardSize: 40 << 20}} {
		mapped := mustHash(t, dir, opts)
		noMmap = true
		read := mustHash(t, dir, opts)
		noMmap = false
		if !mapped.Digest.Equal(read.Digest) || !Compare(mapped, read).Empty() {
			t.Fatalf("shard %d: mapped and read paths disagree", opts.ShardSize)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "a.bin"))
		if opts.ShardSize == 0 && mapped.Resources[0].Digest != Digest(sha256.Sum256(data)).Hex() {
			t.Fatal("mapped digest is not the file's SHA-256")
		}
	}
}

// TestMappedTruncation truncates a file under the mapping: the fault must
// become ErrChanged, not crash the process.
func TestMappedTruncation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.bin")
	data := make([]byte, 8<<20)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	_, err = hashMapped(context.Background(), f, fileEntry{name: "w.bin", info: info}, 0, 8<<20, sha256.New(), nil)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
}
