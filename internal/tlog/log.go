// Package tlog implements custody's transparency log: an append-only
// RFC 6962 Merkle tree of every registry state change, stored in the
// registry's own database and appended in the same transaction as the
// change it records, with checkpoints signed as C2SP signed notes and read
// access in the C2SP tlog-tiles layout.
//
// # Appending
//
// [Hook] is a registry.TxHook: for every journal event it builds the
// [Entry], locks the log head and reads the right edge of the tree kept
// with it ([store.Tx.LockLog]), computes the new stored hashes
// (golang.org/x/mod/sumdb/tlog's StoredHashes layout, which gives O(log n)
// proofs) and writes entry, hashes and the new size and edge
// ([store.Tx.AppendLog]). Everything commits with the state change or
// rolls back with it: there is no moment at which one exists without the
// other. Leaf indexes come from the locked head, never from a database
// sequence.
//
// # Hashing (RFC 6962, section 2.1)
//
// Leaf hash: SHA-256(0x00 || entry bytes). Interior node: SHA-256(0x01 ||
// left || right). The tree over n leaves splits at the largest power of
// two smaller than n. golang.org/x/mod/sumdb/tlog implements exactly this
// (RecordHash, NodeHash, TreeHash); the tests check its proofs with an
// independent verifier (github.com/transparency-dev/merkle/proof).
//
// # Reading
//
// [Log] signs checkpoints ([Log.Checkpoint]), serves tiles ([Log.Tile]) and
// proves inclusion ([Log.ProveInclusion]) and consistency
// ([Log.ProveConsistency]). The formats are in docs/tlog.md.
package tlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	"github.com/custody-ml/custody/internal/store"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Hash is a SHA-256 tree hash.
type Hash = tlog.Hash

// hashReader reads stored hashes through a store reader (or transaction).
func hashReader(ctx context.Context, r store.Reader) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := r.LogHashes(ctx, indexes)
		if err != nil {
			return nil, err
		}
		out := make([]tlog.Hash, len(hs))
		for i := range hs {
			out[i] = tlog.Hash(hs[i])
		}
		return out, nil
	})
}

// Append adds entry as the next leaf, inside tx, and returns its index.
// The caller's transaction must commit for the entry to exist.
//
// The log head is locked from here until the transaction ends: LockLog
// returns the size with the right edge (the hashes StoredHashes needs),
// AppendLog hands the entry, its stored hashes and the new size and edge to
// the transaction.
func Append(ctx context.Context, tx store.Tx, entry []byte) (int64, error) {
	if len(entry) > MaxEntrySize {
		return 0, fmt.Errorf("log entry is %d bytes, more than %d", len(entry), MaxEntrySize)
	}
	n, edge, err := tx.LockLog(ctx)
	if err != nil {
		return 0, err
	}
	idx := edgeIndexes(n)
	if len(edge) != len(idx) {
		// No edge kept with the head (a log appended to before it was):
		// read it from the stored hashes, once.
		if edge, err = readEdge(ctx, tx, idx); err != nil {
			return 0, fmt.Errorf("failed to read the right edge of the log of %d entries: %w", n, err)
		}
	}
	hs, next, err := nextHashes(n, edge, entry)
	if err != nil {
		return 0, err
	}
	if err := tx.AppendLog(ctx, n, entry, tlog.StoredHashIndex(0, n), hs, next); err != nil {
		return 0, err
	}
	return n, nil
}

