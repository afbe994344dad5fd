package tlog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-ml/custody/internal/registry"
	"github.com/custody-ml/custody/internal/store"
	"github.com/custody-ml/custody/internal/store/postgres"
	"github.com/custody-ml/custody/internal/store/postgres/pgtest"
	"github.com/custody-ml/custody/internal/store/sqlite"
	"github.com/custody-ml/custody/internal/store/sqlstore"
	"github.com/custody-ml/custody/internal/tlog"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

var (
	cluster    *pgtest.Cluster
	clusterErr error
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunTests(m, func(c *pgtest.Cluster, err error) { cluster, clusterErr = c, err }))
}

func openSQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	if clusterErr != nil {
		if errors.Is(clusterErr, pgtest.ErrUnavailable) && !pgtest.Required() {
			t.Skip(clusterErr)
		}
		t.Fatalf("PostgreSQL: %v", clusterErr)
	}
	url, err := cluster.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newSigner(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// appendN appends n synthetic entries, each in its own transaction.
func appendN(t *testing.T, s store.Store, from, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := from; i < from+n; i++ {
		e := tlog.Entry{Type: "test", Subject: fmt.Sprintf("s%d", i), Actor: "tester", Time: time.Unix(int64(i), 0), Event: int64(i), Data: map[string]any{"i": fmt.Sprint(i)}}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
			idx, err := tlog.Append(ctx, tx, b)
			if err == nil && idx != int64(i) {
				err = fmt.Errorf("appended at %d, want %d", idx, i)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// mth is RFC 6962's Merkle Tree Hash, written out from section 2.1 as an
// independent reference.
func mth(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func raw(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// Every inclusion and consistency proof the log builds verifies with
// transparency-dev/merkle against roots computed independently, as the
// log grows.
func TestProofsIndependentVerifier(t *testing.T) {
	s := openSQLite(t)
	signer, verifier := newSigner(t, "custody.test/log")
	l := tlog.New(s, signer)
	var entries [][]byte
	for _, step := range []int{1, 1, 1, 2, 3, 8, 17, 31, 64, 130} {
		entries = append(entries, appendN(t, s, len(entries), step)...)
		size := int64(len(entries))
		signed, err := l.Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c, err := tlog.OpenCheckpoint(signed, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != size || c.Hash != tlog.Hash(mth(entries)) {
			t.Fatalf("checkpoint %d %x, want %d %x", c.Size, c.Hash, size, mth(entries))
		}
		for i := int64(0); i < size; i += 1 + size/20 {
			p, n, err := l.ProveInclusion(t.Context(), i, 0)
			if err != nil || n != size {
				t.Fatal(n, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(size), rfc6962.DefaultHasher.HashLeaf(entries[i]), raw(p), c.Hash[:]); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, size, err)
			}
			if err := tlog.VerifyInclusion(c, i, entries[i], p); err != nil {
				t.Fatal(err)
			}
			if err := tlog.VerifyInclusion(c, i, append([]byte(" "), entries[i]...), p); !errors.Is(err, tlog.ErrProof) {
				t.Fatalf("altered entry verified: %v", err)
			}
		}
		for old := int64(1); old <= size; old += 1 + size/10 {
			p, _, err := l.ProveConsistency(t.Context(), old, size)
			if err != nil {
				t.Fatal(err)
			}
			oldRoot := mth(entries[:old])
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), uint64(size), raw(p), oldRoot[:], c.Hash[:]); err != nil {
				t.Fatalf("consistency %d→%d: %v", old, size, err)
			}
			oc := tlog.Checkpoint{Origin: c.Origin, Size: old, Hash: oldRoot}
			if err := tlog.VerifyConsistency(oc, c, p); err != nil {
				t.Fatal(err)
			}
			// A rewritten history (a different old root) is refused.
			oc.Hash[0] ^= 1
			if err := tlog.VerifyConsistency(oc, c, p); !errors.Is(err, tlog.ErrProof) && old != size {
				t.Fatalf("rewrite not detected: %v", err)
			}
		}
	}
	if _, _, err := l.ProveInclusion(t.Context(), int64(len(entries)), 0); !errors.Is(err, tlog.ErrOutOfRange) {
		t.Fatalf("proof beyond the log: %v", err)
	}
}

func TestCheckpointWrongKey(t *testing.T) {
	s := openSQLite(t)
	signer, right := newSigner(t, "custody.test/log")
	_, other := newSigner(t, "custody.test/log") // same name, different key
	_, otherName := newSigner(t, "evil.test/log")
	appendN(t, s, 0, 3)
	signed, err := tlog.New(s, signer).Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []note.Verifier{other, otherName} {
		if _, err := tlog.OpenCheckpoint(signed, v); !errors.Is(err, tlog.ErrBadSignature) {
			t.Fatalf("checkpoint opened with the wrong key %s: %v", v.Name(), err)
		}
	}
	// A signature over altered text fails with the right key too.
	forged := bytes.Replace(signed, []byte("\n3\n"), []byte("\n2\n"), 1)
	if _, err := tlog.OpenCheckpoint(forged, right); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("altered checkpoint opened: %v", err)
	}
	if _, err := tlog.OpenCheckpoint(signed, right); err != nil {
		t.Fatal(err)
	}
}

// Tampering with a stored entry or a stored hash is detected by Replay,
// and a tampered entry no longer proves against a checkpoint signed
// before.
func TestTamperDetected(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
	}{
		{"entry", "UPDATE log_entries SET entry = ? WHERE idx = 5"},
		{"hash", "UPDATE log_hashes SET hash = ? WHERE idx = 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t)
			appendN(t, s, 0, 40)
			l := tlog.New(s, nil)
			_, root, err := l.Replay(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			val := any([]byte(`{"forged":true}`))
			if tc.name == "hash" {
				h := sha256.Sum256([]byte("forged"))
				val = h[:]
			}
			if _, err := s.SQL().Exec(tc.sql, val); err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.Replay(t.Context(), nil); !errors.Is(err, tlog.ErrTampered) {
				t.Fatalf("tampering not detected: %v", err)
			}
			if _, err := tlog.Audit(t.Context(), s); !errors.Is(err, tlog.ErrTampered) {
				t.Fatalf("audit missed the tampering: %v", err)
			}
			if tc.name == "entry" {
				e, _ := l.Entry(t.Context(), 5)
				p, _, err := l.ProveInclusion(t.Context(), 5, 40)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.VerifyInclusion(tlog.Checkpoint{Size: 40, Hash: root}, 5, e, p); !errors.Is(err, tlog.ErrProof) {
					t.Fatalf("tampered entry proved: %v", err)
				}
			}
		})
	}
}

// Parallel writers produce a gap-free log holding every journal event
// exactly once, in the order the events committed.
func TestConcurrentAppends(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t testing.TB) *sqlstore.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			// Servers on one database, one of whose transactions sometimes
			// fail after the append (undoing it within a group commit).
			svcs := []*registry.Service{
				registry.New(s, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}}}),
				registry.New(s, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}}}),
				registry.New(s, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}}}),
			}
			failing := registry.New(s, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}, failHook{}}})
			admin := registry.Actor{Name: "local:test", Role: registry.RoleAdmin}
			const workers, each = 8, 15
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						// Half the writers contend on one model's row lock.
						name := fmt.Sprintf("m%d", w)
						if w%2 == 0 {
							name = "shared"
						}
						if i%5 == 4 {
							if _, err := failing.PutModel(t.Context(), admin, registry.ModelSpec{Name: name, Description: "rolled back"}); err == nil {
								errs <- errors.New("failing hook ignored")
							}
						}
						if _, err := svcs[(w+i)%len(svcs)].PutModel(t.Context(), admin, registry.ModelSpec{Name: name, Description: fmt.Sprint(w, i)}); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			evs, err := s.Events(t.Context(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != workers*each {
				t.Fatalf("%d events, want %d", len(evs), workers*each)
			}
			l := tlog.New(s, nil)
			seen := map[int64]int{}
			var entries [][]byte
			size, _, err := l.Replay(t.Context(), func(i int64, b []byte) error {
				entries = append(entries, b)
				e, err := tlog.ParseEntry(b)
				if err != nil {
					return err
				}
				seen[e.Event]++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(evs)) {
				t.Fatalf("log size %d, want %d events", size, len(evs))
			}
			if _, root, err := l.Head(t.Context()); err != nil || root != tlog.Hash(mth(entries)) {
				t.Fatalf("root %x, want %x (%v)", root, mth(entries), err)
			}
			for _, ev := range evs {
				if seen[ev.Seq] != 1 {
					t.Fatalf("event %d logged %d times", ev.Seq, seen[ev.Seq])
				}
			}
		})
	}
}

