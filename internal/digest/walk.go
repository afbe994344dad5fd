package digest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"unicode/utf8"
)

// fileEntry is one regular file of a model, as enumerated.
type fileEntry struct {
	name string      // OMS resource name: "/"-separated path relative to the root, or the basename of a single-file model
	rel  string      // path to open relative to the os.Root
	info os.FileInfo // what enumeration saw; hashing checks the open file is still this one
}

// model is the enumerated content of a model path.
type model struct {
	kind   Kind
	name   string // basename of the model path: the OMS subject name
	root   *os.Root
	files  []fileEntry // sorted by name, byte order
	ignore ignoreSet

	allowSymlinks bool
}

// Kind tells a single-file model from a directory model.
type Kind string

// The kinds of model.
const (
	KindFile      Kind = "file"
	KindDirectory Kind = "directory"
)

// maxDepth bounds directory nesting, so that a pathological tree (or a link
// cycle the checks below missed) fails instead of exhausting the stack.
const maxDepth = 256

// enumerate opens the model at p and lists its regular files.
func enumerate(p string, opts Options) (*model, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !opts.AllowSymlinks {
			return nil, refused(".", "model path %s is a symbolic link (pass the resolved path, or allow symlinks)", p)
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		p = resolved
		if fi, err = os.Stat(p); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	m := &model{name: filepath.Base(abs), allowSymlinks: opts.AllowSymlinks}
	switch {
	case fi.Mode().IsRegular():
		m.kind = KindFile
		if err := checkName(m.name); err != nil {
			return nil, err
		}
		// Single files are opened through a root on their directory, by
		// basename: a file swapped for a link after this point is caught by
		// the identity check when it is opened.
		if m.root, err = os.OpenRoot(filepath.Dir(abs)); err != nil {
			return nil, err
		}
		m.ignore = ignoreSet{}
		m.files = []fileEntry{{name: m.name, rel: m.name, info: fi}}
		return m, nil
	case fi.IsDir():
		m.kind = KindDirectory
		if m.ignore, err = newIgnoreSet(abs, opts.Ignore); err != nil {
			return nil, err
		}
		if m.root, err = os.OpenRoot(abs); err != nil {
			return nil, err
		}
		w := walker{m: m, opts: opts}
		if err := w.dir(".", []os.FileInfo{fi}); err != nil {
			m.root.Close()
			return nil, err
		}
		sort.Slice(m.files, func(i, j int) bool { return m.files[i].name < m.files[j].name })
		return m, nil
	default:
		return nil, refused(".", "model path %s is a %s, not a regular file or directory", p, fileType(fi.Mode()))
	}
}

type walker struct {
	m    *model
	opts Options
}

// dir lists the directory rel (relative to the root). ancestors holds the
// directories on the path from the root to rel, for link-cycle detection.
func (w *walker) dir(rel string, ancestors []os.FileInfo) error {
	if len(ancestors) > maxDepth {
		return refused(rel, "directory nesting deeper than %d", maxDepth)
	}
	f, err := w.m.root.Open(rel)
	if err != nil {
		return &PathError{Path: rel, Err: err}
	}
	if rel != "." && !w.opts.AllowSymlinks {
		// os.Root follows links inside the root: make sure the directory
		// opened is not a link swapped in since its parent was listed.
		st, serr := f.Stat()
		li, lerr := w.m.root.Lstat(rel)
		if serr != nil || lerr != nil || !li.IsDir() || !os.SameFile(st, li) {
			f.Close()
			return changed(rel, "directory replaced while being listed")
		}
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return &PathError{Path: rel, Err: err}
	}
	for _, e := range entries {
		child := e.Name()
		if rel != "." {
			child = path.Join(rel, e.Name())
		}
		if w.m.ignore.match(child) {
			continue
		}
		if err := checkName(child); err != nil {
			return err
		}
		mode := e.Type()
		switch {
		case mode.IsDir():
			info, err := e.Info()
			if err != nil {
				return &PathError{Path: child, Err: err}
			}
			if err := w.dir(child, append(ancestors, info)); err != nil {
				return err
			}
		case mode.IsRegular():
			info, err := e.Info()
			if err != nil {
				return &PathError{Path: child, Err: err}
			}
			if !info.Mode().IsRegular() { // replaced since ReadDir
				return changed(child, "no longer a regular file")
			}
			w.m.files = append(w.m.files, fileEntry{name: child, rel: child, info: info})
		case mode&fs.ModeSymlink != 0:
			if err := w.symlink(child, ancestors); err != nil {
				return err
			}
		default:
			return refused(child, "%s is not a regular file", fileType(mode))
		}
	}
	return nil
}

// symlink handles a link when links are allowed: it is resolved through the
// os.Root, which refuses any target outside the model root, and hashed (or
// walked) under the link's own name, as OMS section 6.1.1 prescribes.
func (w *walker) symlink(child string, ancestors []os.FileInfo) error {
	if !w.opts.AllowSymlinks {
		return refused(child, "symbolic link (symlinks are refused unless allowed)")
	}
	info, err := w.m.root.Stat(child)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return refused(child, "dangling symbolic link")
		}
		return refused(child, "symbolic link cannot be followed inside the model root: %v", err)
	}
	switch {
	case info.Mode().IsRegular():
		w.m.files = append(w.m.files, fileEntry{name: child, rel: child, info: info})
		return nil
	case info.IsDir():
		for _, a := range ancestors {
			if os.SameFile(a, info) {
				return refused(child, "symbolic link cycle")
			}
		}
		return w.dir(child, append(ancestors, info))
	default:
		return refused(child, "symbolic link to a %s", fileType(info.Mode()))
	}
}

// checkName enforces OMS section 6.1.2 rule 7 (names are valid UTF-8) and
// refuses control characters, which no model file needs and which would
// make the canonical manifest's line format ambiguous.
func checkName(name string) error {
	if !utf8.ValidString(name) {
		return refused(fmt.Sprintf("%q", name), "file name is not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return refused(fmt.Sprintf("%q", name), "file name contains a control character")
		}
	}
	return nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	case m.IsDir():
		return "directory"
	}
	return "file"
}
