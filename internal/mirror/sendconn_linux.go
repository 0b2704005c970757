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
	var n int
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, e := syscall.SendmsgN(int(fd), p[n:], nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
			if k > 0 {
				n += k
			}
			switch e {
			case nil:
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				serr = os.NewSyscallError("sendmsg", e)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = serr
	}
	return n, err
}

// ReadFrom sends r to the connection. An *io.SectionReader over an
// *os.File (cache.File.Section) goes by sendfile(2) from its offset,
// leaving the file's own offset alone; anything else takes the
// connection's usual ReadFrom.
func (c *sendConn) ReadFrom(r io.Reader) (int64, error) {
	c.more = false
	sr, ok := r.(*io.SectionReader)
	if !ok {
		return c.TCPConn.ReadFrom(r)
	}
	ra, base, size := sr.Outer()
	f, ok := ra.(*os.File)
	if !ok {
		return c.TCPConn.ReadFrom(r)
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	n, err := c.sendfile(f, base+pos, size-pos)
	if _, serr := sr.Seek(pos+n, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	if n == 0 && errors.Is(err, errNoSendfile) {
		return c.TCPConn.ReadFrom(r)
	}
	return n, err
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
	src := int(f.Fd())
	var written int64
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		for written < n {
			k, e := syscall.Sendfile(int(fd), src, &off, int(min(n-written, 1<<30)))
			if k > 0 {
				written += int64(k)
			}
			switch e {
			case nil:
				if k <= 0 {
					// The file ended early (truncated behind the cache).
					serr = io.ErrUnexpectedEOF
					return true
				}
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			case syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP:
				if written == 0 {
					serr = errNoSendfile
				} else {
					serr = os.NewSyscallError("sendfile", e)
				}
				return true
			default:
				serr = os.NewSyscallError("sendfile", e)
				return true
			}
		}
		return true
	})
	// f's descriptor was used above: f must stay open until here.
	runtime.KeepAlive(f)
	if err == nil {
		err = serr
	}
	return written, err
}
