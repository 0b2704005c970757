package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Meter wraps the reader given to Put: it hashes and counts the bytes as
// they pass, stops the caller's ctx, and never pulls more than one byte past
// the cap (Expect.Size when declared, else Expect.MaxSize), so a hostile
// endless body costs nothing. Stores share it so they enforce Expect alike.
type Meter struct {
	ctx   context.Context
	r     io.Reader
	e     Expect
	h     hash.Hash
	n     int64
	limit int64 // bytes allowed; -1 for none
	err   error // sticky
}

// NewMeter checks e and returns a Meter reading r.
func NewMeter(ctx context.Context, r io.Reader, e Expect) (*Meter, error) {
	if err := CheckExpect(e); err != nil {
		return nil, err
	}
	m := &Meter{ctx: ctx, r: r, e: e, h: sha256.New(), limit: -1}
	switch {
	case e.Size > 0:
		m.limit = e.Size
	case e.MaxSize > 0:
		m.limit = e.MaxSize
	}
	return m, nil
}

// CheckExpect validates e before any byte is read.
func CheckExpect(e Expect) error {
	if e.SHA256 != "" && !isSHA256Hex(e.SHA256) {
		return fmt.Errorf("expect sha256: %q is not 64 lowercase hex digits", e.SHA256)
	}
	if e.MaxSize < 0 {
		return fmt.Errorf("expect max_size: %d is negative", e.MaxSize)
	}
	if e.Size > 0 && e.MaxSize > 0 && e.Size > e.MaxSize {
		return fmt.Errorf("%w: declared size %d, limit %d", ErrTooLarge, e.Size, e.MaxSize)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Read implements io.Reader.
func (m *Meter) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if err := m.ctx.Err(); err != nil {
		m.err = err
		return 0, err
	}
	if m.limit >= 0 {
		// One byte past the limit is enough to know it was exceeded.
		if room := m.limit + 1 - m.n; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	m.n += int64(n)
	if m.limit >= 0 && m.n > m.limit {
		if m.e.Size > 0 {
			err = fmt.Errorf("%w: more than the declared %d bytes", ErrMismatch, m.e.Size)
		} else {
			err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, m.e.MaxSize)
		}
		m.err = err
		return n, err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		m.err = err
	}
	return n, err
}

// N returns how many bytes have passed so far.
func (m *Meter) N() int64 { return m.n }

// Finish is called once the reader hit EOF: it returns the size and hex
// sha256, or ErrMismatch when they differ from what was declared.
func (m *Meter) Finish() (int64, string, error) {
	if m.err != nil {
		return 0, "", m.err
	}
	sum := hex.EncodeToString(m.h.Sum(nil))
	if m.e.Size > 0 && m.n != m.e.Size {
		return 0, "", fmt.Errorf("%w: got %d bytes, declared %d", ErrMismatch, m.n, m.e.Size)
	}
	if m.e.SHA256 != "" && sum != m.e.SHA256 {
		return 0, "", fmt.Errorf("%w: got sha256 %s, declared %s", ErrMismatch, sum, m.e.SHA256)
	}
	return m.n, sum, nil
}
