//go:build unix

package httppost

import (
	"errors"
	"net"
	"syscall"
)

// unusable reports whether an idle TCP connection must not carry another request: the
// server has closed it (end of stream, reset) or has sent bytes nobody asked for. It looks
// at the socket without reading from it or waiting (MSG_PEEK|MSG_DONTWAIT): Go's own reads
// cannot, since a read with a past deadline fails before it looks at the socket.
func unusable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var bad bool
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EWOULDBLOCK), errors.Is(rerr, syscall.EINTR):
			bad = false // nothing to read: as it should be
		default:
			bad = true // bytes pending (n > 0), end of stream (n == 0), or an error
		}
		return true // never wait for readability
	})
	return bad || err != nil
}
