//go:build !linux

package mirror

import "net"

// cork does nothing where TCP_CORK does not exist.
func cork(*net.TCPConn, bool) {}
