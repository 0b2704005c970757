// Package bundle reads and writes offline bundles. A schema 1 bundle is a
// tar whose first entry is "snapshot.dsse.json" (the signed envelope,
// verbatim), optionally "ack.dsse.json" (the vendor's signed
// acknowledgement of the mirror's return files), then "artifacts/<sha256>"
// entries and "deltas/<sha256>" entries (a signed delta the snapshot lists,
// carried instead of its target artifact when the receiver holds the
// base); a TUF bundle
// (tuf.go) starts with "tuf-bundle.json" and carries repository files and
// artifacts by their TUF paths. Each reader refuses the other format
// with ErrWrongFormat. Both sides stream with constant memory.
// The reader is strict: any other name, a duplicate, a truncated archive
// or an entry tarsafe.Check refuses (sparse in any GNU form, a link, a
// device, an unclean name) is an error, found before any byte of the
// entry is handed out; bodies read as exactly their stored size
// (tarsafe.Body), so a bundle never expands into more than it holds.
package bundle

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/tarsafe"
)

// EnvelopeName is the name of the first entry.
const EnvelopeName = "snapshot.dsse.json"

// AckName is the optional second entry of a bundle exported for one
// mirror (schema 1: after the envelope; TUF: after the manifest, which
// announces it): the vendor's signed acknowledgement of its return files
// (internal/returnfile), verified by the mirror, not by this package.
const AckName = "ack.dsse.json"

// MaxAckEntry caps the acknowledgement entry.
const MaxAckEntry = 64 << 10

// ArtifactPrefix prefixes every artifact entry.
const ArtifactPrefix = "artifacts/"

// DeltaPrefix prefixes every delta entry (named by the delta's sha256).
const DeltaPrefix = "deltas/"

// DefaultMaxEnvelope caps the envelope entry (64 MiB, as over HTTP).
const DefaultMaxEnvelope = 64 << 20

// ErrInvalid wraps every reason a bundle is rejected.
var ErrInvalid = errors.New("invalid bundle")

// Writer writes a bundle.
type Writer struct {
	tw      *tar.Writer
	env     bool
	ack     bool
	arts    bool
	seen    map[string]bool
	modTime time.Time
}

// NewWriter starts a bundle on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{tw: tar.NewWriter(w), seen: map[string]bool{}, modTime: time.Unix(0, 0).UTC()}
}

// WriteSnapshot writes the envelope; it must be called first, once.
func (w *Writer) WriteSnapshot(env []byte) error {
	if w.env {
		return errors.New("bundle: snapshot already written")
	}
	w.env = true
	if err := w.tw.WriteHeader(w.header(EnvelopeName, int64(len(env)))); err != nil {
		return fmt.Errorf("bundle: write snapshot header: %w", err)
	}
	if _, err := w.tw.Write(env); err != nil {
		return fmt.Errorf("bundle: write snapshot: %w", err)
	}
	return nil
}

// WriteAck writes the signed acknowledgement: after the snapshot, before
// any artifact, once.
func (w *Writer) WriteAck(env []byte) error {
	switch {
	case !w.env:
		return errors.New("bundle: the snapshot must be written first")
	case w.ack || w.arts:
		return errors.New("bundle: the acknowledgement goes once, right after the snapshot")
	case len(env) > MaxAckEntry:
		return fmt.Errorf("bundle: acknowledgement of %d bytes is over the %d byte cap", len(env), MaxAckEntry)
	}
	w.ack = true
	if err := w.tw.WriteHeader(w.header(AckName, int64(len(env)))); err != nil {
		return fmt.Errorf("bundle: write acknowledgement header: %w", err)
	}
	if _, err := w.tw.Write(env); err != nil {
		return fmt.Errorf("bundle: write acknowledgement: %w", err)
	}
	return nil
}

// WriteArtifact streams one artifact of exactly size bytes.
func (w *Writer) WriteArtifact(sha string, size int64, r io.Reader) error {
	return w.writeEntry(ArtifactPrefix, "artifact", sha, size, r)
}

// WriteDelta streams one signed delta (named by its own sha256) of
// exactly size bytes.
func (w *Writer) WriteDelta(sha string, size int64, r io.Reader) error {
	return w.writeEntry(DeltaPrefix, "delta", sha, size, r)
}

func (w *Writer) writeEntry(prefix, kind, sha string, size int64, r io.Reader) error {
	if !w.env {
		return errors.New("bundle: the snapshot must be written first")
	}
	w.arts = true
	if !cache.ValidSHA(sha) {
		return fmt.Errorf("bundle: invalid sha256 %q", sha)
	}
	if w.seen[prefix+sha] {
		return fmt.Errorf("bundle: %s %s written twice", kind, sha)
	}
	w.seen[prefix+sha] = true
	if err := w.tw.WriteHeader(w.header(prefix+sha, size)); err != nil {
		return fmt.Errorf("bundle: write %s header %s: %w", kind, sha, err)
	}
	n, err := io.Copy(w.tw, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("bundle: write %s %s: %w", kind, sha, err)
	}
	if n != size {
		return fmt.Errorf("bundle: %s %s: got %d of %d bytes", kind, sha, n, size)
	}
	return nil
}

