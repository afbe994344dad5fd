package dvc

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type ignoreCase struct {
	Name   string            `json:"name"`
	Target string            `json:"target"`
	Tree   map[string]string `json:"tree"`
	MD5    string            `json:"md5"`
	Files  []string          `json:"files"`
}

func loadIgnoreCases(t *testing.T, data []byte) []ignoreCase {
	t.Helper()
	var doc struct {
		Cases []ignoreCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 {
		t.Fatal("no cases")
	}
	return doc.Cases
}

func runIgnoreCases(t *testing.T, cases []ignoreCase) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			for p, content := range c.Tree {
				full := filepath.Join(dir, filepath.FromSlash(p))
				if strings.HasSuffix(p, "/") {
					os.MkdirAll(full, 0o755)
					continue
				}
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Hash(t.Context(), filepath.Join(dir, filepath.FromSlash(c.Target)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range res.Files {
				got = append(got, e.RelPath)
			}
			if !reflect.DeepEqual(got, c.Files) {
				t.Fatalf("files:\n got %q\nwant %q", got, c.Files)
			}
			if res.Hash != c.MD5 || res.NFiles != len(c.Files) {
				t.Fatalf("hash %s (%d files), want %s", res.Hash, res.NFiles, c.MD5)
			}
		})
	}
}

// TestDVCIgnoreFixtures compares the .dir hashes of trees with .dvcignore
// files with the ones testdata/dvcignore/gen.py computed (pathspec +
// DVC's ignore algorithm in Python).
func TestDVCIgnoreFixtures(t *testing.T) {
	data, err := os.ReadFile("testdata/dvcignore/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	runIgnoreCases(t, loadIgnoreCases(t, data))
}

// TestDVCIgnoreGenerator re-runs the generator, so that a change of the
// fixtures or of the Python reference shows. It needs Debian's python3 with
// python3-pathspec (scripts/install-tools.sh); CI fails without it.
func TestDVCIgnoreGenerator(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pathspec").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s with pathspec is required in CI: %v", py, err)
		}
		t.Skipf("%s with pathspec not available: %v", py, err)
	}
	out, err := exec.Command(py, "testdata/dvcignore/gen.py").Output()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("testdata/dvcignore/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, committed) {
		t.Error("gen.py output differs from the committed cases.json; regenerate it")
	}
	runIgnoreCases(t, loadIgnoreCases(t, out))
}

