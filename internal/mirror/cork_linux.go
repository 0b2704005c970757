package mirror

import (
	"net"
	"syscall"
)

// cork sets or clears TCP_CORK on c: while set, the kernel holds partial
// segments, so the headers written before a sendfile leave in the same
// segments as the file's first bytes instead of a packet of their own
// (nginx's tcp_nopush). Clearing it sends what is held. Best effort.
func cork(c *net.TCPConn, on bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	})
}
