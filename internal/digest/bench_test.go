package digest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkHash measures custody's hashing of a page-cached file against
// SHA-256 of the same bytes already in memory (the ceiling for one core).
// bench/hash.sh compares against openssl over real files.
func BenchmarkHash(b *testing.B) {
	const size = 64 << 20
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
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"file-1worker", Options{Workers: 1}},
		{"shards-8MiB", Options{ShardSize: 8 << 20}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := Hash(context.Background(), path, c.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
