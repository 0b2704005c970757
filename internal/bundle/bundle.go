// Package bundle reads and writes offline bundles: TUF bundles (tuf.go),
// a tar that starts with "tuf-bundle.json" (the unsigned manifest),
// optionally "ack.dsse.json" (the vendor's signed acknowledgement of the
// mirror's return files), then the repository files and the artifacts (or
// signed deltas to them) by their TUF paths. A schema 1 bundle (its first
// entry "snapshot.dsse.json") is refused with ErrWrongFormat. Both sides
// stream with constant memory. The reader is strict: any other name, a
// duplicate, a truncated archive or an entry tarsafe.Check refuses
// (sparse in any GNU form, a link, a device, an unclean name) is an
// error, found before any byte of the entry is handed out; bodies read as
// exactly their stored size (tarsafe.Body), so a bundle never expands
// into more than it holds.
package bundle

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"github.com/outpost/outpost/internal/tarsafe"
)

// EnvelopeName is the first entry of a schema 1 bundle, which readers
// refuse with ErrWrongFormat.
const EnvelopeName = "snapshot.dsse.json"

// AckName is the optional second entry of a bundle exported for one
// mirror (after the manifest, which announces it): the vendor's signed
// acknowledgement of its return files (internal/returnfile), verified by
// the mirror, not by this package.
const AckName = "ack.dsse.json"

// MaxAckEntry caps the acknowledgement entry.
const MaxAckEntry = 64 << 10

// ErrInvalid wraps every reason a bundle is rejected.
var ErrInvalid = errors.New("invalid bundle")

// Reader reads a bundle entry by entry.
type Reader struct {
	tr   *tar.Reader
	zr   *zeroTail
	seen map[string]bool
	done bool
	body io.Reader // the current entry's body: exactly its stored size
	// The manifest read (started once TUFManifest ran), the entries read
	// after it and the acknowledgement entry.
	started bool
	man     *TUFManifest
	count   int
	ack     []byte
}

// Ack is the acknowledgement entry's bytes (nil when the bundle has
// none), read with the manifest.
func (r *Reader) Ack() []byte { return r.ack }

// NewReader reads a bundle from r.
func NewReader(r io.Reader) *Reader {
	zr := &zeroTail{r: r}
	return &Reader{tr: tar.NewReader(zr), zr: zr, seen: map[string]bool{}}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// next returns the next header, checking it is a plain regular file.
func (r *Reader) next() (*tar.Header, error) {
	// Drain the current body so that what Next reads is only padding and
	// the following header or end marker.
	if _, err := io.Copy(io.Discard, r.tr); err != nil {
		return nil, invalid("truncated entry: %v", err)
	}
	r.body = nil
	before := r.zr.total
	hdr, err := r.tr.Next()
	if err == io.EOF {
		// A clean archive ends with two zero blocks; a stream cut at an
		// entry boundary does not (tar.Reader reports both as io.EOF).
		if r.zr.total-before < 1024 || r.zr.zeros < 1024 {
			return nil, invalid("truncated: missing end-of-archive marker")
		}
		return nil, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, invalid("truncated: %v", err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// Every entry is checked before any of its bytes are read: a sparse
	// entry would otherwise expand into its claimed size.
	if err := tarsafe.Check(hdr, -1); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	r.body = truncReader{tarsafe.Body(r.tr, hdr)}
	if r.seen[hdr.Name] {
		return nil, invalid("duplicate entry %q", hdr.Name)
	}
	r.seen[hdr.Name] = true
	return hdr, nil
}

// Body reads the current entry's bytes: exactly its stored size
// (tarsafe.Body). A short read is reported as a truncated bundle.
func (r *Reader) Body() io.Reader {
	if r.body == nil {
		return eofReader{}
	}
	return r.body
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

type truncReader struct{ r io.Reader }

func (t truncReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = invalid("truncated entry")
	}
	return n, err
}

// zeroTail counts the zero bytes at the end of what has been read so far.
type zeroTail struct {
	r     io.Reader
	zeros int
	total int64
}

func (z *zeroTail) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	z.total += int64(n)
	// Scan backwards: only the trailing zeros of this read matter.
	i := n - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i >= 0 {
		z.zeros = n - 1 - i
	} else {
		z.zeros += n
	}
	return n, err
}
