package tlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/custody-ml/custody/internal/store"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrTampered is wrapped when the stored log contradicts itself: an entry
// that does not hash to the stored tree, a missing or malformed entry.
var ErrTampered = errors.New("the log was altered")

// Replay calls fn with every entry in index order, after checking that the
// entries hash to exactly the stored hashes (every one of them, so a
// rewritten entry or hash is caught even where no proof would look) and
// returns the tree size and root hash they make. Memory grows with the
// log (64 bytes per entry).
func (l *Log) Replay(ctx context.Context, fn func(index int64, entry []byte) error) (int64, Hash, error) {
	size, err := l.r.LogSize(ctx)
	if err != nil {
		return 0, Hash{}, err
	}
	var hashes []tlog.Hash // recomputed, by stored index
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(hashes)) {
				return nil, fmt.Errorf("stored hash %d not computed", x)
			}
			out[i] = hashes[x]
		}
		return out, nil
	})
	const batch = 1000
	for n := int64(0); n < size; {
		es, err := l.r.LogEntries(ctx, n, batch)
		if err != nil {
			return 0, Hash{}, err
		}
		if len(es) == 0 {
			return 0, Hash{}, fmt.Errorf("%w: log entry %d is missing (size %d)", ErrTampered, n, size)
		}
		for _, e := range es {
			if n >= size {
				break
			}
			hs, err := tlog.StoredHashes(n, e, mem)
			if err != nil {
				return 0, Hash{}, err
			}
			start := tlog.StoredHashIndex(0, n)
			idx := make([]int64, len(hs))
			for i := range hs {
				idx[i] = start + int64(i)
			}
			stored, err := l.r.LogHashes(ctx, idx)
			if errors.Is(err, store.ErrNotFound) {
				return 0, Hash{}, fmt.Errorf("%w: entry %d: %v", ErrTampered, n, err)
			} else if err != nil {
				return 0, Hash{}, fmt.Errorf("entry %d: %w", n, err)
			}
			for i := range hs {
				if stored[i] != hs[i] {
					return 0, Hash{}, fmt.Errorf("%w: entry %d: stored hash %d is %x, the entries give %x", ErrTampered, n, idx[i], stored[i][:8], hs[i][:8])
				}
			}
			hashes = append(hashes, hs...)
			if fn != nil {
				if err := fn(n, e); err != nil {
					return 0, Hash{}, err
				}
			}
			n++
		}
	}
	root, err := tlog.TreeHash(size, mem)
	if err != nil {
		return 0, Hash{}, err
	}
	return size, root, nil
}
