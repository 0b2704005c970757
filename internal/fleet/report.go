package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

// ReportFormat names the return file format; it is the header's "format"
// and starts the bytes the hash chain and the signature cover.
const ReportFormat = "outpost-fleet-report-v1"

// ReportHeader is the first line of a return file.
type ReportHeader struct {
	Format    string    `json:"format"`
	MirrorID  string    `json:"mirror_id"`
	TenantID  string    `json:"tenant_id,omitempty"`
	StoreID   string    `json:"store_id"`
	Since     uint64    `json:"since"`   // the acknowledgement cursor the events start after
	Dropped   uint64    `json:"dropped"` // unacknowledged events that left the window before this export
	CreatedAt time.Time `json:"created_at"`
}

// ReportTrailer is the last line: how many records the chain covers, the
// last event sequence the report accounts for (acknowledge up to it),
// the chain's head, and the mirror's ed25519 signature over
// ReportSignedBytes.
type ReportTrailer struct {
	Count   int64  `json:"count"`
	Through uint64 `json:"through"`
	Head    string `json:"head"`
	Sig     []byte `json:"sig"`
}

// ReportSignedBytes is what the trailer's signature covers:
// ReportFormat + "\n" + head + "\n" + count + "\n" + through.
func ReportSignedBytes(head string, count int64, through uint64) []byte {
	return []byte(ReportFormat + "\n" + head + "\n" + strconv.FormatInt(count, 10) + "\n" + strconv.FormatUint(through, 10))
}

// reportLine is every line after the header: exactly one field is set.
type reportLine struct {
	Aggregate *Aggregate     `json:"aggregate,omitempty"`
	Event     *Record        `json:"event,omitempty"`
	Trailer   *ReportTrailer `json:"trailer,omitempty"`
}

// ReportWriter streams a return file: header, records, signed trailer.
// It holds one line at a time.
type ReportWriter struct {
	w     *bufio.Writer
	key   ed25519.PrivateKey
	chain audit.LineChain
	count int64
	buf   bytes.Buffer
	done  bool
}

// NewReportWriter writes hdr (Format is set for the caller) and returns a
// writer for the records; Close signs with key.
func NewReportWriter(w io.Writer, hdr ReportHeader, key ed25519.PrivateKey) (*ReportWriter, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("new report writer: not an ed25519 private key")
	}
	hdr.Format = ReportFormat
	hdr.CreatedAt = hdr.CreatedAt.UTC()
	rw := &ReportWriter{w: bufio.NewWriterSize(w, 64<<10), key: key}
	line, err := json.Marshal(&hdr)
	if err != nil {
		return nil, fmt.Errorf("new report writer: %w", err)
	}
	rw.chain.Start(ReportFormat, line)
	if err := rw.writeLine(line); err != nil {
		return nil, err
	}
	return rw, nil
}

