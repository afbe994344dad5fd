// Package serving decides what a serving process may load. It resolves a
// model alias through the registry API and trusts the answer only once the
// registry's transparency log proves it: the checkpoint is signed by the
// log key the process was configured with, the alias change the API names
// is included in that checkpoint's tree, names the same model, alias,
// version and digest, and is the latest change of the alias in the tree;
// and the tree is consistent with every checkpoint the process verified
// before (a rewritten log is refused). Then it checks the model files
// against the logged digest (optionally copying them into a fresh staging
// directory while hashing) and the version's signature bundles against
// the keys the process trusts.
//
// The trust chain, byte by byte, is in docs/serving.md. Every refusal
// wraps [ErrRefused] (check with errors.Is); other errors mean the check
// could not be made (transport, I/O).
package serving

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/custody-ml/custody/internal/client"
	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/fileutil"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/tlog"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

// ErrRefused is wrapped by every error that means "do not serve this":
// the log does not prove the registry's answer, the log was rewritten, the
// files or signatures do not match. Check with errors.Is.
var ErrRefused = errors.New("refused")

// Refusal kinds, each wrapping [ErrRefused].
var (
	// ErrNotProven: the checkpoint is not signed by the log key, or an
	// inclusion proof or a tile does not verify.
	ErrNotProven = fmt.Errorf("%w: the log does not prove the registry's answer", ErrRefused)
	// ErrRewritten: the log is not consistent with a checkpoint verified
	// earlier.
	ErrRewritten = fmt.Errorf("%w: the log was rewritten", ErrRefused)
	// ErrDisagrees: the registry's answer and the log entry it names
	// disagree.
	ErrDisagrees = fmt.Errorf("%w: the registry's answer disagrees with the log", ErrRefused)
	// ErrStale: the log holds a later change of the alias than the one
	// the registry answered with.
	ErrStale = fmt.Errorf("%w: the registry's answer is not the alias's latest change in the log", ErrRefused)
	// ErrFiles: the model files do not match the logged digest.
	ErrFiles = fmt.Errorf("%w: the model files do not match", ErrRefused)
	// ErrUnsigned: no signature of the version verifies under the trusted
	// keys.
	ErrUnsigned = fmt.Errorf("%w: the version is not signed by a trusted key", ErrRefused)
)

