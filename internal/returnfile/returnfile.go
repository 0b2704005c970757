// Package returnfile is the one signed file an air-gapped mirror carries
// back to the vendor (outpost-return-v1): its lease audit export and its
// fleet report, each verbatim as a part, inside one envelope whose hash
// chain and ed25519 signature (the mirror key) cover both. It is pure:
// streams in, streams out, one line in memory at a time. The vendor
// verifies the envelope (Split) before it hands either part to its own
// reader (license.ReadAuditExportFrom, fleet.ImportBatched), which checks
// the part again as it always did.
package returnfile

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/outpost/outpost/internal/audit"
	"io"
	"strconv"
	"time"
)

// Format names the file; it is the header's "format" and starts the bytes
// the chain and the signature cover.
const Format = "outpost-return-v1"

// MaxLine caps one line: the largest inner line (an audit event, 1 MiB)
// plus its wrapper.
const MaxLine = 1<<20 + 64

// DefaultMaxBytes caps a whole file (4 GiB).
const DefaultMaxBytes int64 = 4 << 30

// Part names what a wrapped line belongs to.
type Part string

// The parts, in the order they appear.
const (
	PartAudit Part = "audit" // the lease audit export (outpost-audit-v1 lines and trailer)
	PartFleet Part = "fleet" // the fleet report (outpost-fleet-report-v1 lines)
)

// ErrRefused wraps every reason a file is refused.
var ErrRefused = errors.New("return file refused")

