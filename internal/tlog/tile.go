package tlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of C2SP tiles: 256 hashes or entries wide.
const TileHeight = 8

// tileWidth is the number of hashes (or entries) in a full tile.
const tileWidth = 1 << TileHeight

// maxTileLevel is the highest hash tile level tlog-tiles allows.
const maxTileLevel = 5

// Tile names one tile of the C2SP tlog-tiles layout
// (https://c2sp.org/tlog-tiles). Its path, under the log's prefix:
//
//	tile/<L>/<N>[.p/<W>]         hash tile: level L (0..5), index N
//	tile/entries/<N>[.p/<W>]     entry bundle N
//
// N is written in 3-digit path elements, all but the last prefixed with
// "x" (1234067 is x001/x234/067); W, for a partial tile, is 1..255. A hash
// tile holds W (256 if full) concatenated 32-byte hashes at Merkle level
// 8L; an entry bundle holds W entries, each a big-endian uint16 length and
// the entry's bytes.
type Tile struct {
	Entries bool  // entry bundle rather than hash tile
	Level   int   // hash tile level
	N       int64 // tile index
	W       int   // width: 1..256 (256: full)
}

// Path returns the tile's path.
func (t Tile) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	s := fmt.Sprintf("%03d", t.N)
	if len(s)%3 != 0 {
		s = strings.Repeat("0", 3-len(s)%3) + s
	}
	for i := 0; i < len(s); i += 3 {
		b.WriteByte('/')
		if i+3 < len(s) {
			b.WriteByte('x')
		}
		b.WriteString(s[i : i+3])
	}
	if t.W < tileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.W))
	}
	return b.String()
}

// ErrBadTilePath is wrapped by [ParseTilePath] errors.
var ErrBadTilePath = errors.New("malformed tile path")

// ParseTilePath parses a tile path strictly (the only spelling [Tile.Path]
// produces for it).
func ParseTilePath(p string) (Tile, error) {
	bad := fmt.Errorf("%w: %.100q", ErrBadTilePath, p)
	if len(p) > 128 {
		return Tile{}, bad
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return Tile{}, bad
	}
	var t Tile
	kind, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Tile{}, bad
	}
	if kind == "entries" {
		t.Entries = true
	} else {
		l, err := strconv.Atoi(kind)
		if err != nil || l < 0 || l > maxTileLevel || strconv.Itoa(l) != kind {
			return Tile{}, bad
		}
		t.Level = l
	}
	t.W = tileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, err := strconv.Atoi(rest[i+3:])
		if err != nil || w < 1 || w >= tileWidth || strconv.Itoa(w) != rest[i+3:] {
			return Tile{}, bad
		}
		t.W, rest = w, rest[:i]
	}
	elems := strings.Split(rest, "/")
	if len(elems) > 6 { // N < 10^18 fits in an int64
		return Tile{}, bad
	}
	var n int64
	for i, e := range elems {
		if i < len(elems)-1 {
			var ok bool
			if e, ok = strings.CutPrefix(e, "x"); !ok {
				return Tile{}, bad
			}
		}
		if len(e) != 3 || strings.Trim(e, "0123456789") != "" {
			return Tile{}, bad
		}
		d, _ := strconv.Atoi(e)
		n = n*1000 + int64(d)
	}
	t.N = n
	if t.Path() != p { // e.g. x000/001: a leading zero element
		return Tile{}, bad
	}
	return t, nil
}

// ReadTile returns the tile's bytes. A tile is served only if the log
// holds all of it: a full tile once the tree covers it, a partial tile of
// width W once the tree covers W entries (hashes) of it. ErrOutOfRange
// otherwise.
func (l *Log) ReadTile(ctx context.Context, t Tile) ([]byte, error) {
	size, err := l.r.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	// Number of hashes at the tile's level (entries for bundles).
	avail := size
	if !t.Entries {
		avail = size >> (TileHeight * t.Level)
	}
	if t.N > avail/tileWidth || t.N*tileWidth+int64(t.W) > avail {
		return nil, fmt.Errorf("%s: %w", t.Path(), ErrOutOfRange)
	}
	if t.Entries {
		es, err := l.r.LogEntries(ctx, t.N*tileWidth, t.W)
		if err != nil {
			return nil, err
		}
		if len(es) != t.W {
			return nil, fmt.Errorf("%s: %d entries stored: %w", t.Path(), len(es), ErrOutOfRange)
		}
		var out []byte
		for _, e := range es {
			out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
			out = append(out, e...)
		}
		return out, nil
	}
	return tlog.ReadTileData(tlog.Tile{H: TileHeight, L: t.Level, N: t.N, W: t.W}, hashReader(ctx, l.r))
}

// ParseEntryBundle splits an entry bundle into its entries.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("entry bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
		if len(out) > tileWidth {
			return nil, errors.New("entry bundle: more than 256 entries")
		}
	}
	return out, nil
}
