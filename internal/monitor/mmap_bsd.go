//go:build unix && !linux

package monitor

import "syscall"

const mmapFlags = syscall.MAP_PRIVATE
