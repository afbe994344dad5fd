//go:build linux

package monitor

import "syscall"

// mmapFlags maps the whole file at once (MAP_POPULATE): one system call
// instead of a page fault per few pages while parsing.
const mmapFlags = syscall.MAP_PRIVATE | syscall.MAP_POPULATE
