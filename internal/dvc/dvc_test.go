package dvc

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
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

// TestDirHashVectors checks trees whose .dir hashes are published: the issue's
// vector, and vectors asserted in DVC 3.64's own tests (tests/func/test_diff.py,
// dvc/testing/workspace_tests.py + tests/func/test_import_url.py,
// tests/func/test_data_cloud.py::test_output_remote).
func TestDirHashVectors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"issue foo bar", map[string]string{"foo": "foo", "bar": "bar"}, "5ea40360f5b4ec688df672a4db9c17d1.dir"},
		{"test_added_deep", map[string]string{"file": "text"}, "0dab3fae569586d4c33272e5011605bf.dir"},
		{"test_directories 1", map[string]string{"1": "1", "2": "2"}, "5fb6b29836c388e093ca0715c872fe2a.dir"},
		{"test_directories 2", map[string]string{"1": "1", "2": "two", "3": "3"}, "9b5faf37366b3370fd98e3e60ca439c1.dir"},
		{"test_directories 3", map[string]string{"1": "1", "3": "3"}, "83ae82fb367ac9926455870773ff09e6.dir"},
		{"test_import_dir nested", map[string]string{"file": "file", "subdir/subfile": "subfile"}, "b6dcab6ccd17ca0a8bf4a215a37d14cc.dir"},
		{"test_output_remote", map[string]string{"one": "one", "two": "two"}, "6b18131dc289fd37006705affe961ef8.dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			res, err := Hash(t.Context(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Hash != tt.want {
				t.Errorf("Hash = %s, want %s\nlisting: %s", res.Hash, tt.want, DirListing(res.Files))
			}
			if res.NFiles != len(tt.files) {
				t.Errorf("NFiles = %d, want %d", res.NFiles, len(tt.files))
			}
			for _, e := range res.Files {
				if e.MD5 != md5hex(tt.files[e.RelPath]) {
					t.Errorf("%s: md5 %s, want %s", e.RelPath, e.MD5, md5hex(tt.files[e.RelPath]))
				}
			}
		})
	}
}

