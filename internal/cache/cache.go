// Package cache is the mirror's content-addressed blob directory:
// committed blobs at <dir>/blobs/sha256/ab/abcdef…, resumable partial
// downloads at <dir>/blobs/tmp/<sha>.part and corrupt blobs moved to
// <dir>/blobs/quarantine/. A blob is only ever visible under its final name
// once its size and sha256 have been checked and it has been fsynced.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/fsutil"
)

// Errors of Fetch and Ingest: those of the one download (internal/fetch).
var (
	// ErrMismatch means the bytes did not hash to the expected sha256 (or,
	// for Ingest, ended short of size); the partial file has been deleted.
	ErrMismatch = fetch.ErrMismatch
	// ErrTooLarge means the source sent more than the expected size; the
	// partial file has been deleted.
	ErrTooLarge = fetch.ErrTooLarge
	// ErrShort means the source stopped before size bytes; the partial file
	// is kept so the next attempt resumes from its end.
	ErrShort = fetch.ErrShort
)

// ValidSHA reports whether s is a lowercase hex sha256.
func ValidSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Cache is a blob directory. Its methods are safe for concurrent use as
// long as no two goroutines fetch the same sha at once.
type Cache struct {
	root string // <dir>/blobs

	mu    sync.Mutex
	files []*Files // pools of open handles to reset on every change
}

// changed resets every pool of open handles (NewFiles): a blob was
// committed, removed or quarantined.
func (c *Cache) changed() {
	c.mu.Lock()
	files := c.files
	c.mu.Unlock()
	for _, fs := range files {
		fs.Reset()
	}
}

// Open creates the directory layout under dir and sweeps stray temp files
// (anything in tmp/ that is not a resumable <sha>.part).
func Open(dir string) (*Cache, error) {
	c := &Cache{root: filepath.Join(dir, "blobs")}
	for _, d := range []string{c.shaDir(), c.tmpDir(), c.quarantineDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
	}
	if _, err := c.Sweep(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cache) shaDir() string { return filepath.Join(c.root, "sha256") }
func (c *Cache) tmpDir() string { return filepath.Join(c.root, "tmp") }

// TempDir is the cache's directory of temporary files (on the cache's
// file system; Sweep empties it of everything but resumable parts).
func (c *Cache) TempDir() string       { return c.tmpDir() }
func (c *Cache) quarantineDir() string { return filepath.Join(c.root, "quarantine") }
func (c *Cache) partPath(sha string) string {
	return filepath.Join(c.tmpDir(), sha+".part")
}

// Path is where the committed blob sha lives (whether or not it exists).
func (c *Cache) Path(sha string) string {
	return filepath.Join(c.shaDir(), sha[:2], sha)
}

// Sweep removes temp files that are not resumable partial downloads.
func (c *Cache) Sweep() (int, error) {
	ents, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return 0, fmt.Errorf("sweep temp files: %w", err)
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if sha, ok := strings.CutSuffix(name, ".part"); ok && ValidSHA(sha) && e.Type().IsRegular() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.tmpDir(), name)); err != nil {
			return n, fmt.Errorf("sweep %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

// Has reports whether the blob is committed with the given size. It does
// not re-hash: committed blobs were hashed on the way in.
func (c *Cache) Has(sha string, size int64) bool {
	if !ValidSHA(sha) {
		return false
	}
	fi, err := os.Stat(c.Path(sha))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// Open opens a committed blob for reading.
func (c *Cache) Open(sha string) (*os.File, error) {
	if !ValidSHA(sha) {
		return nil, fmt.Errorf("open blob: invalid sha256 %q", sha)
	}
	return os.Open(c.Path(sha))
}

// PartialSize is how many bytes of sha a previous attempt left behind.
func (c *Cache) PartialSize(sha string) int64 {
	fi, err := os.Stat(c.partPath(sha))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Fetch makes sure blob sha of size bytes is committed, downloading what
// is missing through open (fetch.Resume: a partial file left by an earlier
// attempt is re-hashed and continued). It returns the bytes read from the
// source. A verification failure (fetch.Verification) deletes the partial
// file; a transfer failure keeps it.
func (c *Cache) Fetch(ctx context.Context, sha string, size int64, open fetch.Opener) (int64, error) {
	if !ValidSHA(sha) {
		return 0, fmt.Errorf("fetch blob: invalid sha256 %q", sha)
	}
	if c.Has(sha, size) {
		return 0, nil
	}
	part := c.partPath(sha)
	n, err := fetch.Resume(ctx, part, fetch.Want{SHA256: sha, Size: size}, open, nil)
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", sha, err)
	}
	return n, c.commit(part, sha)
}

// Ingest writes r (exactly size bytes) as blob sha, without resume: the
// bundle import path. The bytes are hashed on the way to disk.
func (c *Cache) Ingest(ctx context.Context, sha string, size int64, r io.Reader) error {
	if !ValidSHA(sha) {
		return fmt.Errorf("ingest blob: invalid sha256 %q", sha)
	}
	f, err := os.CreateTemp(c.tmpDir(), "ingest-*.tmp")
	if err != nil {
		return fmt.Errorf("ingest %s: %w", sha, err)
	}
	tmp := f.Name()
	f.Close()
	once := func(context.Context, int64) (*fetch.Body, error) {
		return &fetch.Body{ReadCloser: io.NopCloser(r), Total: -1}, nil
	}
	if _, err = fetch.Resume(ctx, tmp, fetch.Want{SHA256: sha, Size: size}, once, nil); err == nil {
		err = c.commit(tmp, sha)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, fetch.ErrShort) {
			err = fmt.Errorf("%w: %w", ErrMismatch, err)
		}
		return fmt.Errorf("ingest blob %s: %w", sha, err)
	}
	return nil
}

// commit moves a verified, fsynced temporary file to blob sha's name.
func (c *Cache) commit(tmp, sha string) error {
	dst := c.Path(sha)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("commit %s: %w", sha, err)
	}
	if err := fsutil.SyncDir(c.shaDir()); err != nil {
		return err
	}
	defer c.changed()
	return fetch.Commit(tmp, dst)
}

// Blob is one committed blob as found on disk.
type Blob struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size_bytes"`
}

