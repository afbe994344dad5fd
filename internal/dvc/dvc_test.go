package dvc

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func TestDirObjectMatchesPythonJSON(t *testing.T) {
	// Expected bytes written by hand from Python's
	// json.dumps(sorted(list, key=relpath), sort_keys=True).
	entries := []Entry{
		{RelPath: "sub/b.csv", MD5: strings.Repeat("b", 32)},
		{RelPath: "a.csv", MD5: strings.Repeat("a", 32)},
		{RelPath: "caf\u00e9 \"q\"\\\t\U0001F600.txt", MD5: strings.Repeat("c", 32)},
	}
	got, err := DirObject(entries)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"md5": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "relpath": "a.csv"}, ` +
		`{"md5": "cccccccccccccccccccccccccccccccc", "relpath": "caf\u00e9 \"q\"\\\t\ud83d\ude00.txt"}, ` +
		`{"md5": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "relpath": "sub/b.csv"}]`
	if string(got) != want {
		t.Fatalf("DirObject:\n got %s\nwant %s", got, want)
	}
	h, err := DirHash(entries)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum([]byte(want))
	if h != hex.EncodeToString(sum[:])+".dir" {
		t.Fatalf("DirHash = %s", h)
	}
}

func TestDirObjectRejects(t *testing.T) {
	for _, es := range [][]Entry{
		{{RelPath: "a", MD5: "ABCDEF0123456789ABCDEF0123456789"}},
		{{RelPath: "a", MD5: "short"}},
		{{RelPath: "", MD5: strings.Repeat("a", 32)}},
		{{RelPath: "a", MD5: strings.Repeat("a", 32)}, {RelPath: "a", MD5: strings.Repeat("b", 32)}},
	} {
		if _, err := DirObject(es); err == nil {
			t.Errorf("DirObject(%+v) accepted", es)
		}
	}
}

func TestFileMD5(t *testing.T) {
	got, err := FileMD5(strings.NewReader("hello\n"))
	if err != nil || got != "b1946ac92492d2347c6235b4d2611184" { // md5sum of "hello\n"
		t.Fatalf("FileMD5 = %s, %v", got, err)
	}
}

// TestDirObjectAgainstPython checks the .dir serialization against Python's
// own json.dumps (the code DVC runs), on awkward names, when python3 is
// installed.
func TestDirObjectAgainstPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	names := []string{"a.csv", "a-b/x", "a/b", "Ünïcödé/ß.txt", "emoji \U0001F600", "tab\tand\"quote\\", "del\x7f", "ctrl\x01", "z", "日本/語"}
	var entries []Entry
	for i, n := range names {
		entries = append(entries, Entry{RelPath: n, MD5: fmt.Sprintf("%032x", i)})
	}
	got, err := DirObject(entries)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(entries)
	script := `import json, sys
es = json.load(sys.stdin)
lst = sorted(({"md5": e["MD5"], "relpath": e["RelPath"]} for e in es), key=lambda d: d["relpath"])
sys.stdout.write(json.dumps(lst, sort_keys=True))`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("DirObject differs from Python:\n got %s\nwant %s", got, want)
	}
}
