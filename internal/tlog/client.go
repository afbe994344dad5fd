package tlog

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Proofs are checked with github.com/transparency-dev/merkle, an
// implementation independent of the golang.org/x/mod/sumdb/tlog code that
// builds them, so a bug in one is unlikely to be mirrored in the other.

// ErrProof is wrapped when a proof does not verify; check with errors.Is.
var ErrProof = errors.New("proof does not verify")

func rawHashes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// VerifyInclusion checks that entry is leaf index of the tree c describes,
// given the RFC 6962 audit path p.
func VerifyInclusion(c Checkpoint, index int64, entry []byte, p []Hash) error {
	if index < 0 || index >= c.Size {
		return fmt.Errorf("%w: entry %d is not in a tree of %d", ErrProof, index, c.Size)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(index), uint64(c.Size), leaf, rawHashes(p), c.Hash[:]); err != nil {
		return fmt.Errorf("%w: inclusion of entry %d in tree %d: %v", ErrProof, index, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree newer describes extends the tree
// older describes (same origin, older.Size <= newer.Size), given the RFC
// 6962 consistency proof p.
func VerifyConsistency(older, newer Checkpoint, p []Hash) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: checkpoints of different logs (%q, %q)", ErrProof, older.Origin, newer.Origin)
	}
	if newer.Size < older.Size {
		return fmt.Errorf("%w: the log shrank from %d to %d entries", ErrProof, older.Size, newer.Size)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(older.Size), uint64(newer.Size), rawHashes(p), older.Hash[:], newer.Hash[:]); err != nil {
		return fmt.Errorf("%w: consistency of tree %d with tree %d: %v", ErrProof, older.Size, newer.Size, err)
	}
	return nil
}
