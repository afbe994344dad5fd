package dvc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// .dvcignore support, as DVC 3.x applies it (dvc/ignore.py and
// dvc/pathspec_math.py of dvc 3.64, with pathspec 0.11's
// GitWildMatchPattern; see docs/data.md):
//
//   - The ignore root is the DVC repository root (the nearest directory at or
//     above the hashed path that holds a .dvc entry), else the hashed
//     directory itself. Its rule list starts with DVC's defaults ".hg/",
//     ".git/", ".git", ".dvc/".
//   - A directory D's list is its nearest ancestor's list followed by the
//     lines of D/.dvcignore (unless that file is itself ignored), each
//     rewritten relative to the root by change_rule: "!" kept in front, a
//     rule with no inner slash (or starting with "**/") becomes
//     "D/**/rule", any other "D/rule".
//   - Lines are stripped of surrounding white space; empty lines and lines
//     starting with "#" are skipped.
//   - A path (relative to the root) is ignored if it or any of its parent
//     directories is ignored; for each, the last rule that matches decides
//     ("!" re-includes); a rule ending in "/" only applies to directories.
//   - A directory other than the root holding a .dvc entry is a DVC
//     sub-repository and is ignored whole.

// maxIgnoreFile caps a .dvcignore file.
const maxIgnoreFile = 1 << 20

// ErrIgnoreSyntax is wrapped by errors for .dvcignore lines that DVC (with
// pathspec) would reject.
var ErrIgnoreSyntax = errors.New("invalid .dvcignore pattern")

// ignoreRule is one compiled pattern.
type ignoreRule struct {
	re      *regexp.Regexp
	ignore  bool // false for a "!" (re-include) rule
	dirOnly bool // the rule ends with "/"
	source  string
}

// ignoreRules is the ordered rule list in force in one directory.
type ignoreRules []ignoreRule

// defaultIgnoreLines are DVC's built-in patterns (DvcIgnoreFilter).
var defaultIgnoreLines = []string{".hg/", ".git/", ".git", ".dvc/"}

func compileRules(lines []string, source string) (ignoreRules, error) {
	var out ignoreRules
	for i, l := range lines {
		expr, ignore, ok, err := wildmatchRegexp(l)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, i+1, err)
		}
		if !ok {
			continue
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %q: %v", source, i+1, ErrIgnoreSyntax, l, err)
		}
		out = append(out, ignoreRule{re: re, ignore: ignore, dirOnly: strings.HasSuffix(l, "/"), source: source})
	}
	return out, nil
}

// pyStrip is Python's str.strip(): white space as str.isspace defines it.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == 0x1c || r == 0x1d || r == 0x1e || r == 0x1f })
}