func (rw *ReportWriter) writeLine(line []byte) error {
	if _, err := rw.w.Write(line); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := rw.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func (rw *ReportWriter) record(l *reportLine) error {
	if rw.done {
		return errors.New("write report: already closed")
	}
	rw.buf.Reset()
	enc := json.NewEncoder(&rw.buf)
	if err := enc.Encode(l); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	line := bytes.TrimSuffix(rw.buf.Bytes(), []byte("\n"))
	rw.chain.Next(line)
	rw.count++
	return rw.writeLine(line)
}

// WriteAggregate adds an aggregate.
func (rw *ReportWriter) WriteAggregate(a *Aggregate) error {
	return rw.record(&reportLine{Aggregate: a})
}

// WriteEvent adds an event.
func (rw *ReportWriter) WriteEvent(r *Record) error { return rw.record(&reportLine{Event: r}) }

// Close writes the signed trailer and flushes. through is the last event
// sequence the report accounts for.
func (rw *ReportWriter) Close(through uint64) (ReportTrailer, error) {
	if rw.done {
		return ReportTrailer{}, errors.New("write report: already closed")
	}
	rw.done = true
	tr := ReportTrailer{Count: rw.count, Through: through, Head: rw.chain.Head()}
	tr.Sig = ed25519.Sign(rw.key, ReportSignedBytes(tr.Head, tr.Count, tr.Through))
	line, err := json.Marshal(&reportLine{Trailer: &tr})
	if err != nil {
		return tr, fmt.Errorf("write report: %w", err)
	}
	if err := rw.writeLine(line); err != nil {
		return tr, err
	}
	if err := rw.w.Flush(); err != nil {
		return tr, fmt.Errorf("write report: %w", err)
	}
	return tr, nil
}

// ExportIdentity is who signs a report.
type ExportIdentity struct {
	MirrorID string
	TenantID string
	Key      ed25519.PrivateKey
}

// ExportReport streams a return file of the aggregator's state to w: every
// aggregate, then every event above the acknowledgement cursor still in
// the window. Memory stays flat whatever the window size (the store
// streams records). It returns the trailer (Through is the cursor to
// acknowledge once the vendor has ingested the report).
func (a *Aggregator) ExportReport(ctx context.Context, w io.Writer, id ExportIdentity, now time.Time) (ReportTrailer, error) {
	m, err := a.store.Meta(ctx)
	if err != nil {
		return ReportTrailer{}, fmt.Errorf("export fleet report: %w", err)
	}
	hdr := ReportHeader{MirrorID: id.MirrorID, TenantID: id.TenantID, StoreID: m.StoreID, Since: m.Acked, CreatedAt: now}
	if m.OldestSeq > m.Acked+1 {
		hdr.Dropped = m.OldestSeq - m.Acked - 1
	} else if m.OldestSeq == 0 && m.LastSeq > m.Acked {
		hdr.Dropped = m.LastSeq - m.Acked
	}
	rw, err := NewReportWriter(w, hdr, id.Key)
	if err != nil {
		return ReportTrailer{}, fmt.Errorf("export fleet report: %w", err)
	}
	for _, g := range a.Aggregates() {
		if err := rw.WriteAggregate(&g); err != nil {
			return ReportTrailer{}, fmt.Errorf("export fleet report: %w", err)
		}
	}
	err = a.store.Records(ctx, m.Acked, func(r Record) error {
		if r.Seq > m.LastSeq {
			return errStop
		}
		return rw.WriteEvent(&r)
	})
	if err != nil && !errors.Is(err, errStop) {
		return ReportTrailer{}, fmt.Errorf("export fleet report: %w", err)
	}
	tr, err := rw.Close(m.LastSeq)
	if err != nil {
		return tr, fmt.Errorf("export fleet report: %w", err)
	}
	return tr, nil
}

// ErrReport wraps every reason a return file is refused.
var ErrReport = errors.New("fleet report refused")

// ReadOptions bound and pin what a ReportReader accepts.
type ReadOptions struct {
	// MirrorID, when set, must be the header's mirror id (the key given
	// is that mirror's registered key).
	MirrorID string
	// MaxBytes caps the whole file (default 4 GiB); MaxLine one line
	// (default 64 KiB).
	MaxBytes int64
	MaxLine  int
}

// ReportReader reads a return file line by line, with flat memory. Next
// returns records as it reads them, before the signature at the end is
// checked: only a Next that returned io.EOF proves the whole file genuine.
// Use VerifyReport first, or Import, before acting on records.
type ReportReader struct {
	in      *bufio.Reader
	lim     *io.LimitedReader
	pub     ed25519.PublicKey
	opts    ReadOptions
	hdr     ReportHeader
	chain   audit.LineChain
	count   int64
	line    int
	lastSeq uint64
	trailer *ReportTrailer
	err     error
}

// NewReportReader reads and checks the header.
func NewReportReader(r io.Reader, pub ed25519.PublicKey, opts ReadOptions) (*ReportReader, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: not an ed25519 public key", ErrReport)
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 4 << 30
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = 64 << 10
	}
	lim := &io.LimitedReader{R: r, N: opts.MaxBytes + 1}
	rr := &ReportReader{in: bufio.NewReaderSize(lim, 64<<10), lim: lim, pub: pub, opts: opts}
	line, err := rr.readLine()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty file", ErrReport)
		}
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rr.hdr); err != nil {
		return nil, fmt.Errorf("%w: line 1: header: %v", ErrReport, err)
	}
	switch {
	case rr.hdr.Format != ReportFormat:
		return nil, fmt.Errorf("%w: line 1: format %q, want %q", ErrReport, clip(rr.hdr.Format), ReportFormat)
	case rr.hdr.StoreID == "" || len(rr.hdr.StoreID) > 64 || !charset(rr.hdr.StoreID, ""):
		return nil, fmt.Errorf("%w: line 1: store_id is missing or malformed", ErrReport)
	case opts.MirrorID != "" && rr.hdr.MirrorID != opts.MirrorID:
		return nil, fmt.Errorf("%w: line 1: report is from mirror %q, not %q", ErrReport, clip(rr.hdr.MirrorID), opts.MirrorID)
	}
	rr.chain.Start(ReportFormat, line)
	return rr, nil
}

// Header is the file's header.
func (rr *ReportReader) Header() ReportHeader { return rr.hdr }

// Trailer is the verified trailer, once Next has returned io.EOF.
func (rr *ReportReader) Trailer() *ReportTrailer { return rr.trailer }

// readLine returns the next line without its newline; the slice is valid
// until the next call.
func (rr *ReportReader) readLine() ([]byte, error) {
	rr.line++
	line, err := rr.in.ReadSlice('\n')
	if rr.lim.N <= 0 {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrReport, rr.opts.MaxBytes)
	}
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > rr.opts.MaxLine+1:
		return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrReport, rr.line, rr.opts.MaxLine)
	case errors.Is(err, io.EOF) && len(line) == 0:
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: line %d: truncated (no newline)", ErrReport, rr.line)
	case err != nil:
		return nil, fmt.Errorf("read report: %w", err)
	}
	return line[:len(line)-1], nil
}

// Item is one record of a report.
type Item struct {
	Aggregate *Aggregate
	Event     *Record
}

