package mirror

import (
	"errors"
	"io"
	"os"
	"runtime"
	"syscall"
)

// sendfileAt: Linux has sendfile(2) with an offset and MSG_MORE.
const sendfileAt = true

// Write writes p to the connection; when c.more is set (the headers of a
// response whose body follows by ReadFrom), with MSG_MORE, so the kernel
// holds a partial segment for the body's first bytes instead of sending
// the headers in a packet of their own.
func (c *sendConn) Write(p []byte) (int, error) {
	if !c.more {
		return c.TCPConn.Write(p)
	}
	c.more = false
	c.op = sendOp{p: p}
	err := c.raw.Write(c.sendStep)
	n, serr := int(c.op.done), c.op.err
	c.op = sendOp{}
	if err == nil {
		err = serr
	}
	return n, err
}

// sendmsgStep sends what is left of c.op.p with MSG_MORE; false asks
// raw.Write to wait until the socket is writable.
func (c *sendConn) sendmsgStep(fd uintptr) bool {
	for c.op.done < int64(len(c.op.p)) {
		k, e := syscall.SendmsgN(int(fd), c.op.p[c.op.done:], nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
		if k > 0 {
			c.op.done += int64(k)
		}
		switch e {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.op.err = os.NewSyscallError("sendmsg", e)
			return true
		}
	}
	return true
}

// ReadFrom sends r to the connection. An *io.SectionReader over an
// *os.File (cache.File.Section) goes by sendfile(2) from its offset,
// leaving the file's own offset alone; anything else takes the
// connection's usual ReadFrom.
func (c *sendConn) ReadFrom(r io.Reader) (int64, error) {
	c.more = false
	// A section, or the chunk of one that wire.ReadFromInChunks passes
	// (a download under a per-write deadline).
	limit := int64(-1)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		r, limit = lr.R, lr.N
	}
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return c.TCPConn.ReadFrom(orLimited(lr, r))
	}
	ra, base, size := sr.Outer()
	f, ok := ra.(*os.File)
	if !ok {
		return c.TCPConn.ReadFrom(orLimited(lr, r))
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	want := size - pos
	if limit >= 0 {
		want = min(want, limit)
	}
	n, err := c.sendfile(f, base+pos, want)
	if _, serr := sr.Seek(pos+n, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	if limited {
		lr.N -= n
	}
	if n == 0 && errors.Is(err, errNoSendfile) {
		return c.TCPConn.ReadFrom(orLimited(lr, r))
	}
	return n, err
}

// orLimited is lr when there is one, else r.
func orLimited(lr *io.LimitedReader, r io.Reader) io.Reader {
	if lr != nil {
		return lr
	}
	return r
}

// errNoSendfile means sendfile(2) refused the file or the socket before
// sending anything: the caller copies the bytes instead.
var errNoSendfile = errors.New("sendfile not supported here")

// sendfile sends n bytes of f from offset off by sendfile(2), waiting for
// the socket to drain as needed (and honouring its write deadline).
func (c *sendConn) sendfile(f *os.File, off, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	c.op = sendOp{src: int(f.Fd()), off: off, n: n}
	err := c.raw.Write(c.fileStep)
	// f's descriptor was used above: f must stay open until here.
	runtime.KeepAlive(f)
	written, serr := c.op.done, c.op.err
	c.op = sendOp{}
	if err == nil {
		err = serr
	}
	return written, err
}

// sendfileStep sends what is left of c.op's file range; false asks
// raw.Write to wait until the socket is writable.
func (c *sendConn) sendfileStep(fd uintptr) bool {
	for c.op.done < c.op.n {
		k, e := syscall.Sendfile(int(fd), c.op.src, &c.op.off, int(min(c.op.n-c.op.done, 1<<30)))
		if k > 0 {
			c.op.done += int64(k)
		}
		switch e {
		case nil:
			if k <= 0 {
				// The file ended early (truncated behind the cache).
				c.op.err = io.ErrUnexpectedEOF
				return true
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		case syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP:
			if c.op.done == 0 {
				c.op.err = errNoSendfile
			} else {
				c.op.err = os.NewSyscallError("sendfile", e)
			}
			return true
		default:
			c.op.err = os.NewSyscallError("sendfile", e)
			return true
		}
	}
	return true
}