// A hook failure after the log append rolls back both the change and the
// entry.
func TestRollbackTakesEntry(t *testing.T) {
	s := openSQLite(t)
	svc := registry.New(s, registry.Options{Hooks: []registry.TxHook{tlog.Hook{}, failHook{}}})
	_, err := svc.PutModel(t.Context(), registry.Actor{Name: "a", Role: registry.RoleAdmin}, registry.ModelSpec{Name: "m"})
	if err == nil {
		t.Fatal("hook error ignored")
	}
	if n, err := s.LogSize(t.Context()); err != nil || n != 0 {
		t.Fatalf("log size %d after rollback (%v)", n, err)
	}
	if _, err := s.GetModel(t.Context(), "m"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("model after rollback: %v", err)
	}
}

type failHook struct{}

func (failHook) AfterChange(context.Context, store.Tx, *store.Event) error {
	return errors.New("boom")
}

func mustSign(tb testing.TB, text string, s note.Signer) []byte {
	tb.Helper()
	b, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Tiles hold exactly the RFC 6962 hashes and the entries, computed here
// independently, and are refused beyond the tree.
func TestTiles(t *testing.T) {
	s := openSQLite(t)
	entries := appendN(t, s, 0, 300)
	l := tlog.New(s, nil)
	read := func(p string) ([]byte, error) {
		tile, err := tlog.ParseTilePath(p)
		if err != nil {
			t.Fatal(err)
		}
		return l.ReadTile(t.Context(), tile)
	}
	leaf := func(i int) []byte { h := mth(entries[i : i+1]); return h[:] }
	var want []byte
	for i := 0; i < 256; i++ {
		want = append(want, leaf(i)...)
	}
	if got, err := read("tile/0/000"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("tile/0/000: %v", err)
	}
	want = nil
	for i := 256; i < 300; i++ {
		want = append(want, leaf(i)...)
	}
	if got, err := read("tile/0/001.p/44"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("tile/0/001.p/44: %v", err)
	}
	if got, err := read("tile/0/000.p/3"); err != nil || !bytes.Equal(got, append(append(leaf(0), leaf(1)...), leaf(2)...)) {
		t.Fatalf("tile/0/000.p/3: %v", err)
	}
	top := mth(entries[:256])
	if got, err := read("tile/1/000.p/1"); err != nil || !bytes.Equal(got, top[:]) {
		t.Fatalf("tile/1/000.p/1: %x %v", got, err)
	}
	b, err := read("tile/entries/001.p/44")
	if err != nil {
		t.Fatal(err)
	}
	es, err := tlog.ParseEntryBundle(b)
	if err != nil || len(es) != 44 || !bytes.Equal(es[0], entries[256]) || !bytes.Equal(es[43], entries[299]) {
		t.Fatalf("entry bundle: %d entries, %v", len(es), err)
	}
	for _, p := range []string{"tile/0/001", "tile/0/001.p/45", "tile/1/000", "tile/1/000.p/2", "tile/2/000.p/1", "tile/entries/002.p/1", "tile/0/x001/000"} {
		if _, err := read(p); !errors.Is(err, tlog.ErrOutOfRange) {
			t.Errorf("%s: %v, want out of range", p, err)
		}
	}
}

// The verifier key derived from a key file is the one generated with it
// (many times, since base64 keys may contain '+').
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		path := filepath.Join(dir, fmt.Sprint("k", i))
		s, vkey, err := tlog.LoadOrCreateSigner(path, "custody.test/log")
		if err != nil {
			t.Fatal(err)
		}
		pub, err := os.ReadFile(path + ".pub")
		if err != nil || strings.TrimSpace(string(pub)) != vkey {
			t.Fatalf("%s.pub: %q, want %q (%v)", path, pub, vkey, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode %v (%v)", fi.Mode(), err)
		}
		v, err := tlog.ParseVerifier(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		signed := mustSign(t, "custody.test/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", s)
		if _, err := tlog.OpenCheckpoint(signed, v); err != nil {
			t.Fatal(err)
		}
		// Loading again returns the same key.
		if _, again, err := tlog.LoadOrCreateSigner(path, "other"); err != nil || again != vkey {
			t.Fatalf("reload: %s %v", again, err)
		}
	}
}

// The right edge kept with the log head is the stored hashes of the
// complete subtrees covering the log, after every append; a log whose
// head has none (written before it was kept) or a damaged one is
// appended to from the stored hashes, and gets its edge back.
func TestRightEdge(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t testing.TB) *sqlstore.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			var entries [][]byte
			for i, step := range []int{1, 2, 1, 4, 9, 16, 33, 63, 1, 1} {
				switch i % 3 {
				case 1:
					if _, err := s.SQL().Exec("UPDATE log_head SET edge = NULL"); err != nil {
						t.Fatal(err)
					}
				case 2:
					if _, err := s.SQL().Exec("UPDATE log_head SET edge = (SELECT entry FROM log_entries WHERE idx = 0)"); err != nil {
						t.Fatal(err)
					}
				}
				entries = append(entries, appendN(t, s, len(entries), step)...)
				n := int64(len(entries))
				var edge [][32]byte
				err := s.Update(t.Context(), func(ctx context.Context, tx store.Tx) error {
					size, e, err := tx.LockLog(ctx)
					if err == nil && size != n {
						err = fmt.Errorf("size %d, want %d", size, n)
					}
					edge = e
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				var idx []int64
				for level := 62; level >= 0; level-- {
					if n>>level&1 == 1 {
						idx = append(idx, xtlog.StoredHashIndex(level, n>>level-1))
					}
				}
				want, err := s.LogHashes(t.Context(), idx)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(edge) != fmt.Sprint(want) {
					t.Fatalf("size %d: edge %x, want %x", n, edge, want)
				}
				_, root, err := tlog.New(s, nil).Head(t.Context())
				if err != nil || root != tlog.Hash(mth(entries)) {
					t.Fatalf("size %d: root %x, want %x (%v)", n, root, mth(entries), err)
				}
			}
		})
	}
}