// Next returns the next record, or io.EOF after the trailer has been
// verified (signature, count, head) and nothing follows it.
func (rr *ReportReader) Next() (Item, error) {
	if rr.err != nil {
		return Item{}, rr.err
	}
	it, err := rr.next()
	if err != nil {
		rr.err = err
	}
	return it, err
}

func (rr *ReportReader) next() (Item, error) {
	if rr.trailer != nil {
		return Item{}, io.EOF
	}
	line, err := rr.readLine()
	if errors.Is(err, io.EOF) {
		return Item{}, fmt.Errorf("%w: no trailer (truncated file)", ErrReport)
	}
	if err != nil {
		return Item{}, err
	}
	var l reportLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Item{}, fmt.Errorf("%w: line %d: %v", ErrReport, rr.line, err)
	}
	set := 0
	for _, ok := range []bool{l.Aggregate != nil, l.Event != nil, l.Trailer != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return Item{}, fmt.Errorf("%w: line %d: want exactly one of aggregate, event, trailer", ErrReport, rr.line)
	}
	if l.Trailer != nil {
		return Item{}, rr.finish(l.Trailer)
	}
	rr.chain.Next(line)
	rr.count++
	if l.Aggregate != nil {
		if err := validAggregate(l.Aggregate); err != nil {
			return Item{}, fmt.Errorf("%w: line %d: aggregate: %v", ErrReport, rr.line, err)
		}
		return Item{Aggregate: l.Aggregate}, nil
	}
	if err := l.Event.Validate(Clock{}); err != nil {
		return Item{}, fmt.Errorf("%w: line %d: event: %v", ErrReport, rr.line, err)
	}
	if l.Event.Seq <= rr.hdr.Since {
		return Item{}, fmt.Errorf("%w: line %d: event sequence %d is not above since %d", ErrReport, rr.line, l.Event.Seq, rr.hdr.Since)
	}
	if l.Event.Seq <= rr.lastSeq {
		return Item{}, fmt.Errorf("%w: line %d: event sequence %d does not follow %d", ErrReport, rr.line, l.Event.Seq, rr.lastSeq)
	}
	rr.lastSeq = l.Event.Seq
	return Item{Event: l.Event}, nil
}

func (rr *ReportReader) finish(tr *ReportTrailer) error {
	if !ed25519.Verify(rr.pub, ReportSignedBytes(tr.Head, tr.Count, tr.Through), tr.Sig) {
		return fmt.Errorf("%w: trailer signature does not verify with the mirror key", ErrReport)
	}
	if tr.Count != rr.count || tr.Head != rr.chain.Head() {
		return fmt.Errorf("%w: the signed trailer covers %d records with head %.12s…, the file has %d with head %.12s… (records edited, added or removed)", ErrReport, tr.Count, tr.Head, rr.count, rr.chain.Head())
	}
	if rr.lastSeq > tr.Through || tr.Through < rr.hdr.Since {
		return fmt.Errorf("%w: trailer through %d does not cover the events (since %d, last %d)", ErrReport, tr.Through, rr.hdr.Since, rr.lastSeq)
	}
	if _, err := rr.readLine(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the trailer", ErrReport)
	}
	rr.trailer = tr
	return io.EOF
}

func validAggregate(a *Aggregate) error {
	if !a.Type.Valid() {
		return &FieldError{Field: "type", Reason: "unknown"}
	}
	if a.ReleaseID != "" && !catalog.ValidID(catalog.PrefixRelease, a.ReleaseID) {
		return &FieldError{Field: "release_id", Reason: "malformed"}
	}
	if a.ProductID != "" && !catalog.ValidID(catalog.PrefixProduct, a.ProductID) {
		return &FieldError{Field: "product_id", Reason: "malformed"}
	}
	if a.Count < 0 || a.DurationMSSum < 0 {
		return &FieldError{Field: "count", Reason: "negative"}
	}
	if len(a.ErrorCodes) > MaxErrorCodes+1 {
		return &FieldError{Field: "error_codes", Reason: fmt.Sprintf("more than %d codes", MaxErrorCodes+1)}
	}
	for k, v := range a.ErrorCodes {
		if (k != OtherErrorCodes && !ValidErrorCode(k)) || v < 0 {
			return &FieldError{Field: "error_codes", Reason: "malformed code or count"}
		}
	}
	return nil
}

// ReportSummary describes a verified report.
type ReportSummary struct {
	Header     ReportHeader
	Trailer    ReportTrailer
	Aggregates int64
	Events     int64
}

// VerifyReport reads the whole report and checks it, with flat memory.
func VerifyReport(r io.Reader, pub ed25519.PublicKey, opts ReadOptions) (ReportSummary, error) {
	rr, err := NewReportReader(r, pub, opts)
	if err != nil {
		return ReportSummary{}, err
	}
	s := ReportSummary{Header: rr.Header()}
	for {
		it, err := rr.Next()
		if errors.Is(err, io.EOF) {
			s.Trailer = *rr.Trailer()
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if it.Aggregate != nil {
			s.Aggregates++
		} else {
			s.Events++
		}
	}
}
