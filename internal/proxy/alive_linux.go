package proxy

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle connection can carry a request: the
// server has not closed it (EOF) and sent nothing unasked. A non-blocking
// MSG_PEEK, one system call; http.Transport learns the same from the
// reader goroutine it keeps on every idle connection.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN
		return true
	})
	return err == nil && alive
}