// Walk calls fn for every committed blob. Files whose names are not a
// sha256 under the right prefix are skipped.
func (c *Cache) Walk(ctx context.Context, fn func(b Blob) error) error {
	return filepath.WalkDir(c.shaDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !ValidSHA(d.Name()) || filepath.Base(filepath.Dir(path)) != d.Name()[:2] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(Blob{SHA256: d.Name(), Size: fi.Size()})
	})
}

// Usage is the number and total size of committed blobs.
func (c *Cache) Usage(ctx context.Context) (n int, bytes int64, err error) {
	err = c.Walk(ctx, func(b Blob) error {
		n++
		bytes += b.Size
		return nil
	})
	return n, bytes, err
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Checked     int      `json:"checked"`
	Bytes       int64    `json:"bytes"`
	Quarantined []string `json:"quarantined"`
}

// Verify re-hashes every committed blob and moves those whose content no
// longer matches their name to quarantine/.
func (c *Cache) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	var bad []string
	err := c.Walk(ctx, func(b Blob) error {
		f, err := os.Open(c.Path(b.SHA256))
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, ctxReader{ctx, f})
		f.Close()
		if err != nil {
			return fmt.Errorf("hash %s: %w", b.SHA256, err)
		}
		rep.Checked++
		rep.Bytes += n
		if hex.EncodeToString(h.Sum(nil)) != b.SHA256 {
			bad = append(bad, b.SHA256)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify cache: %w", err)
	}
	if len(bad) > 0 {
		c.changed()
		defer c.changed()
	}
	for _, sha := range bad {
		if err := os.Rename(c.Path(sha), filepath.Join(c.quarantineDir(), sha)); err != nil {
			return rep, fmt.Errorf("quarantine %s: %w", sha, err)
		}
		rep.Quarantined = append(rep.Quarantined, sha)
	}
	return rep, nil
}

// GCReport is what GC removed.
type GCReport struct {
	Removed int   `json:"removed"`
	Bytes   int64 `json:"bytes"`
	Kept    int   `json:"kept"`
}

// GC removes committed blobs whose sha256 is not in keep. Partial
// downloads are left alone so an interrupted sync still resumes.
func (c *Cache) GC(ctx context.Context, keep map[string]bool) (GCReport, error) {
	var rep GCReport
	var drop []Blob
	err := c.Walk(ctx, func(b Blob) error {
		if keep[b.SHA256] {
			rep.Kept++
		} else {
			drop = append(drop, b)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	if len(drop) > 0 {
		c.changed()
		defer c.changed()
	}
	for _, b := range drop {
		if err := os.Remove(c.Path(b.SHA256)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, fmt.Errorf("gc %s: %w", b.SHA256, err)
		}
		rep.Removed++
		rep.Bytes += b.Size
	}
	// Partial downloads are kept so a sync resumes, but one untouched for
	// a week, of a blob no retained snapshot wants, is a snapshot that
	// never committed.
	ents, err := os.ReadDir(c.tmpDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		sha, ok := strings.CutSuffix(e.Name(), ".part")
		if !ok || keep[sha] {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < StalePart {
			continue
		}
		if err := os.Remove(filepath.Join(c.tmpDir(), e.Name())); err == nil {
			rep.Removed++
			rep.Bytes += info.Size()
		}
	}
	return rep, nil
}

// StalePart is how long GC keeps an untouched partial download of a blob
// no retained snapshot references.
var StalePart = 7 * 24 * time.Hour

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// Quarantined is the number of blobs moved aside by Verify.
func (c *Cache) Quarantined() int {
	ents, err := os.ReadDir(c.quarantineDir())
	if err != nil {
		return 0
	}
	return len(ents)
}