// Header is the first line.
type Header struct {
	Format    string    `json:"format"`
	MirrorID  string    `json:"mirror_id"`
	TenantID  string    `json:"tenant_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Trailer is the last line: how many part lines the chain covers, its
// head, and the mirror's signature over SignedBytes.
type Trailer struct {
	Count int64  `json:"count"`
	Head  string `json:"head"`
	Sig   []byte `json:"sig"`
}

// SignedBytes is what the trailer's signature covers:
// Format + "\n" + mirror_id + "\n" + head + "\n" + count.
func SignedBytes(mirrorID, head string, count int64) []byte {
	return []byte(Format + "\n" + mirrorID + "\n" + head + "\n" + strconv.FormatInt(count, 10))
}

func prefix(p Part) []byte { return []byte(`{"` + string(p) + `":`) }

// Writer streams a return file: header, the audit part, the fleet part,
// the signed trailer.
type Writer struct {
	w        *bufio.Writer
	key      ed25519.PrivateKey
	mirrorID string
	chain    audit.LineChain
	count    int64
	part     Part
	pending  []byte // the open part's unfinished line
	done     bool
}

// NewWriter writes the header (Format and the UTC time are set here).
func NewWriter(w io.Writer, hdr Header, key ed25519.PrivateKey) (*Writer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("new return file: not an ed25519 private key")
	}
	hdr.Format = Format
	hdr.CreatedAt = hdr.CreatedAt.UTC()
	line, err := json.Marshal(&hdr)
	if err != nil {
		return nil, fmt.Errorf("new return file: %w", err)
	}
	rw := &Writer{w: bufio.NewWriterSize(w, 64<<10), key: key, mirrorID: hdr.MirrorID}
	rw.chain.Start(Format, line)
	if err := rw.raw(line); err != nil {
		return nil, err
	}
	return rw, nil
}

func (rw *Writer) raw(line []byte) error {
	if _, err := rw.w.Write(line); err != nil {
		return fmt.Errorf("write return file: %w", err)
	}
	if err := rw.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("write return file: %w", err)
	}
	return nil
}

// Part returns the writer of one part: every line written to it (JSON,
// newline-terminated, as the part's own writer produces) becomes one
// wrapped line of the file. Open the audit part, then the fleet part;
// each once.
func (rw *Writer) Part(p Part) (io.Writer, error) {
	switch {
	case rw.done:
		return nil, errors.New("write return file: already closed")
	case p == PartAudit && rw.part == "", p == PartFleet && rw.part != PartFleet:
	default:
		return nil, fmt.Errorf("write return file: part %q out of order", p)
	}
	if err := rw.endPart(); err != nil {
		return nil, err
	}
	rw.part = p
	return partWriter{rw}, nil
}

func (rw *Writer) endPart() error {
	if len(rw.pending) > 0 {
		return fmt.Errorf("write return file: part %s ends without a newline", rw.part)
	}
	return nil
}

type partWriter struct{ rw *Writer }

func (pw partWriter) Write(b []byte) (int, error) {
	rw := pw.rw
	if rw.done {
		return 0, errors.New("write return file: already closed")
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(rw.pending)+len(b) > MaxLine {
				return 0, fmt.Errorf("write return file: a %s line is longer than %d bytes", rw.part, MaxLine)
			}
			rw.pending = append(rw.pending, b...)
			break
		}
		rw.pending = append(rw.pending, b[:i]...)
		b = b[i+1:]
		if err := rw.wrap(rw.pending); err != nil {
			return 0, err
		}
		rw.pending = rw.pending[:0]
	}
	return n, nil
}

func (rw *Writer) wrap(inner []byte) error {
	line := make([]byte, 0, len(inner)+16)
	line = append(line, prefix(rw.part)...)
	line = append(line, inner...)
	line = append(line, '}')
	if len(line) > MaxLine {
		return fmt.Errorf("write return file: a %s line is longer than %d bytes", rw.part, MaxLine)
	}
	rw.chain.Next(line)
	rw.count++
	return rw.raw(line)
}

// Close writes the signed trailer and flushes; both parts must have been
// written.
func (rw *Writer) Close() (Trailer, error) {
	if rw.done {
		return Trailer{}, errors.New("write return file: already closed")
	}
	if rw.part != PartFleet {
		return Trailer{}, errors.New("write return file: both parts (audit, then fleet) must be written")
	}
	if err := rw.endPart(); err != nil {
		return Trailer{}, err
	}
	rw.done = true
	tr := Trailer{Count: rw.count, Head: rw.chain.Head()}
	tr.Sig = ed25519.Sign(rw.key, SignedBytes(rw.mirrorID, tr.Head, tr.Count))
	line, err := json.Marshal(map[string]*Trailer{"trailer": &tr})
	if err != nil {
		return tr, fmt.Errorf("write return file: %w", err)
	}
	if err := rw.raw(line); err != nil {
		return tr, err
	}
	if err := rw.w.Flush(); err != nil {
		return tr, fmt.Errorf("write return file: %w", err)
	}
	return tr, nil
}

// Options bound and pin what Split accepts.
type Options struct {
	// MirrorID, when set, must be the header's.
	MirrorID string
	// MaxBytes caps the file (DefaultMaxBytes when 0).
	MaxBytes int64
}

// Summary describes a verified file.
type Summary struct {
	Header     Header
	Trailer    Trailer
	AuditLines int64
	FleetLines int64
}

// PeekHeader reads and checks the first line only: the caller learns
// which mirror's key to verify with. It proves nothing.
func PeekHeader(r io.Reader) (Header, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxLine+1), 4096)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return Header{}, fmt.Errorf("%w: line 1: %v", ErrRefused, err)
	}
	return decodeHeader(bytes.TrimSuffix(line, []byte("\n")))
}

// IsReturnFile says whether a first line names this format (to route a
// file among the formats an import takes).
func IsReturnFile(first []byte) bool {
	var h struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(bytes.TrimSpace(first), &h) == nil && h.Format == Format
}

func decodeHeader(line []byte) (Header, error) {
	var h Header
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("%w: line 1: header: %v", ErrRefused, err)
	}
	if dec.More() {
		return h, fmt.Errorf("%w: line 1: data after the header", ErrRefused)
	}
	if h.Format != Format {
		return h, fmt.Errorf("%w: line 1: format %q, want %q", ErrRefused, clip(h.Format), Format)
	}
	if h.MirrorID == "" || len(h.MirrorID) > 64 {
		return h, fmt.Errorf("%w: line 1: mirror_id is missing or malformed", ErrRefused)
	}
	return h, nil
}

// Split verifies a whole file with mirrorPub and streams each part's
// lines, unwrapped and newline-terminated, to auditOut and fleetOut. The parts
// it wrote are authentic only when Split returns nil (the signature is
// checked at the end), so the writers must only stage them (temporary
// files). Memory stays at one line.
func Split(r io.Reader, mirrorPub ed25519.PublicKey, opts Options, auditOut, fleetOut io.Writer) (Summary, error) {
	if len(mirrorPub) != ed25519.PublicKeySize {
		return Summary{}, fmt.Errorf("%w: not an ed25519 public key", ErrRefused)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	lim := &io.LimitedReader{R: r, N: opts.MaxBytes + 1}
	in := bufio.NewReaderSize(lim, MaxLine+1)
	n := 0
	readLine := func() ([]byte, error) {
		n++
		line, err := in.ReadSlice('\n')
		if lim.N <= 0 {
			return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrRefused, opts.MaxBytes)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrRefused, n, MaxLine)
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: line %d: truncated (no newline)", ErrRefused, n)
		case err != nil:
			return nil, fmt.Errorf("read return file: %w", err)
		}
		return line[:len(line)-1], nil
	}
	first, err := readLine()
	if errors.Is(err, io.EOF) {
		return Summary{}, fmt.Errorf("%w: empty file", ErrRefused)
	}
	if err != nil {
		return Summary{}, err
	}
	s := Summary{}
	if s.Header, err = decodeHeader(first); err != nil {
		return s, err
	}
	if opts.MirrorID != "" && s.Header.MirrorID != opts.MirrorID {
		return s, fmt.Errorf("%w: line 1: the file is mirror %q's, not %q", ErrRefused, clip(s.Header.MirrorID), opts.MirrorID)
	}
	var c audit.LineChain
	c.Start(Format, first)
	var part Part
	for {
		line, err := readLine()
		if errors.Is(err, io.EOF) {
			return s, fmt.Errorf("%w: no trailer (truncated file)", ErrRefused)
		}
		if err != nil {
			return s, err
		}
		var p Part
		var out io.Writer
		switch {
		case bytes.HasPrefix(line, prefix(PartAudit)):
			p, out = PartAudit, auditOut
		case bytes.HasPrefix(line, prefix(PartFleet)):
			p, out = PartFleet, fleetOut
		case bytes.HasPrefix(line, []byte(`{"trailer":`)):
			if err := finish(&s, line, c, mirrorPub, n); err != nil {
				return s, err
			}
			if _, err := readLine(); !errors.Is(err, io.EOF) {
				return s, fmt.Errorf("%w: data after the trailer", ErrRefused)
			}
			return s, nil
		default:
			return s, fmt.Errorf("%w: line %d: want an audit, fleet or trailer line", ErrRefused, n)
		}
		if p == PartAudit && part == PartFleet {
			return s, fmt.Errorf("%w: line %d: an audit line after the fleet part", ErrRefused, n)
		}
		part = p
		inner := line[len(prefix(p)):]
		if len(inner) == 0 || inner[len(inner)-1] != '}' || !json.Valid(inner[:len(inner)-1]) {
			return s, fmt.Errorf("%w: line %d: malformed %s line", ErrRefused, n, p)
		}
		inner = inner[:len(inner)-1]
		c.Next(line)
		if p == PartAudit {
			s.AuditLines++
		} else {
			s.FleetLines++
		}
		if _, err := out.Write(inner); err != nil {
			return s, fmt.Errorf("split return file: %w", err)
		}
		if _, err := out.Write([]byte{'\n'}); err != nil {
			return s, fmt.Errorf("split return file: %w", err)
		}
	}
}

func finish(s *Summary, line []byte, c audit.LineChain, pub ed25519.PublicKey, n int) error {
	var l struct {
		Trailer *Trailer `json:"trailer"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil || l.Trailer == nil {
		return fmt.Errorf("%w: line %d: malformed trailer", ErrRefused, n)
	}
	tr := *l.Trailer
	count := s.AuditLines + s.FleetLines
	switch {
	case !ed25519.Verify(pub, SignedBytes(s.Header.MirrorID, tr.Head, tr.Count), tr.Sig):
		return fmt.Errorf("%w: trailer signature does not verify with mirror %s's key", ErrRefused, s.Header.MirrorID)
	case tr.Count != count || tr.Head != c.Head():
		return fmt.Errorf("%w: the signed trailer covers %d lines with head %.12s…, the file has %d with head %.12s… (lines edited, added or removed)", ErrRefused, tr.Count, tr.Head, count, c.Head())
	case s.AuditLines == 0 || s.FleetLines == 0:
		return fmt.Errorf("%w: a part is missing (audit %d lines, fleet %d lines)", ErrRefused, s.AuditLines, s.FleetLines)
	}
	s.Trailer = tr
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
