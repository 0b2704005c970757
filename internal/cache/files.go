package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// ErrSize means a committed blob on disk does not have the size asked for
// (truncated or replaced behind the cache's back): it must not be served.
var ErrSize = errors.New("blob has the wrong size on disk")

// DefaultMaxOpen is the number of blob handles Files keeps open when
// NewFiles is given 0.
const DefaultMaxOpen = 128

// maxIdleAge bounds how long an idle handle is reused: a blob changed on
// disk by something other than this Cache is seen again after this long.
const maxIdleAge = 5 * time.Second

// Files keeps committed blobs open between requests so that serving one
// costs no open, fstat, fcntl or close: a bounded pool of *os.File handles
// keyed by sha256, the least recently used idle one closed first when the
// bound is reached. A handle is used by one caller at a time (Acquire
// hands it out, Release gives it back), so its file offset is its own and
// the kernel's sendfile can serve it.
//
// Handles never outlive a change to the cache made through its Cache
// (a commit, GC or a quarantine by Verify): those close every idle handle
// and mark the ones in use so Release closes them. Reset does the same
// for a caller's reasons (a new snapshot held). Safe for concurrent use.
type Files struct {
	c   *Cache
	max int

	mu    sync.Mutex
	idle  map[string][]*File // per sha256, most recently released last
	lru   lru                // idle handles, most recently released first
	open  int                // handles counted against max: idle and in use
	epoch uint64             // bumped by Reset and by every cache change
}

// File is one open committed blob handed out by Files.Acquire. It is not
// safe for concurrent use; give it back with Files.Release.
type File struct {
	f       *os.File
	sha     string
	size    int64
	pos     int64 // the file offset, -1 when unknown
	epoch   uint64
	opened  time.Time
	tracked bool // counted in Files.open
	// prev and next link the handle into Files.lru while idle (no
	// allocation per Release, unlike container/list).
	prev, next *File
	sec        io.SectionReader // Section's answer
}

// lru is a doubly linked list of idle handles threaded through them.
type lru struct{ front, back *File }

func (l *lru) pushFront(f *File) {
	f.prev, f.next = nil, l.front
	if l.front != nil {
		l.front.prev = f
	} else {
		l.back = f
	}
	l.front = f
}

func (l *lru) remove(f *File) {
	if f.prev != nil {
		f.prev.next = f.next
	} else if l.front == f {
		l.front = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else if l.back == f {
		l.back = f.prev
	}
	f.prev, f.next = nil, nil
}

// NewFiles returns a pool of at most max open handles over c's blobs
// (0: DefaultMaxOpen). Past the bound, Acquire still opens a handle but
// Release closes it.
func NewFiles(c *Cache, max int) *Files {
	if max <= 0 {
		max = DefaultMaxOpen
	}
	fs := &Files{c: c, max: max, idle: map[string][]*File{}}
	c.mu.Lock()
	c.files = append(c.files, fs)
	c.mu.Unlock()
	return fs
}

// Acquire returns an open handle on the committed blob sha, which must be
// size bytes long (else an error wrapping ErrSize). A missing blob is an
// error wrapping fs.ErrNotExist.
func (fs *Files) Acquire(sha string, size int64) (*File, error) {
	if !ValidSHA(sha) {
		return nil, fmt.Errorf("open blob: invalid sha256 %q", sha)
	}
	now := time.Now()
	var stale []*File
	fs.mu.Lock()
	for {
		l := fs.idle[sha]
		if len(l) == 0 {
			break
		}
		f := l[len(l)-1]
		fs.takeIdle(f)
		if f.epoch != fs.epoch || now.Sub(f.opened) > maxIdleAge || f.size != size {
			fs.open--
			stale = append(stale, f)
			continue
		}
		fs.mu.Unlock()
		closeAll(stale)
		return f, nil
	}
	tracked := true
	if fs.open >= fs.max {
		if f := fs.lru.back; f != nil {
			fs.takeIdle(f)
			fs.open--
			stale = append(stale, f)
		} else {
			tracked = false
		}
	}
	if tracked {
		fs.open++
	}
	epoch := fs.epoch
	fs.mu.Unlock()
	closeAll(stale)

	f, err := fs.openBlob(sha, size)
	if err != nil {
		if tracked {
			fs.mu.Lock()
			fs.open--
			fs.mu.Unlock()
		}
		return nil, err
	}
	f.epoch, f.opened, f.tracked = epoch, now, tracked
	return f, nil
}

func (fs *Files) openBlob(sha string, size int64) (*File, error) {
	osf, err := os.Open(fs.c.Path(sha))
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	fi, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("open blob: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		osf.Close()
		return nil, fmt.Errorf("open blob %s: %w (%d bytes, want %d)", sha, ErrSize, fi.Size(), size)
	}
	return &File{f: osf, sha: sha, size: size}, nil
}

// takeIdle removes f from the idle lists; fs.mu is held.
func (fs *Files) takeIdle(f *File) {
	l := fs.idle[f.sha]
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] == f {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(fs.idle, f.sha)
	} else {
		fs.idle[f.sha] = l
	}
	fs.lru.remove(f)
}

