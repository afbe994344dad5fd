//go:build !linux

package proxy

import "net"

// connAlive cannot peek without blocking here: a connection the server
// closed while idle fails its next request, which is retried only under
// http.Transport's rule (see upstreamClient).
func connAlive(net.Conn) bool { return true }
