// Package fetch is the one resumable, verified download of the product,
// used by the mirror's sync (into its cache) and by the client package
// (into the caller's destination): a partial file is re-hashed and
// continued with a ranged request, a source that restarts from zero
// truncates it, the announced total must be the expected size, sha256 and
// size are checked while writing, at most one byte past the expected size
// is read, and a complete file is fsynced before the caller commits it
// (Commit: rename, then fsync of the directory). It imports nothing of the
// mirror's state.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/outpost/outpost/internal/fsutil"
)

// Errors of Resume. ErrMismatch, ErrTooLarge and ErrWrongSize say the
// content is not what was expected (Verification reports them); the
// partial file is removed. The others are transient; the partial file is
// kept for the next attempt.
var (
	ErrMismatch  = errors.New("sha256 mismatch")
	ErrTooLarge  = errors.New("larger than the expected size")
	ErrWrongSize = errors.New("the source announces another size")
	// ErrShort: the source ended before the expected size.
	ErrShort = errors.New("short transfer")
	// ErrInterrupted: reading the source failed midway.
	ErrInterrupted = errors.New("transfer interrupted")
	// ErrRange: the source answered another range than asked (its answer
	// to a ranged request is neither from the offset nor from zero).
	ErrRange = errors.New("wrong range")
	// ErrRangeNotSatisfiable: the source refused the range (it holds
	// fewer bytes than the partial file). The partial file is kept: the
	// source, not the prefix, is short of the expected size.
	ErrRangeNotSatisfiable = errors.New("range not satisfiable")
)

// Verification reports whether err says the content is wrong (not
// merely that the transfer failed).
func Verification(err error) bool {
	return errors.Is(err, ErrMismatch) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrWrongSize)
}

// Want is what the content must be.
type Want struct {
	SHA256 string // lowercase hex
	Size   int64
}

// Body is a source's answer to a request from some offset.
type Body struct {
	io.ReadCloser
	// Start is the offset of the body's first byte: the one asked for, or
	// 0 when the source sends the whole content (the partial file is then
	// truncated).
	Start int64
	// Total is the whole content's size as the source announces it, -1
	// when it does not.
	Total int64
}

// Opener opens the source from byte offset on.
type Opener func(ctx context.Context, offset int64) (*Body, error)

// Progress, when not nil, is told the bytes held so far and the total.
type Progress func(done, total int64)

// copyBufs are 1 MiB: a multi-GiB artifact then costs a few thousand
// write syscalls instead of tens of thousands with io.Copy's 32 KiB.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Resume brings the file at part up to want.Size bytes, continuing what
// an earlier attempt left there (re-hashed first: the final hash covers
// every byte), and verifies size and sha256. On success part is complete,
// verified and fsynced, ready for Commit. It returns the bytes read from
// the source.
func Resume(ctx context.Context, part string, want Want, open Opener, progress Progress) (int64, error) {
	if want.Size < 0 {
		return 0, fmt.Errorf("fetch: negative size %d", want.Size)
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open partial file: %w", err)
	}
	defer f.Close()
	r := &resumer{f: f, h: sha256.New(), want: want, progress: progress}
	n, err := r.run(ctx, open)
	if Verification(err) {
		f.Close()
		os.Remove(part)
	}
	return n, err
}

type resumer struct {
	f        *os.File
	h        hash.Hash
	have     int64
	want     Want
	progress Progress
}

func (r *resumer) run(ctx context.Context, open Opener) (int64, error) {
	// Re-hash what an earlier attempt wrote; a prefix longer than the
	// expected size cannot be right.
	have, err := io.Copy(r.h, r.f)
	if err != nil {
		return 0, fmt.Errorf("hash partial file: %w", err)
	}
	r.have = have
	if have > r.want.Size {
		if err := r.restart(); err != nil {
			return 0, err
		}
	}
	r.report()
	var got int64
	if r.have < r.want.Size {
		if got, err = r.transfer(ctx, open); err != nil {
			return got, err
		}
	}
	if sum := hex.EncodeToString(r.h.Sum(nil)); sum != strings.ToLower(r.want.SHA256) {
		return got, fmt.Errorf("%w: sha256 %s, expected %s", ErrMismatch, sum, strings.ToLower(r.want.SHA256))
	}
	if err := r.f.Sync(); err != nil {
		return got, fmt.Errorf("fsync partial file: %w", err)
	}
	return got, nil
}

// transfer appends the rest from the source.
func (r *resumer) transfer(ctx context.Context, open Opener) (int64, error) {
	body, err := open(ctx, r.have)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	switch body.Start {
	case r.have:
	case 0: // the source sends everything: start over
		if err := r.restart(); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%w: asked for bytes from %d, got from %d", ErrRange, r.have, body.Start)
	}
	if body.Total >= 0 && body.Total != r.want.Size {
		return 0, fmt.Errorf("%w: %d bytes, expected %d", ErrWrongSize, body.Total, r.want.Size)
	}
	// One byte more than the expected size is enough to know it is wrong.
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	w := &counter{r: r}
	n, err := io.CopyBuffer(w, io.LimitReader(ctxReader{ctx, body}, r.want.Size-r.have+1), *bp)
	switch {
	case r.have > r.want.Size:
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.want.Size)
	case w.err != nil:
		return n, w.err
	case err != nil && ctx.Err() != nil:
		return n, ctx.Err()
	case err != nil:
		return n, fmt.Errorf("%w after %d of %d bytes: %w", ErrInterrupted, r.have, r.want.Size, err)
	case r.have < r.want.Size:
		return n, fmt.Errorf("%w: %d of %d bytes", ErrShort, r.have, r.want.Size)
	}
	return n, nil
}

// restart empties the partial file.
func (r *resumer) restart() error {
	if err := r.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate partial file: %w", err)
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek partial file: %w", err)
	}
	r.h.Reset()
	r.have = 0
	return nil
}

func (r *resumer) report() {
	if r.progress != nil {
		r.progress(min(r.have, r.want.Size), r.want.Size)
	}
}

// counter writes to the partial file and the hash, never past size+1
// bytes, and reports progress.
type counter struct {
	r   *resumer
	err error // a write failure (not the source's)
}

func (c *counter) Write(p []byte) (int, error) {
	r := c.r
	if r.have+int64(len(p)) > r.want.Size {
		// Over the size: nothing more is kept, the caller sees have > size.
		r.have += int64(len(p))
		return len(p), nil
	}
	if _, err := r.f.Write(p); err != nil {
		c.err = fmt.Errorf("write partial file: %w", err)
		return 0, c.err
	}
	r.h.Write(p)
	r.have += int64(len(p))
	r.report()
	return len(p), nil
}

// ctxReader stops reading once ctx is done, for sources (files, buckets)
// that do not watch it themselves.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Commit renames a part Resume completed to dest, then fsyncs dest's
// directory (and part's, when it is another), so the rename survives a
// crash.
func Commit(part, dest string) error {
	if err := os.Rename(part, dest); err != nil {
		return fmt.Errorf("commit %s: %w", filepath.Base(dest), err)
	}
	if err := fsutil.SyncDir(filepath.Dir(dest)); err != nil {
		return err
	}
	if filepath.Dir(part) != filepath.Dir(dest) {
		return fsutil.SyncDir(filepath.Dir(part))
	}
	return nil
}