// nextHashes returns the stored hashes that appending entry to a log of
// n entries with right edge edge adds, and the new right edge.
func nextHashes(n int64, edge [][32]byte, entry []byte) ([][32]byte, [][32]byte, error) {
	idx := edgeIndexes(n)
	if len(edge) != len(idx) {
		return nil, nil, fmt.Errorf("log of %d entries: right edge of %d hashes, want %d", n, len(edge), len(idx))
	}
	byIndex := make(map[int64]tlog.Hash, len(idx))
	for i, x := range idx {
		byIndex[x] = edge[i]
	}
	hs, err := tlog.StoredHashes(n, entry, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := byIndex[x]
			if !ok { // cannot happen: StoredHashes reads only the edge
				return nil, fmt.Errorf("stored hash %d is not on the right edge", x)
			}
			out[i] = h
		}
		return out, nil
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to hash log entry %d: %w", n, err)
	}
	raw := make([][32]byte, len(hs))
	for i := range hs {
		raw[i] = hs[i]
	}
	// The new edge: the complete subtrees the new leaf merged with (one
	// per trailing 1 bit of n) are replaced by their merged root, the
	// last stored hash.
	merged := bits.TrailingZeros64(uint64(n + 1))
	next := append(edge[:len(edge)-merged:len(edge)-merged], raw[len(raw)-1])
	return raw, next, nil
}

// edgeIndexes returns the stored-hash indexes of the right edge of a tree
// of n leaves: the roots of the complete subtrees that cover it, one per 1
// bit of n, largest (leftmost) first.
func edgeIndexes(n int64) []int64 {
	var idx []int64
	for level := 62; level >= 0; level-- {
		if n>>level&1 == 1 {
			idx = append(idx, tlog.StoredHashIndex(level, n>>level-1))
		}
	}
	return idx
}

// readEdge reads the right edge at idx from the stored hashes.
func readEdge(ctx context.Context, r store.Reader, idx []int64) ([][32]byte, error) {
	if len(idx) == 0 {
		return [][32]byte{}, nil
	}
	return r.LogHashes(ctx, idx)
}

// Hook appends every registry change to the log, in the change's
// transaction. It implements registry.TxHook; it needs no key (only
// checkpoints are signed), so every writer, including `custody token
// create` writing the database directly, installs it. The entry is built
// when the change is made; the append itself is deferred to the end of the
// transaction (store.Tx.Defer), so that a transaction locks the log only
// for its last moments, and a group of changes committed together locks
// and writes the log once (docs/tlog.md, "Performance").
type Hook struct{}

// AfterChange builds the entry describing ev and defers its append, which
// sets ev.LogIndex to its leaf index. The entry's size is checked here,
// so that an oversized change fails alone; its event number is known only
// at the end, when the store has written the journal (store.Tx.AppendEvent).
func (Hook) AfterChange(ctx context.Context, tx store.Tx, ev *store.Event) error {
	e, err := EntryFor(ctx, tx, ev)
	if err != nil {
		return err
	}
	e.Event = 1<<53 - 1 // the widest event number an entry can hold
	if _, err := e.Marshal(); err != nil {
		return err
	}
	tx.Defer(func(ctx context.Context, tx store.Tx) error {
		e.Event = ev.Seq
		b, err := e.Marshal()
		if err != nil {
			return err
		}
		idx, err := Append(ctx, tx, b)
		if err != nil {
			return fmt.Errorf("failed to append %s %s to the log: %w", ev.Type, ev.Subject, err)
		}
		ev.LogIndex = &idx
		return nil
	})
	return nil
}

// EntryFor builds the log entry of a journal event: the event's type,
// subject, actor and time, and its payload as data. An alias change also
// records the digest of the version the alias now points to ("digest")
// and of the one it pointed to before ("previous_digest"), read in tx.
func EntryFor(ctx context.Context, r store.Reader, ev *store.Event) (*Entry, error) {
	data := map[string]any{}
	if len(ev.Payload) > 0 {
		if err := decodeNumbers(ev.Payload, &data); err != nil {
			return nil, fmt.Errorf("event %s %s: payload: %w", ev.Type, ev.Subject, err)
		}
	}
	if ev.Type == "alias.set" || ev.Type == "alias.remove" {
		model, _ := data["model"].(string)
		for _, k := range []string{"version", "previous"} {
			v, _ := data[k].(string)
			if v == "" {
				continue
			}
			ver, err := r.GetVersion(ctx, model, v)
			if err != nil {
				return nil, fmt.Errorf("event %s %s: %w", ev.Type, ev.Subject, err)
			}
			name := "digest"
			if k == "previous" {
				name = "previous_digest"
			}
			data[name] = ver.Manifest.Digest.String()
		}
	}
	return &Entry{Type: ev.Type, Subject: ev.Subject, Actor: ev.Actor, Time: ev.At, Event: ev.Seq, Data: data}, nil
}

