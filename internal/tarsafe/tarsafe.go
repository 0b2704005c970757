// Package tarsafe decides whether a tar entry from an untrusted archive
// (an offline bundle, an inbox drop) may be written: only a plain regular
// file of a bounded, non-negative size under a clean relative name is
// accepted, and its body reads as exactly that many stored bytes.
//
// archive/tar expands GNU sparse files transparently: a 4.5 KiB entry can
// claim a size of a terabyte and read back as that many zero bytes. Check
// refuses every sparse form (type 'S' and the PAX GNU.sparse.* records), so
// a reader that calls it on every header before writing never writes or
// hashes more than the archive really holds.
package tarsafe

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrUnsafe is wrapped by every refusal from Check and by a body that does
// not hold exactly its header's size.
var ErrUnsafe = errors.New("unsafe tar entry")

// MaxNameLen caps an entry name in bytes.
const MaxNameLen = 1024

// sparsePrefix starts every PAX record of GNU's sparse formats 0.0, 0.1
// and 1.0.
const sparsePrefix = "GNU.sparse."

func refuse(name, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrUnsafe, printable(name), fmt.Sprintf(format, args...))
}

// Check returns nil when hdr is a plain regular file (type '0' or the
// legacy '\x00'), not sparse in any GNU form, with no link target, a size
// from 0 to maxSize bytes (maxSize < 0: no cap), and a clean relative name:
// valid UTF-8, no NUL, no backslash, no leading '/', no '.' or '..'
// element, no empty element. Otherwise it returns an error wrapping
// ErrUnsafe that names the entry and the reason.
func Check(hdr *tar.Header, maxSize int64) error {
	if hdr == nil {
		return fmt.Errorf("%w: no header", ErrUnsafe)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00': // '\x00' is the legacy regular-file type (tar.TypeRegA)
	case tar.TypeGNUSparse:
		return refuse(hdr.Name, "sparse file (type 'S')")
	default:
		return refuse(hdr.Name, "not a regular file (%s)", typeName(hdr.Typeflag))
	}
	for _, k := range slices.Sorted(maps.Keys(hdr.PAXRecords)) {
		if strings.HasPrefix(k, sparsePrefix) {
			return refuse(hdr.Name, "sparse file (PAX record %s)", printable(k))
		}
	}
	if err := CheckName(hdr.Name); err != nil {
		return err
	}
	if hdr.Linkname != "" {
		return refuse(hdr.Name, "regular file with a link target")
	}
	if hdr.Size < 0 {
		return refuse(hdr.Name, "negative size %d", hdr.Size)
	}
	if maxSize >= 0 && hdr.Size > maxSize {
		return refuse(hdr.Name, "size %d over the %d byte cap", hdr.Size, maxSize)
	}
	return nil
}

// CheckName returns nil when name is a clean relative slash-separated path
// (see Check), otherwise an error wrapping ErrUnsafe.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrUnsafe)
	case len(name) > MaxNameLen:
		return refuse(name[:64], "name longer than %d bytes", MaxNameLen)
	case !utf8.ValidString(name):
		return refuse(name, "name is not valid UTF-8")
	case strings.ContainsRune(name, 0):
		return refuse(name, "NUL in name")
	case strings.ContainsRune(name, '\\'):
		return refuse(name, "backslash in name")
	case strings.HasPrefix(name, "/"):
		return refuse(name, "absolute name")
	case len(name) >= 2 && name[1] == ':':
		return refuse(name, "drive-letter name")
	}
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "..":
			return refuse(name, "'..' in name")
		case ".", "":
			return refuse(name, "name is not clean (want %q)", path.Clean(name))
		}
	}
	return nil
}

// Body returns a reader over the current entry's bytes r (the tar.Reader)
// that yields exactly hdr.Size bytes: ending early is an
// io.ErrUnexpectedEOF wrapped in ErrUnsafe. Call it only after Check
// accepted hdr (for a sparse entry archive/tar fills holes with zeros, so
// the count alone proves nothing).
func Body(r io.Reader, hdr *tar.Header) io.Reader {
	return &exactReader{r: r, name: hdr.Name, left: hdr.Size}
}

type exactReader struct {
	r    io.Reader
	name string
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, fmt.Errorf("%w %q: %w (%d bytes missing)", ErrUnsafe, printable(e.name), io.ErrUnexpectedEOF, e.left)
		}
		return n, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return n, fmt.Errorf("%w %q: %w (%d bytes missing)", ErrUnsafe, printable(e.name), err, e.left)
	}
	if err != nil {
		return n, fmt.Errorf("read %q: %w", printable(e.name), err)
	}
	return n, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file"
	}
	if t >= 0x20 && t < 0x7f {
		return fmt.Sprintf("type %q", t)
	}
	return fmt.Sprintf("type 0x%02x", t)
}

// printable keeps a name from an archive safe to log.
func printable(s string) string {
	if len(s) > 128 {
		s = s[:128] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
