package digest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkHash measures custody's hashing of a page-cached 256 MiB file,
// through the mapping and the read paths, against SHA-256 of bytes already
// in memory (the ceiling for one core). bench/hash.sh compares the whole
// binary against openssl over real files.
func BenchmarkHash(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(dir, "w.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("memory-1core", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
	data = nil
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"file-1worker", Options{Workers: 1}},
		{"shards-32MiB", Options{ShardSize: 32 << 20}},
	} {
		for _, mapped := range []bool{true, false} {
			name := c.name + "-read"
			if mapped {
				name = c.name + "-mapped"
			}
			b.Run(name, func(b *testing.B) {
				noMmap = !mapped
				defer func() { noMmap = false }()
				b.SetBytes(size)
				for b.Loop() {
					if _, err := Hash(context.Background(), path, c.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
