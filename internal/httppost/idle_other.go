//go:build !unix

package httppost

import "net"

// unusable cannot look at the socket here: an idle connection is reused as it is, and one
// the server closed meanwhile is retried once (see the package doc).
func unusable(net.Conn) bool { return false }
