package digest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustHash(t *testing.T, p string, opts Options) *Manifest {
	t.Helper()
	m, err := Hash(context.Background(), p, opts)
	if err != nil {
		t.Fatalf("Hash(%s): %v", p, err)
	}
	return m
}

var sample = map[string]string{
	"config.json":             `{"layers": 2}`,
	"weights/part-1.bin":      strings.Repeat("\x01\x02", 5000),
	"weights/part-2.bin":      strings.Repeat("\x03", 777),
	"empty":                   "",
	".dotfile":                "hidden but hashed",
	"unicode ünï cødé 模型.txt": "names are UTF-8",
	"with space/and more":     "spaces",
	"back\\slash":             "backslash in a name",
	"sub/.git/HEAD":           "a nested .git is not ignored",
	".git/HEAD":               "top-level .git is ignored",
	".gitignore":              "*.tmp",
	".github/workflows/x":     "ignored",
	".gitattributes":          "ignored",
}

func TestSingleFileDigestIsPlainSHA256(t *testing.T) {
	dir := writeTree(t, map[string]string{"model.bin": "some weights"})
	m := mustHash(t, filepath.Join(dir, "model.bin"), Options{})
	if want := sha256.Sum256([]byte("some weights")); m.Digest != Digest(want) {
		t.Fatalf("digest %s, want plain sha256 %x", m.Digest, want)
	}
	if m.Kind != KindFile || len(m.Resources) != 1 || m.Resources[0].Name != "model.bin" {
		t.Fatalf("unexpected manifest %+v", m)
	}
	// OMS root of one resource is the SHA-256 of its raw digest.
	raw := sha256.Sum256([]byte("some weights"))
	if m.OMSRoot != Digest(sha256.Sum256(raw[:])) {
		t.Fatalf("oms_root %s", m.OMSRoot)
	}
}

func TestDirectoryManifest(t *testing.T) {
	dir := writeTree(t, sample)
	m := mustHash(t, dir, Options{})
	var names []string
	for _, r := range m.Resources {
		names = append(names, r.Name)
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); r.Digest != Digest(sum).Hex() {
			t.Errorf("%s: digest %s, want %x", r.Name, r.Digest, sum)
		}
	}
	want := []string{".dotfile", "back\\slash", "config.json", "empty", "sub/.git/HEAD", "unicode ünï cødé 模型.txt", "weights/part-1.bin", "weights/part-2.bin", "with space/and more"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("resources\n got %q\nwant %q", names, want)
	}
	if got := strings.Join(m.Serialization.IgnorePaths, ","); got != ".git,.gitattributes,.github,.gitignore" {
		t.Errorf("ignore_paths = %s", got)
	}
	if m.Digest != Digest(sha256.Sum256(m.CanonicalText())) {
		t.Fatal("pin is not the SHA-256 of the canonical text")
	}
}

// TestCanonicalTextMatchesShell rebuilds the pin with the standard tools
// command documented in docs/manifest.md.
func TestCanonicalTextMatchesShell(t *testing.T) {
	for _, tool := range []string{"bash", "find", "sort", "sha256sum", "xargs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dir := writeTree(t, sample)
	m := mustHash(t, dir, Options{})
	script := `cd "$1" && { printf 'custody-manifest v1 files\n'; find . \( -path ./.git -o -path ./.github -o -path ./.gitignore -o -path ./.gitattributes \) -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0r sha256sum --; } | sha256sum`
	out, err := exec.Command("bash", "-c", script, "bash", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out))[0]; got != m.Digest.Hex() {
		t.Fatalf("shell pipeline gives %s, custody %s", got, m.Digest.Hex())
	}
}

func TestTamperingChangesDigest(t *testing.T) {
	base := map[string]string{"a.bin": "aaaa", "b.bin": "bbbb", "d/c.bin": "cccc"}
	pin := mustHash(t, writeTree(t, base), Options{}).Digest
	pinShards := mustHash(t, writeTree(t, base), Options{ShardSize: 3}).Digest
	edit := func(f func(m map[string]string)) map[string]string {
		c := map[string]string{}
		for k, v := range base {
			c[k] = v
		}
		f(c)
		return c
	}
	cases := map[string]map[string]string{
		"byte flip":    edit(func(m map[string]string) { m["a.bin"] = "aaab" }),
		"truncation":   edit(func(m map[string]string) { m["a.bin"] = "aaa" }),
		"appended":     edit(func(m map[string]string) { m["a.bin"] = "aaaaa" }),
		"added":        edit(func(m map[string]string) { m["new.bin"] = "" }),
		"added nested": edit(func(m map[string]string) { m["d/e/f"] = "x" }),
		"removed":      edit(func(m map[string]string) { delete(m, "b.bin") }),
		"renamed":      edit(func(m map[string]string) { m["b2.bin"] = m["b.bin"]; delete(m, "b.bin") }),
		"moved":        edit(func(m map[string]string) { m["c.bin"] = m["d/c.bin"]; delete(m, "d/c.bin") }),
		"swapped":      edit(func(m map[string]string) { m["a.bin"], m["b.bin"] = m["b.bin"], m["a.bin"] }),
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, files)
			if got := mustHash(t, dir, Options{}).Digest; got == pin {
				t.Errorf("files method: digest unchanged")
			}
			if got := mustHash(t, dir, Options{ShardSize: 3}).Digest; got == pinShards {
				t.Errorf("shards method: digest unchanged")
			}
		})
	}
}

