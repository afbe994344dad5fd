// Package testvectors locates the published test vectors shared beside the
// repository (../shared/vectors), for tests that check custody against
// outside ground truth.
package testvectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the vectors directory: $CUSTODY_VECTORS if set, else
// <repo>/../shared/vectors. When the directory is missing the test fails in
// CI (CI=true) and is skipped elsewhere, so CI never silently loses coverage.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CUSTODY_VECTORS")
	if dir == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			t.Fatal("testvectors: cannot locate source file")
		}
		// file is <repo>/internal/testvectors/testvectors.go
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "vectors")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test vectors not found at %s (set CUSTODY_VECTORS): %v", dir, err)
		}
		t.Skipf("test vectors not found at %s (set CUSTODY_VECTORS)", dir)
	}
	return dir
}

// Path returns the path of a file or folder inside the vectors directory.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}
