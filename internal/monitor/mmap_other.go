//go:build !unix

package monitor

import "os"

// mapFile reads a file into memory (no mmap on this platform).
func mapFile(path string) (data []byte, release func(), err error) {
	data, err = os.ReadFile(path)
	return data, func() {}, err
}

// mapFileLazy is mapFile.
func mapFileLazy(path string) (data []byte, release func(), err error) { return mapFile(path) }