func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytesReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// Log reads the log and signs its checkpoints.
type Log struct {
	r      store.Reader
	signer note.Signer
}

// New returns the log stored behind r, signing checkpoints with signer
// (whose key name is the log's origin). signer may be nil for a log that
// only serves tiles and proofs.
func New(r store.Reader, signer note.Signer) *Log { return &Log{r: r, signer: signer} }

// Origin is the log's name: the first line of its checkpoints.
func (l *Log) Origin() string {
	if l.signer == nil {
		return ""
	}
	return l.signer.Name()
}

// ErrNoKey is returned by [Log.Checkpoint] when the log has no signing key.
var ErrNoKey = errors.New("the log has no signing key")

// Head returns the current tree size and root hash.
func (l *Log) Head(ctx context.Context) (int64, Hash, error) {
	n, err := l.r.LogSize(ctx)
	if err != nil {
		return 0, Hash{}, err
	}
	h, err := tlog.TreeHash(n, hashReader(ctx, l.r))
	if err != nil {
		return 0, Hash{}, fmt.Errorf("failed to compute the tree hash of size %d: %w", n, err)
	}
	return n, h, nil
}

// Checkpoint returns the current checkpoint as a signed note.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	if l.signer == nil {
		return nil, ErrNoKey
	}
	n, h, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	text := Checkpoint{Origin: l.signer.Name(), Size: n, Hash: h}.Format()
	return note.Sign(&note.Note{Text: string(text)}, l.signer)
}

// ErrOutOfRange is wrapped when a proof, tile or entry is asked for beyond
// the tree; check with errors.Is.
var ErrOutOfRange = errors.New("beyond the log")

// Entry returns the entry at index.
func (l *Log) Entry(ctx context.Context, index int64) ([]byte, error) {
	es, err := l.r.LogEntries(ctx, index, 1)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("log entry %d: %w", index, ErrOutOfRange)
	}
	return es[0], nil
}

// size returns the log size, or want if it is at most the log size.
func (l *Log) size(ctx context.Context, want int64) (int64, error) {
	n, err := l.r.LogSize(ctx)
	if err != nil {
		return 0, err
	}
	if want == 0 {
		return n, nil
	}
	if want < 0 || want > n {
		return 0, fmt.Errorf("tree size %d (the log has %d entries): %w", want, n, ErrOutOfRange)
	}
	return want, nil
}

// ProveInclusion returns the RFC 6962 inclusion proof (audit path) of
// entry index in the tree of the given size (0: the current size), and
// that size.
func (l *Log) ProveInclusion(ctx context.Context, index, size int64) ([]Hash, int64, error) {
	n, err := l.size(ctx, size)
	if err != nil {
		return nil, 0, err
	}
	if index < 0 || index >= n {
		return nil, 0, fmt.Errorf("entry %d in a tree of %d: %w", index, n, ErrOutOfRange)
	}
	p, err := tlog.ProveRecord(n, index, hashReader(ctx, l.r))
	if err != nil {
		return nil, 0, err
	}
	return p, n, nil
}

// ProveConsistency returns the RFC 6962 consistency proof from the tree of
// size from to the tree of size size (0: the current size), and that size.
func (l *Log) ProveConsistency(ctx context.Context, from, size int64) ([]Hash, int64, error) {
	n, err := l.size(ctx, size)
	if err != nil {
		return nil, 0, err
	}
	if from < 1 || from > n {
		return nil, 0, fmt.Errorf("consistency from %d to %d: %w", from, n, ErrOutOfRange)
	}
	p, err := tlog.ProveTree(n, from, hashReader(ctx, l.r))
	if err != nil {
		return nil, 0, err
	}
	return p, n, nil
}
