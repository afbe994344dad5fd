package digest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// HashCopy hashes the model at src like [Hash] while writing every byte it
// hashes into a new directory dst, so that the copy holds exactly the bytes
// that were hashed: nothing can be swapped between the check and the use.
//
// dst must not exist; its parent must. A directory model is copied to
// dst/<relative path>, a single file to dst/<basename>. Symbolic links (when
// allowed) are copied as the regular files they resolve to. On success every
// file is fsynced and made read-only (0444) and every directory 0555. On any
// error dst is removed: no half-written copy is left behind.
func HashCopy(ctx context.Context, src, dst string, opts Options) (*Manifest, error) {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create staging directory: %w", err)
	}
	c := &dirCopier{dst: dst}
	man, err := hashModel(ctx, src, opts, c)
	if err == nil {
		err = c.finish()
	}
	if c.root != nil {
		c.root.Close()
	}
	if err != nil {
		if rerr := removeAll(dst); rerr != nil {
			err = errors.Join(err, fmt.Errorf("failed to remove partial copy %s: %w", dst, rerr))
		}
		return nil, err
	}
	return man, nil
}

type dirCopier struct {
	dst   string
	root  *os.Root
	m     *model
	dirs  []string // created directories, relative to dst
	names []string // per model file: its path relative to dst
}

func (c *dirCopier) prepare(m *model) error {
	var err error
	if c.root, err = os.OpenRoot(c.dst); err != nil {
		return err
	}
	c.m = m
	c.names = make([]string, len(m.files))
	made := map[string]bool{".": true}
	for i, f := range m.files {
		c.names[i] = f.name
		for _, d := range parents(f.name) {
			if made[d] {
				continue
			}
			if err := c.root.Mkdir(d, 0o700); err != nil {
				return fmt.Errorf("failed to stage %s: %w", d, err)
			}
			made[d] = true
			c.dirs = append(c.dirs, d)
		}
		out, err := c.root.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("failed to stage %s: %w", f.name, err)
		}
		err = out.Truncate(f.info.Size())
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("failed to stage %s: %w", f.name, err)
		}
	}
	return nil
}

// parents returns the directories above a relative path, outermost first.
func parents(name string) []string {
	var out []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		out = append(out, d)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

type closingWriterAt interface {
	io.WriterAt
	io.Closer
}

func (c *dirCopier) writerFor(file int) (closingWriterAt, error) {
	f, err := c.root.OpenFile(c.names[file], os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("failed to stage %s: %w", c.names[file], err)
	}
	return f, nil
}

func (c *dirCopier) fileDone(file int) error {
	f, err := c.root.OpenFile(c.names[file], os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if err == nil {
		err = f.Chmod(0o444)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("failed to stage %s: %w", c.names[file], err)
	}
	return nil
}

// finish syncs and seals the directories, deepest first.
func (c *dirCopier) finish() error {
	dirs := append([]string(nil), c.dirs...)
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	dirs = append(dirs, ".")
	for _, d := range dirs {
		f, err := c.root.Open(d)
		if err != nil {
			return err
		}
		err = f.Sync()
		if err == nil {
			err = f.Chmod(0o555)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("failed to seal staged directory %s: %w", d, err)
		}
	}
	// Make the new directory entry itself durable.
	parent, err := os.Open(filepath.Dir(c.dst))
	if err != nil {
		return err
	}
	defer parent.Close()
	return parent.Sync()
}

// removeAll removes a staged tree, restoring write permission first.
func removeAll(dir string) error {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// RemoveStaged removes a directory holding staged copies (see [Stage]),
// whose sealed (read-only) directories os.RemoveAll alone cannot empty.
func RemoveStaged(dir string) error { return removeAll(dir) }
