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
		if rest := size - n; int64(len(es)) > rest {
			es = es[:rest]
		}
		// Recompute the batch's stored hashes, then compare them with the
		// stored ones in one query (they are contiguous).
		first := int64(len(hashes))
		for i, e := range es {
			hs, err := tlog.StoredHashes(n+int64(i), e, mem)
			if err != nil {
				return 0, Hash{}, err
			}
			hashes = append(hashes, hs...)
		}
		idx := make([]int64, int64(len(hashes))-first)
		for i := range idx {
			idx[i] = first + int64(i)
		}
		stored, err := l.r.LogHashes(ctx, idx)
		if errors.Is(err, store.ErrNotFound) {
			return 0, Hash{}, fmt.Errorf("%w: entries %d..%d: %v", ErrTampered, n, n+int64(len(es))-1, err)
		} else if err != nil {
			return 0, Hash{}, err
		}
		for i := range stored {
			if stored[i] != hashes[idx[i]] {
				level, at := tlog.SplitStoredHashIndex(idx[i])
				return 0, Hash{}, fmt.Errorf("%w: stored hash %d (level %d, node %d) is %x, the entries give %x", ErrTampered, idx[i], level, at, stored[i][:8], hashes[idx[i]][:8])
			}
		}
		for _, e := range es {
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
