package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/fetch"
)

func blobOf(n int) ([]byte, string) {
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

// endless is a source that never stops, counting what was read.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) { e.n += int64(len(p)); return len(p), nil }
func (e *endless) Close() error               { return nil }

// body is a source's answer from off, announcing no total.
func body(rc io.ReadCloser, off int64) (*fetch.Body, error) {
	return &fetch.Body{ReadCloser: rc, Start: off, Total: -1}, nil
}

func TestCache_Fetch(t *testing.T) {
	ctx := context.Background()
	data, sha := blobOf(100 << 10)
	size := int64(len(data))

	t.Run("stops at one byte over size_bytes", func(t *testing.T) {
		c, _ := cache.Open(t.TempDir())
		src := &endless{}
		_, err := c.Fetch(ctx, sha, size, func(context.Context, int64) (*fetch.Body, error) { return body(src, 0) })
		if !errors.Is(err, cache.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if src.n != size+1 {
			t.Errorf("read %d bytes, want exactly %d", src.n, size+1)
		}
		if c.PartialSize(sha) != 0 || c.Has(sha, size) {
			t.Error("oversized download left something behind")
		}
	})
	t.Run("resumes from the partial file", func(t *testing.T) {
		c, _ := cache.Open(t.TempDir())
		_, err := c.Fetch(ctx, sha, size, func(context.Context, int64) (*fetch.Body, error) {
			return body(io.NopCloser(bytes.NewReader(data[:4000])), 0)
		})
		if !errors.Is(err, cache.ErrShort) {
			t.Fatalf("err = %v, want ErrShort", err)
		}
		var gotOffset int64 = -1
		n, err := c.Fetch(ctx, sha, size, func(_ context.Context, off int64) (*fetch.Body, error) {
			gotOffset = off
			return body(io.NopCloser(bytes.NewReader(data[off:])), off)
		})
		if err != nil || gotOffset != 4000 || n != size-4000 {
			t.Fatalf("resume: offset %d, read %d, err %v; want offset 4000, %d", gotOffset, n, err, size-4000)
		}
		f, _ := c.Open(sha)
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, data) {
			t.Error("committed blob differs")
		}
	})
	t.Run("corrupt partial prefix is caught by the hash", func(t *testing.T) {
		dir := t.TempDir()
		c, _ := cache.Open(dir)
		bad := append([]byte(nil), data[:4000]...)
		bad[0] ^= 1
		os.WriteFile(filepath.Join(dir, "blobs", "tmp", sha+".part"), bad, 0o644)
		_, err := c.Fetch(ctx, sha, size, func(_ context.Context, off int64) (*fetch.Body, error) {
			return body(io.NopCloser(bytes.NewReader(data[off:])), off)
		})
		if !errors.Is(err, cache.ErrMismatch) || c.Has(sha, size) || c.PartialSize(sha) != 0 {
			t.Fatalf("err = %v, has %v; want ErrMismatch and nothing kept", err, c.Has(sha, size))
		}
	})
}

func TestCache_SweepVerifyGC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, _ := cache.Open(dir)
	a, shaA := blobOf(1000)
	b, shaB := blobOf(2000)
	for _, x := range []struct {
		d   []byte
		sha string
	}{{a, shaA}, {b, shaB}} {
		if err := c.Ingest(ctx, x.sha, int64(len(x.d)), bytes.NewReader(x.d)); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "blobs", "tmp")
	os.WriteFile(filepath.Join(tmp, "ingest-1.tmp"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(tmp, shaA+".part"), []byte("x"), 0o644)
	if _, err := cache.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "ingest-1.tmp")); !os.IsNotExist(err) {
		t.Error("stray temp file survived the sweep")
	}
	if _, err := os.Stat(filepath.Join(tmp, shaA+".part")); err != nil {
		t.Error("resumable .part file was swept")
	}

	// Flip a byte on disk: verify quarantines it.
	p := c.Path(shaB)
	raw, _ := os.ReadFile(p)
	raw[5] ^= 1
	os.WriteFile(p, raw, 0o644)
	rep, err := c.Verify(ctx)
	if err != nil || rep.Checked != 2 || len(rep.Quarantined) != 1 || rep.Quarantined[0] != shaB {
		t.Fatalf("verify = %+v, %v; want %s quarantined", rep, err, shaB)
	}
	if c.Has(shaB, 2000) || c.Quarantined() != 1 {
		t.Error("corrupt blob still in place")
	}

	gc, err := c.GC(ctx, map[string]bool{})
	if err != nil || gc.Removed != 1 || c.Has(shaA, 1000) {
		t.Fatalf("gc = %+v, %v", gc, err)
	}

	t.Run("stale partial downloads", func(t *testing.T) {
		_, shaWanted := blobOf(10)
		_, shaStale := blobOf(11)
		_, shaFresh := blobOf(12)
		old := time.Now().Add(-cache.StalePart - time.Hour)
		for _, sha := range []string{shaWanted, shaStale, shaFresh} {
			os.WriteFile(filepath.Join(tmp, sha+".part"), []byte("partial"), 0o644)
		}
		os.Chtimes(filepath.Join(tmp, shaWanted+".part"), old, old)
		os.Chtimes(filepath.Join(tmp, shaStale+".part"), old, old)
		if _, err := c.GC(ctx, map[string]bool{shaWanted: true}); err != nil {
			t.Fatal(err)
		}
		for sha, want := range map[string]bool{shaWanted: true, shaStale: false, shaFresh: true} {
			_, err := os.Stat(filepath.Join(tmp, sha+".part"))
			if got := err == nil; got != want {
				t.Errorf("partial %s kept = %v, want %v", sha[:8], got, want)
			}
		}
	})
}

func TestCache_IngestRejects(t *testing.T) {
	ctx := context.Background()
	data, sha := blobOf(5000)
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"wrong bytes", append([]byte{data[0] ^ 1}, data[1:]...), cache.ErrMismatch},
		{"too long", append(append([]byte(nil), data...), 0), cache.ErrTooLarge},
		{"too short", data[:4999], cache.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, _ := cache.Open(dir)
			err := c.Ingest(ctx, sha, 5000, bytes.NewReader(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			left, _ := os.ReadDir(filepath.Join(dir, "blobs", "tmp"))
			if c.Has(sha, 5000) || len(left) != 0 {
				t.Errorf("left behind: has %v, %d temp files", c.Has(sha, 5000), len(left))
			}
		})
	}
}