func refuse(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

// proven maps tlog verification failures to ErrNotProven.
func proven(err error) error {
	for _, t := range []error{tlog.ErrBadSignature, tlog.ErrProof, tlog.ErrMalformedCheckpoint, tlog.ErrMalformedEntry, tlog.ErrTampered} {
		if errors.Is(err, t) {
			return fmt.Errorf("%w: %w", ErrNotProven, err)
		}
	}
	return err
}

// Target is an alias resolution the log proves.
type Target struct {
	Model, Alias, Version string
	// Digest is the pinned manifest digest the log entry records.
	Digest digest.Digest
	// LogIndex is the leaf index of the alias change's entry.
	LogIndex int64
	// Checkpoint is the verified checkpoint the proofs are against.
	Checkpoint tlog.Checkpoint
	// Record is the version as the API served it (manifest, signatures,
	// URI); its digest equals Digest.
	Record *store.Version
}

func (t *Target) String() string {
	return fmt.Sprintf("%s@%s → version %s (%s, log entry %d, tree size %d)", t.Model, t.Alias, t.Version, t.Digest, t.LogIndex, t.Checkpoint.Size)
}

type aliasKey struct{ model, alias string }

// scanned records that no change of an alias after entry index exists
// in the log below upTo.
type scanned struct{ index, upTo int64 }

// Resolver resolves aliases through one registry and proves the answers
// against its log. It remembers the last checkpoint it verified (and, with
// a state file, across restarts) and requires every later one to be
// consistent with it. Not safe for concurrent use.
type Resolver struct {
	c         *client.Client
	v         note.Verifier
	statePath string
	last      *tlog.Checkpoint
	scans     map[aliasKey]scanned

	// Retries bounds how often Resolve refetches when the alias moved
	// between reading the checkpoint and asking the API (default 3).
	Retries int
}

// NewResolver returns a resolver over c whose checkpoints must be signed
// by v. With statePath != "", the last verified checkpoint is read from
// that file (a signed checkpoint, as `custody log checkpoint --out` writes;
// absent means first use) and every newly verified one is written back.
func NewResolver(c *client.Client, v note.Verifier, statePath string) (*Resolver, error) {
	r := &Resolver{c: c, v: v, statePath: statePath, scans: map[aliasKey]scanned{}, Retries: 3}
	if statePath == "" {
		return r, nil
	}
	b, err := os.ReadFile(statePath)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	cp, err := tlog.OpenCheckpoint(b, v)
	if err != nil {
		// A state file that does not verify proves nothing either way.
		return nil, fmt.Errorf("state file %s: %w", statePath, err)
	}
	r.last = &cp
	return r, nil
}

// Last returns the last verified checkpoint (nil before the first).
func (r *Resolver) Last() *tlog.Checkpoint { return r.last }

// checkpoint fetches the current checkpoint, verifies its signature and
// origin, and its consistency with the last verified one; then makes it
// the last one (and saves it to the state file).
func (r *Resolver) checkpoint(ctx context.Context) (tlog.Checkpoint, error) {
	signed, err := r.c.LogCheckpoint(ctx)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	cp, err := tlog.OpenCheckpoint(signed, r.v)
	if err != nil {
		return tlog.Checkpoint{}, proven(fmt.Errorf("the server's checkpoint: %w", err))
	}
	if old := r.last; old != nil {
		var p []tlog.Hash
		switch {
		case cp.Size < old.Size:
			return tlog.Checkpoint{}, refuse(ErrRewritten, "the log shrank from %d to %d entries", old.Size, cp.Size)
		case old.Size > 0 && cp.Size > old.Size:
			cons, err := r.c.LogConsistency(ctx, old.Size, cp.Size)
			if err != nil {
				return tlog.Checkpoint{}, err
			}
			if cons.From != old.Size || cons.Size != cp.Size {
				return tlog.Checkpoint{}, refuse(ErrRewritten, "the server answered a consistency proof from %d to %d, not %d to %d", cons.From, cons.Size, old.Size, cp.Size)
			}
			p = cons.Proof
		}
		if err := tlog.VerifyConsistency(*old, cp, p); err != nil {
			return tlog.Checkpoint{}, refuse(ErrRewritten, "not consistent with the checkpoint verified earlier (size %d, root %s): %v", old.Size, old.Hash, err)
		}
	}
	if r.statePath != "" && (r.last == nil || *r.last != cp) {
		if err := fileutil.WriteFileAtomic(r.statePath, signed, 0o644); err != nil {
			return tlog.Checkpoint{}, fmt.Errorf("failed to save the state file: %w", err)
		}
	}
	r.last = &cp
	return cp, nil
}

// Resolve asks the registry where model@alias points and proves the
// answer against the log:
//
//  1. fetch the checkpoint; it must be signed by the log key, name the
//     key's origin, and be consistent with the last verified checkpoint;
//  2. ask the API for the alias; its answer names the log entry of the
//     change (log_index);
//  3. fetch that entry with its inclusion proof in the checkpoint's tree
//     and verify the proof (github.com/transparency-dev/merkle);
//  4. the entry must be an alias.set of this model and alias to the
//     version the API named, and record the digest of the version record
//     the API serves;
//  5. no later entry of the tree may change the alias: the entries after
//     it are read as entry bundles and checked against the checkpoint's
//     root through hash tiles (golang.org/x/mod/sumdb/tlog), then
//     scanned. The scan is remembered, so later calls read only new
//     entries while the alias does not move.
func (r *Resolver) Resolve(ctx context.Context, model, alias string) (*Target, error) {
	for attempt := 0; ; attempt++ {
		t, retry, err := r.resolve(ctx, model, alias)
		if err == nil || !retry || attempt >= r.Retries {
			return t, err
		}
	}
}

func (r *Resolver) resolve(ctx context.Context, model, alias string) (_ *Target, retry bool, _ error) {
	cp, err := r.checkpoint(ctx)
	if err != nil {
		return nil, false, err
	}
	ev, err := r.c.ResolveAlias(ctx, model, alias, timeZero)
	if err != nil {
		return nil, false, err
	}
	if ev.Model != model || ev.Alias != alias || ev.Version == "" {
		return nil, false, refuse(ErrDisagrees, "asked for %s@%s, the server answered %s@%s → %q", model, alias, ev.Model, ev.Alias, ev.Version)
	}
	if ev.LogIndex == nil {
		return nil, false, refuse(ErrNotProven, "the server names no log entry for the change of %s@%s (made before the log recorded indexes?): set the alias again", model, alias)
	}
	idx := *ev.LogIndex
	if idx < 0 {
		return nil, false, refuse(ErrDisagrees, "log index %d", idx)
	}
	if idx >= cp.Size {
		// The alias moved after the checkpoint was signed: read again.
		return nil, true, refuse(ErrNotProven, "the change of %s@%s is log entry %d, beyond the checkpoint's %d entries", model, alias, idx, cp.Size)
	}
	p, err := r.c.LogEntry(ctx, idx, cp.Size)
	if err != nil {
		return nil, false, err
	}
	if p.Index != idx || p.Size != cp.Size {
		return nil, false, refuse(ErrNotProven, "asked for entry %d in tree %d, the server answered for entry %d in tree %d", idx, cp.Size, p.Index, p.Size)
	}
	if err := tlog.VerifyInclusion(cp, idx, []byte(p.Entry), p.Proof); err != nil {
		return nil, false, proven(err)
	}
	e, err := tlog.ParseEntry([]byte(p.Entry))
	if err != nil {
		return nil, false, proven(err)
	}
	str := func(k string) string { s, _ := e.Data[k].(string); return s }
	if e.Type != "alias.set" || e.Subject != model+"/"+alias || str("model") != model || str("alias") != alias || str("version") != ev.Version {
		return nil, false, refuse(ErrDisagrees, "the server says %s@%s → %s (log entry %d), the entry is %s %s → %q", model, alias, ev.Version, idx, e.Type, e.Subject, str("version"))
	}
	logged, err := digest.ParseDigest(str("digest"))
	if err != nil {
		return nil, false, refuse(ErrDisagrees, "log entry %d records no valid digest: %v", idx, err)
	}
	k := aliasKey{model, alias}
	from := idx + 1
	if s, ok := r.scans[k]; ok && s.index == idx && s.upTo <= cp.Size {
		from = s.upTo // the entries below were scanned under a checkpoint this one extends
	}
	if later, err := r.laterChange(ctx, cp, from, model, alias); err != nil {
		return nil, false, err
	} else if later >= 0 {
		return nil, true, refuse(ErrStale, "%s@%s → %s is log entry %d, but entry %d changed the alias again", model, alias, ev.Version, idx, later)
	}
	r.scans[k] = scanned{index: idx, upTo: cp.Size}
	v, err := r.c.GetVersion(ctx, model, ev.Version)
	if err != nil {
		return nil, false, err
	}
	if v.Model != model || v.Version != ev.Version || v.Manifest.Digest != logged {
		return nil, false, refuse(ErrDisagrees, "the server's record of %s@%s has digest %s, the log entry %d says %s", model, ev.Version, v.Manifest.Digest, idx, logged)
	}
	return &Target{Model: model, Alias: alias, Version: ev.Version, Digest: logged, LogIndex: idx, Checkpoint: cp, Record: v}, false, nil
}

// laterChange returns the index of the first entry in [from, cp.Size)
// that changes model/alias, or -1. The entries are authenticated against
// cp: their leaf hashes must equal the level-0 hashes of the hash tiles,
// which x/mod's TileHashReader checks against cp's root hash.
func (r *Resolver) laterChange(ctx context.Context, cp tlog.Checkpoint, from int64, model, alias string) (int64, error) {
	if from >= cp.Size {
		return -1, nil
	}
	hr := xtlog.TileHashReader(xtlog.Tree{N: cp.Size, Hash: cp.Hash}, tileReader{ctx: ctx, c: r.c})
	const w = 256
	for n := from / w; n*w < cp.Size; n++ {
		width := min(cp.Size-n*w, w)
		b, err := r.c.LogTile(ctx, tlog.Tile{Entries: true, N: n, W: int(width)}.Path())
		if err != nil {
			return 0, err
		}
		es, err := tlog.ParseEntryBundle(b)
		if err != nil || int64(len(es)) != width {
			return 0, refuse(ErrNotProven, "entry bundle %d: %d entries, want %d (%v)", n, len(es), width, err)
		}
		first := max(from, n*w)
		idx := make([]int64, 0, width)
		for i := first; i < n*w+width; i++ {
			idx = append(idx, xtlog.StoredHashIndex(0, i))
		}
		hs, err := hr.ReadHashes(idx)
		if err != nil {
			return 0, proven(fmt.Errorf("%w: hash tiles for entries %d..%d: %v", tlog.ErrProof, first, n*w+width-1, err))
		}
		for j, i := 0, first; i < n*w+width; i, j = i+1, j+1 {
			ent := es[i-n*w]
			if xtlog.RecordHash(ent) != hs[j] {
				return 0, refuse(ErrNotProven, "entry %d from the entry bundle does not hash to the tree of the checkpoint", i)
			}
			e, err := tlog.ParseEntry(ent)
			if err != nil {
				return 0, proven(err)
			}
			if (e.Type == "alias.set" || e.Type == "alias.remove") && e.Data["model"] == model && e.Data["alias"] == alias {
				return i, nil
			}
		}
	}
	return -1, nil
}

// tileReader reads hash tiles from the registry for TileHashReader (which
// verifies them against the tree).
type tileReader struct {
	ctx context.Context
	c   *client.Client
}

func (tileReader) Height() int { return tlog.TileHeight }

func (t tileReader) ReadTiles(tiles []xtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, x := range tiles {
		if x.H != tlog.TileHeight {
			return nil, fmt.Errorf("tile height %d", x.H)
		}
		b, err := t.c.LogTile(t.ctx, tlog.Tile{Level: x.L, N: x.N, W: x.W}.Path())
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (tileReader) SaveTiles([]xtlog.Tile, [][]byte) {}

// Client returns the registry client the resolver uses.
func (r *Resolver) Client() *client.Client { return r.c }
