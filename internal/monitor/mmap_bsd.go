//go:build unix && !linux

package monitor

import "syscall"

const mmapFlags = syscall.MAP_PRIVATE

func adviseHuge[T any](x []T) {}
