//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package digest

import (
	"context"
	"hash"
	"os"
)

const mmapMinRange = 1 << 62

var noMmap = true

func hashMapped(context.Context, *os.File, fileEntry, int64, int64, hash.Hash, closingWriterAt) (int64, error) {
	return 0, nil
}
