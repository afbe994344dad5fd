//go:build linux || darwin || freebsd || netbsd || openbsd

package digest

import (
	"context"
	"hash"
	"os"
	"runtime/debug"
	"syscall"
)

const (
	// mmapMinRange is the smallest range hashed through a mapping: below
	// it the system calls cost more than the copy they save.
	mmapMinRange = 1 << 20
	// mmapWindow bounds how much of a file is mapped at once.
	mmapWindow = 16 << 20
)

// noMmap disables the mapping path (tests compare both paths).
var noMmap = false

var pageSize = int64(os.Getpagesize())

// hashMapped hashes [off, end) of f by mapping it window by window, and
// writes the bytes to w when w is not nil. It returns how many bytes it
// hashed: fewer than asked (possibly zero) if the mapping path gave up
// early, in which case the caller reads the rest. A file truncated under
// the mapping faults; the fault is turned into ErrChanged, never a crash.
func hashMapped(ctx context.Context, f *os.File, fe fileEntry, off, end int64, h hash.Hash, w closingWriterAt) (done int64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(interface{ Addr() uintptr }); ok && re != nil {
				err = changed(fe.name, "truncated while being read")
				return
			}
			panic(r)
		}
	}()
	pos := off
	for pos < end {
		if ctx.Err() != nil {
			return pos - off, ctx.Err()
		}
		base := pos &^ (pageSize - 1)
		length := min(end-base, mmapWindow)
		m, merr := syscall.Mmap(int(f.Fd()), base, int(length), syscall.PROT_READ, syscall.MAP_SHARED|mapPopulate)
		if merr != nil {
			return pos - off, nil // let the read path carry on
		}
		chunk := m[pos-base:]
		if w != nil {
			if _, werr := w.WriteAt(chunk, pos); werr != nil {
				syscall.Munmap(m)
				return pos - off, werr
			}
		}
		h.Write(chunk)
		pos += int64(len(chunk))
		if uerr := syscall.Munmap(m); uerr != nil {
			return pos - off, &PathError{Path: fe.name, Err: uerr}
		}
	}
	return pos - off, nil
}