// readIgnoreLines returns the pattern lines of a .dvcignore file.
func readIgnoreLines(r io.Reader, name string) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxIgnoreFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxIgnoreFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxIgnoreFile)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: %w: not UTF-8", name, ErrIgnoreSyntax)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIgnoreFile+1)
	sc.Split(scanPyLines)
	for sc.Scan() {
		l := pyStrip(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// scanPyLines splits like Python's text-mode readlines: "\n", "\r\n" and a
// lone "\r" end a line (universal newlines).
func scanPyLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		switch c {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // need more data to see a following '\n'
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// changeRule rewrites a rule of the .dvcignore in directory rel (a slash
// path below the root) so that it applies from the root (pathspec_math.py
// change_rule, then pathspec's normalize_file).
func changeRule(rule, rel string) string {
	rule = pyStrip(rule)
	if strings.HasPrefix(rule, "#") {
		return rule
	}
	notIgnore := strings.HasPrefix(rule, "!")
	if notIgnore {
		rule = rule[1:]
	}
	matchAll := true
	if len(rule) > 0 && strings.Contains(rule[:len(rule)-1], "/") && !strings.HasPrefix(rule, "**/") {
		rule, matchAll = strings.TrimPrefix(rule, "/"), false
	} else {
		rule = strings.TrimPrefix(rule, "**/")
	}
	rule = strings.TrimPrefix(rule, `\`)
	if matchAll {
		rule = "/**/" + rule
	} else {
		rule = "/" + rule
	}
	if notIgnore {
		rule = "!/" + rel + rule
	} else {
		rule = "/" + rel + rule
	}
	// normalize_file: a leading "/" or "./" is removed.
	if strings.HasPrefix(rule, "/") {
		rule = rule[1:]
	} else if strings.HasPrefix(rule, "./") {
		rule = rule[2:]
	}
	return rule
}

// wildmatchRegexp translates one pattern as pathspec 0.11's
// GitWildMatchPattern.pattern_to_regex does. ok is false for a line that
// matches nothing (blank, comment, "/"); ignore is false for "!" rules.
func wildmatchRegexp(pattern string) (expr string, ignore, ok bool, err error) {
	orig := pattern
	pattern = pyStrip(pattern)
	if pattern == "" || strings.HasPrefix(pattern, "#") || pattern == "/" {
		return "", false, false, nil
	}
	ignore = true
	if strings.HasPrefix(pattern, "!") {
		ignore, pattern = false, pattern[1:]
	}
	segs := strings.Split(pattern, "/")
	for i := len(segs) - 1; i > 0; i-- {
		if segs[i-1] == "**" && segs[i] == "**" {
			segs = append(segs[:i], segs[i+1:]...)
		}
	}
	if len(segs) == 2 && segs[0] == "**" && segs[1] == "" {
		return `^.+(?P<ps_d>/).*$`, ignore, true, nil
	}
	if segs[0] == "" {
		segs = segs[1:]
	} else if len(segs) == 1 || len(segs) == 2 && segs[1] == "" {
		if segs[0] != "**" {
			segs = append([]string{"**"}, segs...)
		}
	}
	if len(segs) == 0 {
		return "", false, false, fmt.Errorf("%w: %q", ErrIgnoreSyntax, orig)
	}
	if segs[len(segs)-1] == "" && len(segs) > 1 {
		segs[len(segs)-1] = "**"
	}
	var b strings.Builder
	b.WriteString("^")
	needSlash := false
	end := len(segs) - 1
	for i, seg := range segs {
		switch {
		case seg == "**":
			switch {
			case i == 0 && i == end:
				b.WriteString(`[^/]+(?:(?P<ps_d>/).*)?`)
			case i == 0:
				b.WriteString(`(?:.+/)?`)
				needSlash = false
			case i == end:
				b.WriteString(`(?P<ps_d>/).*`)
			default:
				b.WriteString(`(?:/.+)?`)
				needSlash = true
			}
		case seg == "*":
			if needSlash {
				b.WriteString("/")
			}
			b.WriteString(`[^/]+`)
			if i == end {
				b.WriteString(`(?:(?P<ps_d>/).*)?`)
			}
			needSlash = true
		default:
			if needSlash {
				b.WriteString("/")
			}
			g, err := translateSegmentGlob(seg)
			if err != nil {
				return "", false, false, fmt.Errorf("%w: %q: %v", ErrIgnoreSyntax, orig, err)
			}
			b.WriteString(g)
			if i == end {
				b.WriteString(`(?:(?P<ps_d>/).*)?`)
			}
			needSlash = true
		}
	}
	b.WriteString("$")
	return b.String(), ignore, true, nil
}

// translateSegmentGlob is pathspec's _translate_segment_glob.
func translateSegmentGlob(p string) (string, error) {
	rs := []rune(p)
	var b strings.Builder
	escape := false
	for i, end := 0, len(rs); i < end; {
		c := rs[i]
		i++
		switch {
		case escape:
			escape = false
			b.WriteString(regexp.QuoteMeta(string(c)))
		case c == '\\':
			escape = true
		case c == '*':
			b.WriteString(`[^/]*`)
		case c == '?':
			b.WriteString(`[^/]`)
		case c == '[':
			j := i
			if j < end && rs[j] == '!' {
				j++
			}
			if j < end && rs[j] == ']' {
				j++
			}
			for j < end && rs[j] != ']' {
				j++
			}
			if j < end {
				j++
				expr := "["
				if rs[i] == '!' {
					expr += "^"
					i++
				} else if rs[i] == '^' {
					expr += `\^`
					i++
				}
				expr += strings.ReplaceAll(string(rs[i:j]), `\`, `\\`)
				b.WriteString(expr)
				i = j
			} else {
				b.WriteString(`\[`)
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if escape {
		return "", errors.New("escape character with no next character")
	}
	return b.String(), nil
}

// find is DvcIgnorePatterns._find_matching_pattern: the last rule matching
// p decides.
func (rs ignoreRules) find(p string, isDir bool) bool {
	if isDir {
		p = strings.TrimRight(p, "/")
	}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(p) || r.dirOnly && r.re.MatchString(p+"/") {
			return r.ignore
		}
	}
	return false
}

// ignored is DvcIgnorePatterns._ignore: rel (a slash path from the root)
// is ignored if it or a parent directory is.
func (rs ignoreRules) ignored(rel string, isDir bool) bool {
	parts := strings.Split(rel, "/")
	for i := 1; i <= len(parts); i++ {
		if rs.find(strings.Join(parts[:i], "/"), isDir || i < len(parts)) {
			return true
		}
	}
	return false
}

// ignoreTree tracks the rule lists of the directories of one walk.
type ignoreTree struct {
	rootDir string                 // the ignore root on disk
	lists   map[string]ignoreRules // by slash path from the root ("" = root)
	files   []string               // the .dvcignore files read, for reporting
}

// findRepoRoot returns the nearest directory at or above dir holding a
// .dvc entry, or "" if there is none.
func findRepoRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; {
		if _, err := os.Lstat(filepath.Join(d, ".dvc")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// newIgnoreTree prepares the rules for walking dir: the ignore root and
// the .dvcignore files from it down to dir. It returns dir's slash path
// from the root.
func newIgnoreTree(dir string) (*ignoreTree, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	root := findRepoRoot(abs)
	if root == "" {
		root = abs
	}
	t := &ignoreTree{rootDir: root, lists: map[string]ignoreRules{}}
	def, err := compileRules(defaultIgnoreLines, "default")
	if err != nil {
		return nil, "", err
	}
	t.lists[""] = def
	if err := t.load(""); err != nil {
		return nil, "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, "", err
	}
	if rel == "." {
		return t, "", nil
	}
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		if t.lists[slashParent(p)].ignored(p, true) {
			return nil, "", fmt.Errorf("%s is ignored by DVC (.dvcignore or a built-in pattern under %s)", dir, root)
		}
		t.lists[p] = t.lists[slashParent(p)]
		if err := t.load(p); err != nil {
			return nil, "", err
		}
	}
	return t, rel, nil
}

// slashParent is the parent of a slash path from the root ("" for a
// top-level name).
func slashParent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// enter sets up the rules of directory rel (whose parent is set up).
func (t *ignoreTree) enter(rel string) error {
	t.lists[rel] = t.lists[slashParent(rel)]
	return t.load(rel)
}

// load appends rel's .dvcignore, if present and not itself ignored, to
// rel's list (which holds its parent's rules).
func (t *ignoreTree) load(rel string) error {
	cur := t.lists[rel]
	name := ".dvcignore"
	if rel != "" {
		name = rel + "/.dvcignore"
	}
	if cur.ignored(name, false) {
		return nil
	}
	f, err := os.Open(filepath.Join(t.rootDir, filepath.FromSlash(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", name)
	}
	lines, err := readIgnoreLines(f, name)
	if err != nil {
		return err
	}
	if rel != "" {
		for i, l := range lines {
			lines[i] = changeRule(l, rel)
		}
	}
	rules, err := compileRules(lines, name)
	if err != nil {
		return err
	}
	t.files = append(t.files, name)
	t.lists[rel] = append(append(ignoreRules{}, cur...), rules...)
	return nil
}

// skip reports whether the entry rel (slash path from the root) of a
// directory being walked is ignored; for a directory, whether it is a DVC
// sub-repository too.
func (t *ignoreTree) skip(rel string, isDir bool) bool {
	if t.lists[slashParent(rel)].ignored(rel, isDir) {
		return true
	}
	if isDir {
		if _, err := os.Lstat(filepath.Join(t.rootDir, filepath.FromSlash(rel), ".dvc")); err == nil {
			return true
		}
	}
	return false
}
