//go:build unix

package monitor

import (
	"os"
	"syscall"
)

// mapFile maps a file read-only into memory; release unmaps it. The
// mapping must not be used after release.
func mapFile(path string) (data []byte, release func(), err error) {
	return mapFileFlags(path, mmapFlags)
}

// mapFileLazy is mapFile without populating the mapping up front: the
// pages are mapped as they are first read, by whichever goroutines read
// them, in parallel.
func mapFileLazy(path string) (data []byte, release func(), err error) {
	return mapFileFlags(path, syscall.MAP_PRIVATE)
}

func mapFileFlags(path string, flags int) (data []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, flags)
	if err != nil {
		// Not mappable (a pipe, some file systems): read it instead.
		data, err = os.ReadFile(path)
		return data, func() {}, err
	}
	return data, func() { syscall.Munmap(data) }, nil
}