func TestShardsBindEmptyFilesAndShardSize(t *testing.T) {
	a := mustHash(t, writeTree(t, map[string]string{"w": "12345678"}), Options{ShardSize: 4})
	b := mustHash(t, writeTree(t, map[string]string{"w": "12345678", "e": ""}), Options{ShardSize: 4})
	c := mustHash(t, writeTree(t, map[string]string{"w": "12345678"}), Options{ShardSize: 8})
	if a.Digest == b.Digest {
		t.Error("adding an empty file did not change the sharded pin")
	}
	if len(b.Resources) != len(a.Resources) {
		t.Error("OMS resources must omit empty files with the shards method")
	}
	if a.Digest == c.Digest {
		t.Error("shard size is not bound by the pin")
	}
	// A file named like a shard range cannot impersonate a sharded manifest.
	f := mustHash(t, writeTree(t, map[string]string{"w:0:8": "12345678"}), Options{})
	if f.Digest == c.Digest {
		t.Error("files and shards manifests collide")
	}
}

func TestDeterministicWhateverTheScheduling(t *testing.T) {
	files := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		buf := make([]byte, rng.IntN(50000))
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("d%d/f%02d", i%5, i)] = string(buf)
	}
	dir := writeTree(t, files)
	for _, shard := range []int64{0, 1000, 4096} {
		var ref []byte
		for _, opts := range []Options{{Workers: 1, BufferSize: 7}, {Workers: 3, BufferSize: 4096}, {Workers: 16}} {
			opts.ShardSize = shard
			js, err := json.Marshal(mustHash(t, dir, opts))
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = js
			} else if !bytes.Equal(ref, js) {
				t.Fatalf("shard %d: manifest depends on scheduling", shard)
			}
		}
	}
}

