package mirror

import (
	"context"
	"net"
	"syscall"
)

// sendConn is an accepted TCP connection of the mirror's listener
// (Listener). Besides being the connection net/http serves, it lets the
// artifact handler send a response the way nginx does, in two system
// calls: the headers with MSG_MORE, so the kernel holds them for the
// body's first segment, then the blob's byte range by sendfile at an
// explicit offset, so the pooled blob handle needs no lseek and the
// connection no TCP_CORK on and off (sendconn_linux.go). Where that is
// not available (other systems, TLS) the handler uses the plain path.
type sendConn struct {
	*net.TCPConn
	raw syscall.RawConn // the socket, for sendmsg and sendfile
	// more marks the next Write as the headers of a response whose body
	// follows by ReadFrom: set and used on the connection's serving
	// goroutine only (the handler's).
	more bool
	// op is the send under way (one at a time, on the serving goroutine)
	// and sendStep and fileStep its steps for raw.Write, bound once per
	// connection so a response allocates no closures.
	op                 sendOp
	sendStep, fileStep func(fd uintptr) bool
	// prefix is what Front read from the connection before handing it
	// to net/http: read first.
	prefix []byte
}

// Read implements net.Conn: the prefix, then the socket.
func (c *sendConn) Read(p []byte) (int, error) {
	if n, ok := readPrefix(&c.prefix, p); ok {
		return n, nil
	}
	return c.TCPConn.Read(p)
}

// readPrefix reads from *prefix into p; false when it is empty.
func readPrefix(prefix *[]byte, p []byte) (int, bool) {
	if len(*prefix) == 0 {
		return 0, false
	}
	n := copy(p, *prefix)
	*prefix = (*prefix)[n:]
	return n, true
}

// prefixConn is a connection with bytes already read from it (Front).
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if n, ok := readPrefix(&c.prefix, p); ok {
		return n, nil
	}
	return c.Conn.Read(p)
}

// withPrefix is c reading prefix first.
func withPrefix(c net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return c
	}
	if sc, ok := c.(*sendConn); ok {
		sc.prefix = prefix
		return sc
	}
	return &prefixConn{Conn: c, prefix: prefix}
}

// sendOp is the state of one sendmsg or sendfile loop.
type sendOp struct {
	p      []byte // sendmsg: the bytes
	src    int    // sendfile: the file's descriptor
	off, n int64  // sendfile: where, and how many bytes
	done   int64  // bytes sent so far
	err    error
}

// connKey carries the request's *sendConn (ConnContext).
type connKey struct{}

// ConnContext is an http.Server ConnContext hook that makes a connection
// accepted by Listener known to the artifact handlers, so they can send
// headers and body with the least system calls. Without it (or without
// Listener) they serve the same bytes by the plain path.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*sendConn); ok {
		return context.WithValue(ctx, connKey{}, sc)
	}
	return ctx
}

// Listener wraps ln so that the TCP connections it accepts can serve
// artifacts by the fast path (see ConnContext). Wrap the plain TCP
// listener, under any TLS listener.
func Listener(ln net.Listener) net.Listener {
	if !sendfileAt {
		return ln
	}
	return sendListener{ln}
}

type sendListener struct{ net.Listener }

func (l sendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		if raw, err := tc.SyscallConn(); err == nil {
			sc := &sendConn{TCPConn: tc, raw: raw}
			sc.sendStep, sc.fileStep = sc.sendmsgStep, sc.sendfileStep
			return sc, nil
		}
	}
	return c, err
}