// Close writes the end-of-archive marker. It does not close the
// underlying writer.
func (w *Writer) Close() error {
	if !w.env {
		return errors.New("bundle: no snapshot written")
	}
	return w.tw.Close()
}

func (w *Writer) header(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: w.modTime, Format: tar.FormatPAX}
}

// Reader reads a bundle entry by entry.
type Reader struct {
	tr     *tar.Reader
	zr     *zeroTail
	maxEnv int64
	env    bool
	seen   map[string]bool
	done   bool
	body   io.Reader // the current entry's body: exactly its stored size
	// TUF bundles: the manifest read, and the entries read after it.
	tuf   bool
	man   *TUFManifest
	count int
	// Schema 1: the acknowledgement entry, and whether an artifact came.
	ack     []byte
	artSeen bool
}

// Ack is the acknowledgement entry's bytes (nil when the bundle has
// none): schema 1, read by the first Next after the envelope; TUF, read
// with the manifest.
func (r *Reader) Ack() []byte { return r.ack }

// NewReader reads a bundle from r. maxEnvelope <= 0 means
// DefaultMaxEnvelope.
func NewReader(r io.Reader, maxEnvelope int64) *Reader {
	if maxEnvelope <= 0 {
		maxEnvelope = DefaultMaxEnvelope
	}
	zr := &zeroTail{r: r}
	return &Reader{tr: tar.NewReader(zr), zr: zr, maxEnv: maxEnvelope, seen: map[string]bool{}}
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

// Envelope reads the first entry, which must be the snapshot envelope.
func (r *Reader) Envelope() ([]byte, error) {
	if r.env {
		return nil, errors.New("bundle: envelope already read")
	}
	r.env = true
	hdr, err := r.next()
	if err == io.EOF {
		return nil, invalid("empty bundle")
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name == TUFManifestName {
		return nil, fmt.Errorf("%w: %w: this is a TUF bundle and this mirror runs trust: dsse; import it on a mirror with trust: tuf, or export a schema 1 bundle (without --format tuf)", ErrInvalid, ErrWrongFormat)
	}
	if hdr.Name != EnvelopeName {
		return nil, invalid("first entry is %q, want %q", hdr.Name, EnvelopeName)
	}
	if hdr.Size > r.maxEnv {
		return nil, invalid("%s is %d bytes, over the %d byte cap", EnvelopeName, hdr.Size, r.maxEnv)
	}
	env, err := io.ReadAll(r.Body())
	if err != nil {
		return nil, invalid("read %s: %v", EnvelopeName, err)
	}
	if int64(len(env)) != hdr.Size {
		return nil, invalid("truncated %s", EnvelopeName)
	}
	return env, nil
}

// Entry is one artifact entry, or with Delta a delta entry; read its
// bytes from Reader.Body before calling Next again.
type Entry struct {
	SHA256 string // the artifact's, or the delta's own
	Size   int64
	Delta  bool
}

// Next returns the next artifact or delta entry, or io.EOF after the
// last one.
func (r *Reader) Next() (Entry, error) {
	if !r.env || r.tuf {
		return Entry{}, errors.New("bundle: read the envelope first")
	}
	if r.done {
		return Entry{}, io.EOF
	}
	hdr, err := r.next()
	if err == nil && hdr.Name == AckName && !r.artSeen {
		if hdr.Size > MaxAckEntry {
			return Entry{}, invalid("%s is %d bytes, over the %d byte cap", AckName, hdr.Size, MaxAckEntry)
		}
		if r.ack, err = io.ReadAll(r.Body()); err != nil {
			return Entry{}, invalid("read %s: %v", AckName, err)
		}
		hdr, err = r.next()
	}
	if err == io.EOF {
		r.done = true
		return Entry{}, io.EOF
	}
	if err != nil {
		return Entry{}, err
	}
	r.artSeen = true
	if sha, ok := strings.CutPrefix(hdr.Name, DeltaPrefix); ok && cache.ValidSHA(sha) {
		return Entry{SHA256: sha, Size: hdr.Size, Delta: true}, nil
	}
	sha, ok := strings.CutPrefix(hdr.Name, ArtifactPrefix)
	if !ok || !cache.ValidSHA(sha) {
		return Entry{}, invalid("entry name %q is not %s<sha256> or %s<sha256>", hdr.Name, ArtifactPrefix, DeltaPrefix)
	}
	return Entry{SHA256: sha, Size: hdr.Size}, nil
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