func TestIgnores(t *testing.T) {
	dir := writeTree(t, map[string]string{"keep": "k", "cache/x": "c", "sub/cache": "s", "model.sig": "sig"})
	m := mustHash(t, dir, Options{Ignore: []string{"cache", "./model.sig"}})
	var names []string
	for _, r := range m.Resources {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "keep,sub/cache" {
		t.Fatalf("resources %s", got)
	}
	if got := strings.Join(m.Serialization.IgnorePaths, ","); got != ".git,.gitattributes,.github,.gitignore,cache,model.sig" {
		t.Fatalf("ignore_paths %s", got)
	}
	// Absolute paths inside the root are made relative.
	m2 := mustHash(t, dir, Options{Ignore: []string{filepath.Join(dir, "cache"), filepath.Join(dir, "model.sig")}})
	if m2.Digest != m.Digest {
		t.Fatal("absolute ignore path not equivalent to the relative one")
	}
	for _, bad := range []string{"*.bin", "../x", "a/../b", "", ".", "/elsewhere/x", "ca?he", "[a]"} {
		if _, err := Hash(context.Background(), dir, Options{Ignore: []string{bad}}); !errors.Is(err, ErrBadOptions) {
			t.Errorf("ignore %q: got %v, want ErrBadOptions", bad, err)
		}
	}
	if _, err := Hash(context.Background(), dir, Options{Ignore: []string{"keep", "sub", "cache", "model.sig"}}); !errors.Is(err, ErrEmptyModel) {
		t.Errorf("everything ignored: got %v, want ErrEmptyModel", err)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("symlink", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a": "a"})
		if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		if _, err := Hash(ctx, dir, Options{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "link") {
			t.Fatalf("got %v, want a symlink refusal", err)
		}
		m, err := Hash(ctx, dir, Options{AllowSymlinks: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Resources) != 2 || m.Resources[1].Name != "link" || m.Resources[0].Digest != m.Resources[1].Digest {
			t.Fatalf("link not hashed under its own name: %+v", m.Resources)
		}
	})
	t.Run("symlink out of the root", func(t *testing.T) {
		outside := writeTree(t, map[string]string{"secret": "s"})
		dir := writeTree(t, map[string]string{"a": "a"})
		for _, target := range []string{filepath.Join(outside, "secret"), "../../" + filepath.Base(filepath.Dir(outside)) + "/model/secret", "/etc"} {
			os.Remove(filepath.Join(dir, "link"))
			if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			if _, err := Hash(ctx, dir, Options{AllowSymlinks: true}); !errors.Is(err, ErrRefused) {
				t.Fatalf("link to %s: got %v, want refusal", target, err)
			}
		}
	})
	t.Run("symlink cycle", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"d/a": "a"})
		if err := os.Symlink("..", filepath.Join(dir, "d", "up")); err != nil {
			t.Fatal(err)
		}
		if _, err := Hash(ctx, dir, Options{AllowSymlinks: true}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "cycle") {
			t.Fatalf("got %v, want a cycle refusal", err)
		}
	})
	t.Run("dangling symlink", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a": "a"})
		if err := os.Symlink("nowhere", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		if _, err := Hash(ctx, dir, Options{AllowSymlinks: true}); !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want refusal", err)
		}
	})
	t.Run("symlinked root", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a": "a"})
		link := filepath.Join(t.TempDir(), "current")
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		if _, err := Hash(ctx, link, Options{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want refusal", err)
		}
		if m, err := Hash(ctx, link, Options{AllowSymlinks: true}); err != nil || m.Digest != mustHash(t, dir, Options{}).Digest {
			t.Fatalf("allowed symlinked root: %v", err)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a": "a"})
		if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
			t.Skip(err)
		}
		if _, err := Hash(ctx, dir, Options{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("got %v, want a FIFO refusal", err)
		}
		if _, err := Hash(ctx, filepath.Join(dir, "pipe"), Options{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("FIFO as the model: got %v", err)
		}
	})
	t.Run("socket", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"a": "a"})
		l, err := net.Listen("unix", filepath.Join(dir, "sock"))
		if err != nil {
			t.Skip(err)
		}
		defer l.Close()
		if _, err := Hash(ctx, dir, Options{}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "socket") {
			t.Fatalf("got %v, want a socket refusal", err)
		}
	})
	t.Run("device", func(t *testing.T) {
		if _, err := Hash(ctx, "/dev/null", Options{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want refusal", err)
		}
	})
	t.Run("control character in a name", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"bad\nname": "x"})
		if _, err := Hash(ctx, dir, Options{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want refusal", err)
		}
	})
	t.Run("invalid UTF-8 name", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"bad\xffname": "x"})
		if _, err := Hash(ctx, dir, Options{}); !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v, want refusal", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		dir := writeTree(t, map[string]string{"a": "a"})
		os.Chmod(filepath.Join(dir, "a"), 0)
		if _, err := Hash(ctx, dir, Options{}); err == nil || !strings.Contains(err.Error(), "a:") {
			t.Fatalf("got %v, want an error naming the file", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := Hash(ctx, filepath.Join(t.TempDir(), "nope"), Options{}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("negative shard size", func(t *testing.T) {
		if _, err := Hash(ctx, writeTree(t, sample), Options{ShardSize: -1}); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestChangeDuringHashing changes files between enumeration and hashing,
// the window a concurrent writer would use.
func TestChangeDuringHashing(t *testing.T) {
	for name, mutate := range map[string]func(p string){
		"grown": func(p string) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("more"))
			f.Close()
		},
		"shrunk":   func(p string) { os.Truncate(p, 3) },
		"replaced": func(p string) { os.Remove(p); os.WriteFile(p, []byte("0123456789"), 0o644) },
		"symlink swapped in": func(p string) {
			os.Rename(p, p+".orig")
			os.Symlink(filepath.Base(p)+".orig", p)
		},
	} {
		for _, shard := range []int64{0, 4} {
			t.Run(name, func(t *testing.T) {
				dir := writeTree(t, map[string]string{"w": "0123456789"})
				m, err := enumerate(dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.root.Close()
				mutate(filepath.Join(dir, "w"))
				err = hashUnits(context.Background(), m, makeUnits(m, shard), Options{}, nil)
				if !errors.Is(err, ErrChanged) && !errors.Is(err, ErrRefused) {
					t.Fatalf("got %v, want ErrChanged", err)
				}
			})
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Hash(ctx, writeTree(t, sample), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestCompare(t *testing.T) {
	want := mustHash(t, writeTree(t, map[string]string{"a": "1", "b": "2", "c": "3"}), Options{})
	got := mustHash(t, writeTree(t, map[string]string{"a": "1", "b": "x", "d": "4"}), Options{})
	d := Compare(want, got)
	if strings.Join(d.Changed, ",") != "b" || strings.Join(d.Added, ",") != "d" || strings.Join(d.Missing, ",") != "c" {
		t.Fatalf("diff %+v", d)
	}
	if !Compare(want, want).Empty() {
		t.Fatal("a manifest differs from itself")
	}
}

func TestManifestRoundTrip(t *testing.T) {
	for _, opts := range []Options{{}, {ShardSize: 1000}} {
		m := mustHash(t, writeTree(t, sample), opts)
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadManifest(bytes.NewReader(js))
		if err != nil {
			t.Fatalf("ReadManifest: %v\n%s", err, js)
		}
		if !back.Digest.Equal(m.Digest) || !Compare(m, back).Empty() {
			t.Fatal("round trip changed the manifest")
		}
	}
	single := mustHash(t, filepath.Join(writeTree(t, sample), "config.json"), Options{})
	js, _ := json.Marshal(single)
	if _, err := ReadManifest(bytes.NewReader(js)); err != nil {
		t.Fatal(err)
	}
}

func TestReadManifestRejectsInconsistent(t *testing.T) {
	m := mustHash(t, writeTree(t, map[string]string{"a": "1", "b": "2"}), Options{})
	js, _ := json.Marshal(m)
	other := strings.Repeat("0", 64)
	for name, edit := range map[string]func(string) string{
		"digest swapped":   func(s string) string { return strings.Replace(s, m.Digest.Hex(), other, 1) },
		"oms_root swapped": func(s string) string { return strings.Replace(s, m.OMSRoot.Hex(), other, 1) },
		"resource changed": func(s string) string { return strings.Replace(s, m.Resources[0].Digest, other, 1) },
		"renamed":          func(s string) string { return strings.Replace(s, `"name":"b"`, `"name":"c"`, 2) },
		"traversal":        func(s string) string { return strings.Replace(s, `"name":"b"`, `"name":"../b"`, 2) },
		"bad kind":         func(s string) string { return strings.Replace(s, `"directory"`, `"dir"`, 1) },
		"bad method":       func(s string) string { return strings.Replace(s, `"files"`, `"blobs"`, 1) },
		"trailing":         func(s string) string { return s + "{}" },
		"not json":         func(s string) string { return s[:len(s)/2] },
	} {
		if _, err := ReadManifest(strings.NewReader(edit(string(js)))); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: got %v, want ErrBadManifest", name, err)
		}
	}
}

func TestHashCopy(t *testing.T) {
	src := writeTree(t, sample)
	for _, opts := range []Options{{}, {ShardSize: 1000}} {
		dst := filepath.Join(t.TempDir(), "stage")
		m, err := HashCopy(context.Background(), src, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		again := mustHash(t, dst, opts)
		if !again.Digest.Equal(m.Digest) {
			t.Fatal("staged copy does not hash to the source's digest")
		}
		for _, r := range m.Files {
			st, err := os.Stat(filepath.Join(dst, filepath.FromSlash(r.Name)))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o444 {
				t.Errorf("%s: mode %v, want read-only", r.Name, st.Mode())
			}
		}
		if st, _ := os.Stat(dst); st.Mode().Perm() != 0o555 {
			t.Errorf("stage dir mode %v", st.Mode())
		}
		removeAll(dst)
	}
	// Single file.
	dst := filepath.Join(t.TempDir(), "stage")
	if _, err := HashCopy(context.Background(), filepath.Join(src, "config.json"), dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "config.json")); err != nil || string(b) != sample["config.json"] {
		t.Fatalf("single-file stage: %v", err)
	}
	// Failure leaves nothing behind.
	bad := writeTree(t, map[string]string{"a": "a"})
	os.Symlink("a", filepath.Join(bad, "link"))
	dst = filepath.Join(t.TempDir(), "stage")
	if _, err := HashCopy(context.Background(), bad, dst, Options{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial stage left behind: %v", err)
	}
	// An existing destination is never overwritten.
	if _, err := HashCopy(context.Background(), src, t.TempDir(), Options{}); err == nil {
		t.Fatal("staged into an existing directory")
	}
}

func TestParseDigest(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, ok := range []string{"sha256:" + h, h, "sha256:" + strings.ToUpper(h)} {
		if _, err := ParseDigest(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "sha256:", "md5:" + h, "sha256:" + h[:62], h + "00", "sha256:" + h[:63] + "g", "sha256: " + h[1:]} {
		if _, err := ParseDigest(bad); !errors.Is(err, ErrBadDigest) {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}
