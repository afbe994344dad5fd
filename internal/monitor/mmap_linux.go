//go:build linux

package monitor

import (
	"syscall"
	"unsafe"
)

// mmapFlags maps the whole file at once (MAP_POPULATE): one system call
// instead of a page fault per few pages while parsing.
const mmapFlags = syscall.MAP_PRIVATE | syscall.MAP_POPULATE

// adviseHuge asks the kernel to back the 2 MiB-aligned part of a large,
// not yet touched slice with transparent huge pages (where the system
// allows it on request): filling 10^7 numbers then takes a few dozen page
// faults instead of tens of thousands. It is only a hint.
func adviseHuge[T any](x []T) {
	const huge = 2 << 20
	var zero T
	size := uintptr(cap(x)) * unsafe.Sizeof(zero)
	if size < 4*huge {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(x))
	start := uintptr(p)
	a := (start + huge - 1) &^ (huge - 1)
	e := (start + size) &^ (huge - 1)
	if e <= a {
		return
	}
	syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, a-start)), e-a), syscall.MADV_HUGEPAGE)
}