func TestDirListingIssueBytes(t *testing.T) {
	got := string(DirListing([]Entry{
		{RelPath: "foo", MD5: "acbd18db4cc2f85cedef654fccc4a4d8"},
		{RelPath: "bar", MD5: "37b51d194a7513e45b56f6524f2d51f2"},
	}))
	want := `[{"md5": "37b51d194a7513e45b56f6524f2d51f2", "relpath": "bar"}, {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "foo"}]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if DirListing(nil) == nil || string(DirListing(nil)) != "[]" {
		t.Fatalf("empty listing = %q, want []", DirListing(nil))
	}
}

// TestDirListingPythonEscapes: expected values were produced by CPython 3's
// json.dumps(sorted(lst, key=relpath), sort_keys=True) and hashlib.md5.
func TestDirListingPythonEscapes(t *testing.T) {
	entries := []Entry{
		{RelPath: "é/ü.csv", MD5: md5hex("x")},
		{RelPath: "z\"q\\\t.txt", MD5: md5hex("y")},
		{RelPath: "a/😀", MD5: md5hex("z")},
		{RelPath: "\ufb01", MD5: md5hex("w")},
	}
	want := `[{"md5": "fbade9e36a3f36d3d676c1b808451dd7", "relpath": "a/\ud83d\ude00"}, {"md5": "415290769594460e2e485922904f345d", "relpath": "z\"q\\\t.txt"}, {"md5": "9dd4e461268c8034f5c8564e155c67a6", "relpath": "\u00e9/\u00fc.csv"}, {"md5": "f1290186a5d0b1ceab27f4e77c0c5d68", "relpath": "\ufb01"}]`
	if got := string(DirListing(entries)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := DirHash(entries); got != "7ca2dc2162372f628309996328e7458c.dir" {
		t.Fatalf("DirHash = %s", got)
	}
	// json.dumps(["\x7f\x80\x01"]) == '["\\u007f\\u0080\\u0001"]'; an invalid
	// UTF-8 byte 0xff is os.fsdecode'd to U+DCFF.
	var b strings.Builder
	writePyJSONString(&b, fsdecode("\x7f\u0080\x01\xff"))
	if got := b.String(); got != `"\u007f\u0080\u0001\udcff"` {
		t.Fatalf("escape = %s", got)
	}
}

func TestDefaultIgnores(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"foo": "foo", "bar": "bar",
		".git/HEAD": "x", "sub/.git": "gitfile", ".dvc/config": "x", ".hg/x": "x",
	})
	if err := os.MkdirAll(filepath.Join(dir, "empty", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Hash(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash != "5ea40360f5b4ec688df672a4db9c17d1.dir" {
		t.Fatalf("Hash = %s; listing %s", res.Hash, DirListing(res.Files))
	}
	if res.Size != 6 {
		t.Fatalf("Size = %d, want 6", res.Size)
	}
}

func TestFileHash(t *testing.T) {
	dir := writeTree(t, map[string]string{"f": "foo"})
	res, err := Hash(t.Context(), filepath.Join(dir, "f"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash != "acbd18db4cc2f85cedef654fccc4a4d8" || res.Size != 3 || res.IsDir {
		t.Fatalf("got %+v", res)
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := writeTree(t, map[string]string{"foo": "foo"})
	if err := os.Symlink("foo", filepath.Join(dir, "bar")); err != nil {
		t.Skip(err)
	}
	_, err := Hash(t.Context(), dir, Options{})
	if !errors.Is(err, ErrSymlink) {
		t.Fatalf("err = %v, want ErrSymlink", err)
	}
	res, err := Hash(t.Context(), dir, Options{AllowSymlinks: true})
	if err != nil {
		t.Fatal(err)
	}
	want := DirHash([]Entry{{RelPath: "bar", MD5: md5hex("foo")}, {RelPath: "foo", MD5: md5hex("foo")}})
	if res.Hash != want {
		t.Fatalf("Hash = %s, want %s", res.Hash, want)
	}
	outside := writeTree(t, map[string]string{"secret": "x"})
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := Hash(t.Context(), dir, Options{AllowSymlinks: true}); err == nil || !strings.Contains(err.Error(), "leaves") {
		t.Fatalf("link out of the tree: err = %v", err)
	}
}

func TestDos2Unix(t *testing.T) {
	lf, _, err := MD5(strings.NewReader("a\nb\nc"), AlgMD5Dos2Unix)
	if err != nil {
		t.Fatal(err)
	}
	crlf, _, _ := MD5(strings.NewReader("a\r\nb\r\nc"), AlgMD5Dos2Unix)
	if lf != crlf || lf != md5hex("a\nb\nc") {
		t.Fatalf("dos2unix: lf %s crlf %s", lf, crlf)
	}
	plain, _, _ := MD5(strings.NewReader("a\r\nb\r\nc"), AlgMD5)
	if plain != md5hex("a\r\nb\r\nc") {
		t.Fatalf("md5 must not normalise: %s", plain)
	}
	// Binary (NUL in the first 512 bytes): no normalisation.
	bin := "\x00a\r\n"
	got, _, _ := MD5(strings.NewReader(bin), AlgMD5Dos2Unix)
	if got != md5hex(bin) {
		t.Fatalf("binary chunk was normalised")
	}
	// A CRLF split across the 1 MiB chunk boundary is kept, as in DVC; the
	// heuristic is applied per chunk.
	data := strings.Repeat("x", chunkSize-1) + "\r\n" + "tail\r\n"
	got, n, _ := MD5(strings.NewReader(data), AlgMD5Dos2Unix)
	want := md5hex(strings.Repeat("x", chunkSize-1) + "\r\n" + "tail\n")
	if got != want || n != int64(len(data)) {
		t.Fatalf("chunk boundary: got %s want %s (n=%d)", got, want, n)
	}
	// Second chunk binary, first text.
	data = strings.Repeat("a\r\n", chunkSize/3+1)[:chunkSize] + "\x00\r\n"
	got, _, _ = MD5(strings.NewReader(data), AlgMD5Dos2Unix)
	want = md5hex(strings.ReplaceAll(data[:chunkSize], "\r\n", "\n") + "\x00\r\n")
	if got != want {
		t.Fatalf("per-chunk heuristic: got %s want %s", got, want)
	}
}

func TestIsTextBlock(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"", true}, {"hello\n", true}, {"a\x00", false},
		{"abcdefg\xff\xff\xff", true},     // 3/10 = 0.30 <= 0.30
		{"abcdef\xff\xff\xff\xff", false}, // 0.4
	} {
		if got := IsTextBlock([]byte(tt.in)); got != tt.want {
			t.Errorf("IsTextBlock(%q) = %v", tt.in, got)
		}
	}
}

func TestParse(t *testing.T) {
	dvcFile := `outs:
- md5: 5ea40360f5b4ec688df672a4db9c17d1.dir
  size: 6
  nfiles: 2
  hash: md5
  path: data
`
	vs, err := Parse(strings.NewReader(dvcFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Path != "data" || vs[0].Algorithm != AlgMD5 || !vs[0].IsDir() || *vs[0].NFiles != 2 || vs[0].Role != "out" {
		t.Fatalf("got %+v", vs)
	}
	legacy := "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  path: foo\n"
	vs, err = Parse(strings.NewReader(legacy))
	if err != nil || vs[0].Algorithm != AlgMD5Dos2Unix {
		t.Fatalf("legacy: %+v %v", vs, err)
	}
	lock := `schema: '2.0'
stages:
  train:
    cmd: python train.py
    deps:
    - path: data
      hash: md5
      md5: 5ea40360f5b4ec688df672a4db9c17d1.dir
      size: 6
      nfiles: 2
    - path: train.py
      hash: md5
      md5: acbd18db4cc2f85cedef654fccc4a4d8
      size: 3
    params:
      params.yaml:
        lr: 0.1
    outs:
    - path: model.pkl
      hash: md5
      md5: 37b51d194a7513e45b56f6524f2d51f2
      size: 3
  prepare:
    cmd: echo
    outs:
    - path: s3://bucket/x
      hash: md5
      etag: abc
`
	vs, err = Parse(strings.NewReader(lock))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 4 || vs[0].Stage != "prepare" || vs[0].Other["etag"] != "abc" || vs[1].Stage != "train" || vs[1].Role != "dep" || vs[3].Role != "out" {
		t.Fatalf("lock: %+v", vs)
	}
	for _, bad := range []string{
		"", "outs: 3", "outs:\n- md5: nothex\n  path: x\n", "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n",
		"outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  hash: sha1\n  path: x\n", "schema: '3.0'\nstages:\n  a:\n    outs: [x]\n",
		"foo: bar\n", "outs:\n- path: x\n  size: -1\n",
	} {
		if _, err := Parse(strings.NewReader(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%q) err = %v, want ErrFormat", bad, err)
		}
	}
}

func TestVerify(t *testing.T) {
	dir := writeTree(t, map[string]string{"data/foo": "foo", "data/bar": "bar", "f": "foo"})
	six, two := int64(6), int64(2)
	ok := &Version{Path: "data", MD5: "5ea40360f5b4ec688df672a4db9c17d1.dir", Algorithm: AlgMD5, Size: &six, NFiles: &two}
	c, err := Verify(t.Context(), dir, ok, Options{})
	if err != nil || c.Status != StatusOK {
		t.Fatalf("ok: %+v %v", c, err)
	}
	bad := &Version{Path: "f", MD5: md5hex("bar"), Algorithm: AlgMD5}
	c, err = Verify(t.Context(), dir, bad, Options{})
	if err != nil || c.Status != StatusMismatch || c.Actual != md5hex("foo") {
		t.Fatalf("mismatch: %+v %v", c, err)
	}
	wrongSize := int64(7)
	c, _ = Verify(t.Context(), dir, &Version{Path: "data", MD5: ok.MD5, Algorithm: AlgMD5, Size: &wrongSize}, Options{})
	if c.Status != StatusMismatch {
		t.Fatalf("size: %+v", c)
	}
	c, _ = Verify(t.Context(), dir, &Version{Path: "nope", MD5: ok.MD5, Algorithm: AlgMD5}, Options{})
	if c.Status != StatusMissing {
		t.Fatalf("missing: %+v", c)
	}
	c, _ = Verify(t.Context(), dir, &Version{Path: "s3://b/k", MD5: ok.MD5}, Options{})
	if c.Status != StatusSkipped {
		t.Fatalf("url: %+v", c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  hash: md5\n  path: foo\n"))
	f.Add([]byte("schema: '2.0'\nstages:\n  s:\n    deps:\n    - path: d\n      md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n"))
	f.Add([]byte("outs: [a, b]\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not wrapping ErrFormat: %v", err)
			}
			return
		}
		for _, v := range vs {
			if v.Path == "" || (v.MD5 != "" && !md5RE.MatchString(v.MD5)) || (v.Role != "out" && v.Role != "dep") {
				t.Fatalf("invalid version accepted: %+v", v)
			}
		}
	})
}

// FuzzDirListing: for valid UTF-8 paths, the listing is JSON that decodes back
// to the same, sorted entries (round trip through a second, independent encoder).
func FuzzDirListing(f *testing.F) {
	f.Add("foo", "bar")
	f.Add("é/\x7f", "😀\"\\")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == b {
			return
		}
		entries := []Entry{{RelPath: a, MD5: md5hex(a)}, {RelPath: b, MD5: md5hex(b)}}
		listing := DirListing(entries)
		for _, c := range listing {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("listing not ASCII: %q", listing)
			}
		}
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		var got []map[string]string
		if err := json.Unmarshal(listing, &got); err != nil {
			t.Fatalf("listing is not JSON: %v: %s", err, listing)
		}
		if len(got) != 2 || got[0]["relpath"] > got[1]["relpath"] {
			t.Fatalf("not sorted: %s", listing)
		}
		for _, e := range got {
			if e["md5"] != md5hex(e["relpath"]) {
				t.Fatalf("round trip changed %q", e["relpath"])
			}
		}
	})
}

// TestEmptyDir: a directory with no files (or only ignored ones) hashes the
// empty listing "[]", md5 d751713988987e9331980363e24189ce (printf '[]' | md5sum).
func TestEmptyDir(t *testing.T) {
	dir := writeTree(t, map[string]string{".git/config": "x"})
	res, err := Hash(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash != "d751713988987e9331980363e24189ce.dir" || res.NFiles != 0 || res.Size != 0 {
		t.Fatalf("got %+v", res)
	}
}