// TestIgnoreMatch is DVC's tests/unit/test_ignore.py
// test_match_ignore_from_file table (patterns of one .dvcignore, a file
// path relative to it).
func TestIgnoreMatch(t *testing.T) {
	for _, tc := range []struct {
		path     string
		patterns []string
		want     bool
	}{
		{"to_ignore", []string{"to_ignore"}, true},
		{"dont_ignore.txt", []string{"dont_ignore"}, false},
		{"to_ignore", []string{"", "to_ignore"}, true},
		{"#to_ignore", []string{`\#to_ignore`}, true},
		{"#to_ignore", []string{"#to_ignore"}, false},
		{" to_ignore", []string{" to_ignore"}, false},
		{" to_ignore", []string{`\ to_ignore`}, true},
		{"to_ignore.txt", []string{"to_ignore*"}, true},
		{"to_ignore.txt", []string{"to_ignore*", "!to_ignore.txt"}, false},
		{"to_ignore.txt", []string{"!to_ignore.txt", "to_ignore*"}, true},
		{"!to_ignore.txt", []string{`\!to_ignore.txt`}, true},
		{"file", []string{"/file"}, true},
		{"data/file", []string{"/file"}, false},
		{"data/file", []string{"data/file"}, true},
		{"other/data/file", []string{"data/file"}, false},
		{"to_ignore.txt", []string{"/*.txt"}, true},
		{"path/to_ignore.txt", []string{"/*.txt"}, false},
		{"data/file.txt", []string{"data/*"}, true},
		{"data/subdir/file.txt", []string{"data/*"}, true},
		{"data/file.txt", []string{"data/"}, true},
		{"data/subdir/file.txt", []string{"data/"}, true},
		{"data/subdir/file.txt", []string{"subdir/"}, true},
		{"data/subdir/file.txt", []string{"/subdir/"}, false},
		{"data/path", []string{"path/"}, false},
		{".git/file.txt", []string{".git/"}, true},
		{"data/.dvc/file.txt", []string{".dvc/"}, true},
		{"rel/path/path2/to_ignore", []string{"rel/*/to_ignore"}, false},
		{"file.txt", []string{"file.*"}, true},
		{"file.txt", []string{"fi?e.t?t"}, true},
		{"fi/e.txt", []string{"fi?e.t?t"}, false},
		{"file.txt", []string{"[a-zA-Z]ile.txt"}, true},
		{"2ile.txt", []string{"[a-zA-Z]ile.txt"}, false},
		{"rel/p/p2/to_ignore", []string{"**/to_ignore"}, true},
		{"rel/p/p2/to_ignore", []string{"**/p2/to_ignore"}, true},
		{"rel/path/path2/dont_ignore", []string{"**/to_ignore"}, false},
		{"rel/p/p2/to_ignore", []string{"rel/**"}, true},
		{"rel/p/p2/to_ignore", []string{"p/**"}, false},
		{"rel/path/path2/dont_ignore", []string{"rel/**"}, true},
		{"rel/p/to_ignore", []string{"rel/**/to_ignore"}, true},
		{"rel/p/p2/to_ignore", []string{"rel/**/to_ignore"}, true},
		{"rel/path/path2/dont_ignore", []string{"rel/**/to_ignore"}, false},
		{"rel/path/path2/dont_ignore", []string{"path/**/dont_ignore"}, false},
		{"to_ignore.txt", []string{"/***.txt"}, true},
		{"path/to_ignore.txt", []string{"/****.txt"}, false},
		{"path/to_ignore.txt", []string{"****.txt"}, true},
		{"data/file.txt", []string{"data/***"}, true},
		{"data/p/file.txt", []string{"***/file.txt"}, false},
		{"rel/path/path2/to_ignore", []string{"rel/***/to_ignore"}, false},
	} {
		lines, err := readIgnoreLines(strings.NewReader(strings.Join(tc.patterns, "\n")), "test")
		if err != nil {
			t.Fatal(err)
		}
		rules, err := compileRules(lines, "test")
		if err != nil {
			t.Fatal(err)
		}
		if got := rules.ignored(tc.path, false); got != tc.want {
			t.Errorf("%q with %q: ignored = %v, want %v", tc.path, tc.patterns, got, tc.want)
		}
	}
}

func TestIgnoreErrors(t *testing.T) {
	if _, err := compileRules([]string{`foo\`}, "x"); !errors.Is(err, ErrIgnoreSyntax) {
		t.Fatalf("dangling escape: %v", err)
	}
	if _, err := readIgnoreLines(strings.NewReader("a\xff\n"), "x"); !errors.Is(err, ErrIgnoreSyntax) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	// The hashed directory itself ignored from the repository root.
	dir := writeTree(t, map[string]string{".dvc/config": "", ".dvcignore": "data/\n", "data/a": "a"})
	if _, err := Hash(t.Context(), filepath.Join(dir, "data"), Options{}); err == nil || !strings.Contains(err.Error(), "ignored by DVC") {
		t.Fatalf("ignored target: %v", err)
	}
}

// FuzzIgnorePattern: any line compiles or is refused with ErrIgnoreSyntax,
// and matching never panics.
func FuzzIgnorePattern(f *testing.F) {
	for _, s := range []string{"*.csv", "!keep", "a/**/b", "[!a-c]?x", `\#x`, "**/", "/", "***", "[", "a[]]b", `x\`} {
		f.Add(s, "a/b/c.csv")
	}
	f.Fuzz(func(t *testing.T, line, path string) {
		rules, err := compileRules([]string{line}, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrIgnoreSyntax) {
				t.Fatalf("error not wrapping ErrIgnoreSyntax: %v", err)
			}
			return
		}
		rules.ignored(path, false)
		rules.ignored(path, true)
		if r := changeRule(line, "sub/dir"); r != "" {
			if _, err := compileRules([]string{r}, "fuzz"); err != nil && !errors.Is(err, ErrIgnoreSyntax) {
				t.Fatalf("changed rule: %v", err)
			}
		}
	})
}
