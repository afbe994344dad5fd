package digest

import "syscall"

// mapPopulate pre-faults the window, one system call instead of a fault
// per page.
const mapPopulate = syscall.MAP_POPULATE
