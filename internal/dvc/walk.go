package dvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ErrSymlink is returned (wrapped; check with errors.Is) when a tree holds a
// symbolic link and [Options.AllowSymlinks] is false.
var ErrSymlink = errors.New("symbolic link")

// Options control [Hash].
type Options struct {
	// Algorithm is the per-file hash; the zero value means AlgMD5 (DVC 3.x).
	Algorithm Algorithm
	// AllowSymlinks hashes a symlinked file by its target's content, as DVC
	// does, when the target stays inside the directory (as custody's
	// manifests require). A symlinked directory is always an error.
	AllowSymlinks bool
	// Workers hash files in parallel; <= 0 means GOMAXPROCS.
	Workers int
}

// Result is the DVC view of a file or directory, with the fields that
// `dvc add` writes into a .dvc file.
type Result struct {
	// Hash is the file's md5, or the directory's "<md5>.dir".
	Hash      string    `json:"md5"`
	Algorithm Algorithm `json:"hash"`
	Size      int64     `json:"size"`
	// NFiles and Files are set for directories only.
	NFiles   int      `json:"nfiles,omitempty"`
	IsDir    bool     `json:"-"`
	Files    []Entry  `json:"-"`
	Warnings []string `json:"warnings,omitempty"`
	// DVCIgnore lists the .dvcignore files applied, as slash paths from
	// the ignore root (the DVC repository root, else the directory).
	DVCIgnore []string `json:"dvcignore,omitempty"`
}

// Hash computes the DVC hash of path, a regular file or a directory, as
// `dvc add path` records it. Directories are walked with DVC's default
// ignores and its .dvcignore files (see ignore.go: the files from the DVC
// repository root, found upwards from path, down to every walked
// directory), and DVC sub-repositories are left out. Empty directories do
// not appear in DVC listings and do not affect the hash.
func Hash(ctx context.Context, path string, opts Options) (*Result, error) {
	if opts.Algorithm == "" {
		opts.Algorithm = AlgMD5
	}
	if opts.Algorithm != AlgMD5 && opts.Algorithm != AlgMD5Dos2Unix {
		return nil, fmt.Errorf("dvc: unsupported hash algorithm %q", opts.Algorithm)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("failed to hash %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if !opts.AllowSymlinks {
			return nil, fmt.Errorf("failed to hash %s: %w", path, ErrSymlink)
		}
		if fi, err = os.Stat(path); err != nil {
			return nil, fmt.Errorf("failed to hash %s: %w", path, err)
		}
	}
	if fi.Mode().IsRegular() {
		sum, n, err := hashFile(path, opts.Algorithm)
		if err != nil {
			return nil, err
		}
		return &Result{Hash: sum, Algorithm: opts.Algorithm, Size: n}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("failed to hash %s: not a regular file or directory", path)
	}
	return hashDir(ctx, path, opts)
}

func hashFile(path string, alg Algorithm) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("failed to hash %s: %w", path, err)
	}
	defer f.Close()
	sum, n, err := MD5(f, alg)
	if err != nil {
		return "", 0, fmt.Errorf("failed to hash %s: %w", path, err)
	}
	return sum, n, nil
}

func hashDir(ctx context.Context, root string, opts Options) (*Result, error) {
	res := &Result{Algorithm: opts.Algorithm, IsDir: true}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("failed to walk %s: %w", root, err)
	}
	ign, base, err := newIgnoreTree(root)
	if err != nil {
		return nil, fmt.Errorf("failed to read .dvcignore files for %s: %w", root, err)
	}
	fromRoot := func(rel string) string {
		if base == "" {
			return rel
		}
		return base + "/" + rel
	}
	var rels []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		// A symbolic link is listed as what it points to (DVC's walk
		// follows links); links are checked below.
		isDir := d.IsDir()
		if d.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(p); err == nil {
				isDir = fi.IsDir()
			}
		}
		full := fromRoot(filepath.ToSlash(rel))
		if ign.skip(full, isDir) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if err := ign.enter(full); err != nil {
				return err
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			if !opts.AllowSymlinks {
				return fmt.Errorf("%s: %w", p, ErrSymlink)
			}
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return err
			}
			if r, err := filepath.Rel(realRoot, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return fmt.Errorf("%s: symbolic link leaves %s", p, root)
			}
			fi, err := os.Stat(target)
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s: symbolic link to a non-regular file", p)
			}
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file", p)
		}
		rels = append(rels, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to walk %s: %w", root, err)
	}
	sort.Strings(rels)
	entries := make([]Entry, len(rels))
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				sum, n, err := hashFile(filepath.Join(root, filepath.FromSlash(rels[i])), opts.Algorithm)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				entries[i] = Entry{RelPath: rels[i], MD5: sum, Size: n}
			}
		})
	}
feed:
	for i := range rels {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		res.Size += e.Size
	}
	res.NFiles = len(entries)
	res.DVCIgnore = ign.files
	res.Files = entries
	res.Hash = DirHash(entries)
	return res, nil
}
