package digest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
)

// Options control how a model is enumerated and hashed.
type Options struct {
	// ShardSize, when positive, selects the OMS "shards" method: every file
	// is hashed as consecutive ranges of ShardSize bytes (the last may be
	// shorter), so a single large file uses every core. Zero selects the
	// "files" method.
	ShardSize int64
	// AllowSymlinks follows symbolic links that stay inside the model root.
	AllowSymlinks bool
	// Ignore lists paths excluded from the manifest, matched exactly
	// relative to the model root (see [NormalizeIgnore]), in addition to
	// [DefaultIgnores].
	Ignore []string
	// Workers is the number of files or shards hashed at once; zero means
	// runtime.GOMAXPROCS(0).
	Workers int
	// BufferSize is the read size per worker; zero means 256 KiB, which
	// keeps the buffer in a core's L2 cache between the read and the hash.
	BufferSize int
}

// DefaultShardSize is the OMS default shard size, 10^9 bytes.
const DefaultShardSize = 1_000_000_000

const defaultBufferSize = 256 << 10

func (o Options) validate() error {
	if o.ShardSize < 0 {
		return fmt.Errorf("%w: shard size %d is negative", ErrBadOptions, o.ShardSize)
	}
	if o.Workers < 0 || o.BufferSize < 0 {
		return fmt.Errorf("%w: negative workers or buffer size", ErrBadOptions)
	}
	return nil
}

// unit is one piece of work: a whole file, or one shard of it.
type unit struct {
	file   int   // index into model.files
	off, n int64 // byte range [off, off+n)
	last   bool  // the range ends at the file's size
	sum    Digest
}

// Hash enumerates and hashes the model at path (a file or a directory).
// It returns an error wrapping [ErrRefused], [ErrChanged], [ErrEmptyModel]
// or [ErrBadOptions], or an I/O error naming the path concerned.
func Hash(ctx context.Context, path string, opts Options) (*Manifest, error) {
	return hashModel(ctx, path, opts, nil)
}

// copier receives every byte hashed; see [HashCopy].
type copier interface {
	prepare(m *model) error
	writerFor(file int) (closingWriterAt, error)
	fileDone(file int) error
}

func hashModel(ctx context.Context, path string, opts Options, cp copier) (*Manifest, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m, err := enumerate(path, opts)
	if err != nil {
		return nil, err
	}
	defer m.root.Close()
	if len(m.files) == 0 {
		return nil, fmt.Errorf("%s: %w (after exclusions)", path, ErrEmptyModel)
	}
	units := makeUnits(m, opts.ShardSize)
	if cp != nil {
		if err := cp.prepare(m); err != nil {
			return nil, err
		}
	}
	if err := hashUnits(ctx, m, units, opts, cp); err != nil {
		return nil, err
	}
	return buildManifest(m, units, opts), nil
}

func makeUnits(m *model, shard int64) []unit {
	units := make([]unit, 0, len(m.files))
	for i, f := range m.files {
		size := f.info.Size()
		if shard <= 0 || size == 0 {
			units = append(units, unit{file: i, off: 0, n: size, last: true})
			continue
		}
		for off := int64(0); off < size; off += shard {
			n := min(shard, size-off)
			units = append(units, unit{file: i, off: off, n: n, last: off+n == size})
		}
	}
	return units
}

// hashUnits hashes every unit with a pool of workers. Work is handed out
// largest first so that one big file does not start last; results land in
// units[i].sum, so the outcome does not depend on scheduling.
func hashUnits(ctx context.Context, m *model, units []unit, opts Options, cp copier) error {
	workers := opts.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(units))
	bufSize := opts.BufferSize
	if bufSize == 0 {
		bufSize = defaultBufferSize
	}
	order := make([]int, len(units))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return units[order[a]].n > units[order[b]].n })

	// remaining counts unfinished units per file, so the copier learns when
	// a file is complete.
	var mu sync.Mutex
	remaining := make([]int, len(m.files))
	for _, u := range units {
		remaining[u.file]++
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for i := range next {
				u := &units[i]
				if err := hashUnit(ctx, m, u, buf, cp); err != nil {
					cancel(err)
					continue
				}
				if cp != nil {
					mu.Lock()
					remaining[u.file]--
					done := remaining[u.file] == 0
					mu.Unlock()
					if done {
						if err := cp.fileDone(u.file); err != nil {
							cancel(err)
						}
					}
				}
			}
		}()
	}
feed:
	for _, i := range order {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// hashUnit hashes one byte range, checking that the file opened is the one
// enumerated and that it did not change while it was read.
func hashUnit(ctx context.Context, m *model, u *unit, buf []byte, cp copier) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fe := m.files[u.file]
	// O_NONBLOCK: a FIFO swapped in after enumeration must not block the
	// open; it is then refused by the identity check below.
	f, err := m.root.OpenFile(fe.rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return &PathError{Path: fe.name, Err: err}
	}
	defer f.Close()
	if err := sameFile(f, fe); err != nil {
		return err
	}
	if !m.allowSymlinks {
		// os.Root follows links inside the root; without AllowSymlinks a
		// link swapped in after enumeration is refused even when it points
		// at the very file enumerated.
		if li, err := m.root.Lstat(fe.rel); err != nil || li.Mode()&fs.ModeSymlink != 0 {
			return refused(fe.name, "replaced by a symbolic link")
		}
	}
	var w closingWriterAt
	if cp != nil {
		if w, err = cp.writerFor(u.file); err != nil {
			return err
		}
		defer w.Close()
	}
	h := sha256.New()
	off, end := u.off, u.off+u.n
	for off < end {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		chunk := buf[:min(int64(len(buf)), end-off)]
		n, err := f.ReadAt(chunk, off)
		if n > 0 {
			if w != nil {
				if _, werr := w.WriteAt(chunk[:n], off); werr != nil {
					return werr
				}
			}
			h.Write(chunk[:n])
			off += int64(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && off < end {
				return changed(fe.name, "shrank from %d bytes to %d while being read", fe.info.Size(), off)
			}
			if !errors.Is(err, io.EOF) {
				return &PathError{Path: fe.name, Err: err}
			}
		}
	}
	if u.last {
		// The file must end exactly where enumeration said it did.
		var one [1]byte
		if n, _ := f.ReadAt(one[:], end); n != 0 {
			return changed(fe.name, "grew beyond %d bytes while being read", fe.info.Size())
		}
	}
	if err := sameFile(f, fe); err != nil {
		return err
	}
	h.Sum(u.sum[:0])
	return nil
}

// sameFile checks that the open file is the regular file enumeration saw,
// with the same size and modification time.
func sameFile(f *os.File, fe fileEntry) error {
	st, err := f.Stat()
	if err != nil {
		return &PathError{Path: fe.name, Err: err}
	}
	switch {
	case !st.Mode().IsRegular():
		return refused(fe.name, "replaced by a %s", fileType(st.Mode()))
	case !os.SameFile(st, fe.info):
		return changed(fe.name, "replaced by another file")
	case st.Size() != fe.info.Size():
		return changed(fe.name, "size changed from %d to %d bytes", fe.info.Size(), st.Size())
	case !st.ModTime().Equal(fe.info.ModTime()):
		return changed(fe.name, "modified while being hashed")
	}
	return nil
}