// Release gives f back: kept open for the next Acquire of its blob, or
// closed when it is past the bound or the cache changed since it opened.
func (fs *Files) Release(f *File) {
	if f == nil {
		return
	}
	if !f.tracked {
		f.f.Close()
		return
	}
	fs.mu.Lock()
	if f.epoch != fs.epoch || f.pos == -2 {
		fs.open--
		fs.mu.Unlock()
		f.f.Close()
		return
	}
	fs.idle[f.sha] = append(fs.idle[f.sha], f)
	fs.lru.pushFront(f)
	fs.mu.Unlock()
}

// Reset closes every idle handle and makes Release close those in use.
func (fs *Files) Reset() {
	fs.mu.Lock()
	fs.epoch++
	var stale []*File
	for f := fs.lru.front; f != nil; f = f.next {
		stale = append(stale, f)
	}
	fs.lru = lru{}
	clear(fs.idle)
	fs.open -= len(stale)
	fs.mu.Unlock()
	closeAll(stale)
}

// Open is the number of handles counted against the bound (idle and in
// use).
func (fs *Files) Open() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.open
}

func closeAll(l []*File) {
	for _, f := range l {
		f.f.Close()
	}
}

// Size is the blob's size.
func (f *File) Size() int64 { return f.size }

// ReadSeeker is the handle as an io.ReadSeeker for callers that need one
// (http.ServeContent); after using it, the handle's offset is unknown.
func (f *File) ReadSeeker() io.ReadSeeker {
	f.pos = -1
	return f.f
}

// Section is n bytes of the blob from offset off as an io.SectionReader
// over the open *os.File: a writer that recognises it (the mirror's
// connections) sends the bytes by sendfile(2) from that offset; any other
// reads them with pread. Either way the handle's own offset is untouched.
// The reader belongs to f: valid until the next Section or Release.
func (f *File) Section(off, n int64) (*io.SectionReader, error) {
	if off < 0 || n < 0 || off+n > f.size {
		return nil, fmt.Errorf("blob %s: range %d+%d outside %d bytes", f.sha, off, n, f.size)
	}
	f.sec = *io.NewSectionReader(f.f, off, n)
	return &f.sec, nil
}

// CopyRange writes n bytes of the blob from offset off to w. When w is an
// io.ReaderFrom (an http.ResponseWriter over TCP) it is handed the file
// itself, limited to n, so the kernel's sendfile moves the bytes.
func (f *File) CopyRange(w io.Writer, off, n int64) (int64, error) {
	if off < 0 || n < 0 || off+n > f.size {
		return 0, fmt.Errorf("copy blob %s: range %d+%d outside %d bytes", f.sha, off, n, f.size)
	}
	if f.pos != off {
		if _, err := f.f.Seek(off, io.SeekStart); err != nil {
			f.pos = -2 // broken: closed on Release
			return 0, fmt.Errorf("copy blob %s: %w", f.sha, err)
		}
	}
	f.pos = -1
	lr := &io.LimitedReader{R: f.f, N: n}
	var got int64
	var err error
	if rf, ok := w.(io.ReaderFrom); ok {
		got, err = rf.ReadFrom(lr)
	} else {
		got, err = io.Copy(w, lr)
	}
	if err == nil {
		f.pos = off + got
	}
	return got, err
}
