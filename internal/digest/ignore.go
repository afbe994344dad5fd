package digest

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultIgnores are excluded at the top level of every model directory, as
// OMS v1.0 section 6.2 requires: each matches only the top-level component
// (and its subtree), never a nested path such as "sub/.git".
var DefaultIgnores = []string{".git", ".gitattributes", ".github", ".gitignore"}

// NormalizeIgnore turns a user-supplied ignore path into the canonical
// model-relative form OMS section 6.2.1 prescribes: "/"-separated, no "."
// or empty components, no trailing "/". Absolute paths are accepted when
// they lie inside root (the model root as given on the command line) and
// made relative to it. Glob characters, ".." components and paths outside
// the root are refused: matching is exact, never a pattern.
func NormalizeIgnore(root, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty ignore path", ErrBadOptions)
	}
	if strings.ContainsAny(p, "*?[") {
		return "", fmt.Errorf("%w: ignore path %q contains a glob character; ignore paths are exact", ErrBadOptions, p)
	}
	if filepath.IsAbs(p) {
		absRoot, err := filepath.Abs(root)
		if err != nil {
			return "", fmt.Errorf("%w: ignore path %q: %v", ErrBadOptions, p, err)
		}
		rel, err := filepath.Rel(absRoot, filepath.Clean(p))
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("%w: ignore path %q is not inside the model root %q", ErrBadOptions, p, root)
		}
		p = filepath.ToSlash(rel)
	}
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: ignore path %q contains '..'", ErrBadOptions, p)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("%w: ignore path %q names the model root itself", ErrBadOptions, p)
	}
	return path.Join(out...), nil
}

// ignoreSet holds canonical model-relative paths excluded from a manifest.
type ignoreSet map[string]struct{}

func newIgnoreSet(root string, user []string) (ignoreSet, error) {
	s := make(ignoreSet, len(DefaultIgnores)+len(user))
	for _, d := range DefaultIgnores {
		s[d] = struct{}{}
	}
	for _, p := range user {
		n, err := NormalizeIgnore(root, p)
		if err != nil {
			return nil, err
		}
		s[n] = struct{}{}
	}
	return s, nil
}

func (s ignoreSet) match(rel string) bool {
	_, ok := s[rel]
	return ok
}

// sorted returns the set's paths in byte order, the form recorded in
// serialization.ignore_paths.
func (s ignoreSet) sorted() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
