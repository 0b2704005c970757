package cache_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/outpost/outpost/internal/cache"
)

func ingest(t *testing.T, c *cache.Cache, n int) ([]byte, string) {
	t.Helper()
	data, sha := blobOf(n)
	if err := c.Ingest(context.Background(), sha, int64(n), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return data, sha
}

func TestFiles_ReuseAndBound(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, s1 := ingest(t, c, 10<<10)
	_, s2 := ingest(t, c, 20<<10)
	files := cache.NewFiles(c, 2)

	t.Run("ranges copied right, handle reused", func(t *testing.T) {
		f, err := files.Acquire(s1, int64(len(d1)))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range [][2]int64{{0, 10}, {10, 100}, {5, 1}, {0, int64(len(d1))}, {int64(len(d1)) - 3, 3}} {
			var b bytes.Buffer
			n, err := f.CopyRange(&b, r[0], r[1])
			if err != nil || n != r[1] || !bytes.Equal(b.Bytes(), d1[r[0]:r[0]+r[1]]) {
				t.Errorf("CopyRange(%d, %d) = %d, %v; bytes right: %v", r[0], r[1], n, err, bytes.Equal(b.Bytes(), d1[r[0]:r[0]+r[1]]))
			}
		}
		if _, err := f.CopyRange(&bytes.Buffer{}, 1, int64(len(d1))); err == nil {
			t.Error("CopyRange past the end: no error")
		}
		files.Release(f)
		g, err := files.Acquire(s1, int64(len(d1)))
		if err != nil {
			t.Fatal(err)
		}
		if g != f {
			t.Error("the released handle was not reused")
		}
		files.Release(g)
	})
	t.Run("bound", func(t *testing.T) {
		var held []*cache.File
		for range 4 {
			f, err := files.Acquire(s2, 20<<10)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, f)
		}
		if got := files.Open(); got != 2 {
			t.Errorf("open handles = %d, want the bound 2", got)
		}
		for _, f := range held {
			files.Release(f)
		}
		if got := files.Open(); got > 2 {
			t.Errorf("open after release = %d, want ≤ 2", got)
		}
	})
	t.Run("wrong size and missing", func(t *testing.T) {
		if _, err := files.Acquire(s1, 5); !errors.Is(err, cache.ErrSize) {
			t.Errorf("wrong size: err = %v, want ErrSize", err)
		}
		_, missing := blobOf(3)
		if _, err := files.Acquire(missing, 3); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing: err = %v, want not exist", err)
		}
		if _, err := files.Acquire("../x", 3); err == nil {
			t.Error("invalid sha: no error")
		}
	})
	t.Run("reset closes idle and in-use handles", func(t *testing.T) {
		f, err := files.Acquire(s1, int64(len(d1)))
		if err != nil {
			t.Fatal(err)
		}
		files.Reset()
		files.Release(f)
		if got := files.Open(); got != 0 {
			t.Errorf("open after reset = %d, want 0", got)
		}
		g, err := files.Acquire(s1, int64(len(d1)))
		if err != nil {
			t.Fatal(err)
		}
		if g == f {
			t.Error("a handle from before the reset was reused")
		}
		files.Release(g)
	})
	t.Run("gc closes handles of removed blobs", func(t *testing.T) {
		f, err := files.Acquire(s1, int64(len(d1)))
		if err != nil {
			t.Fatal(err)
		}
		files.Release(f)
		if _, err := c.GC(context.Background(), map[string]bool{s2: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := files.Acquire(s1, int64(len(d1))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after GC: err = %v, want not exist", err)
		}
	})
}

func TestFiles_Concurrent(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, sha := ingest(t, c, 64<<10)
	files := cache.NewFiles(c, 3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				f, err := files.Acquire(sha, int64(len(data)))
				if err != nil {
					t.Error(err)
					return
				}
				off := int64((g*131 + i*977) % len(data))
				n := min(int64(i*37%4096), int64(len(data))-off)
				var b bytes.Buffer
				if _, err := f.CopyRange(&b, off, n); err != nil || !bytes.Equal(b.Bytes(), data[off:off+n]) {
					t.Errorf("goroutine %d copy %d+%d: %v, bytes right: %v", g, off, n, err, bytes.Equal(b.Bytes(), data[off:off+n]))
				}
				files.Release(f)
				if i%50 == 0 {
					files.Reset()
				}
			}
		}()
	}
	wg.Wait()
	if got := files.Open(); got > 3 {
		t.Errorf("open handles = %d, want ≤ 3", got)
	}
}

// TestFiles_EvictsLeastRecentlyUsed: past the bound, the idle handle
// released longest ago is the one closed; the others stay reusable.
func TestFiles_EvictsLeastRecentlyUsed(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, s1 := ingest(t, c, 1<<10)
	d2, s2 := ingest(t, c, 2<<10)
	d3, s3 := ingest(t, c, 3<<10)
	files := cache.NewFiles(c, 2)
	acquire := func(sha string, data []byte) *cache.File {
		t.Helper()
		f, err := files.Acquire(sha, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f1 := acquire(s1, d1)
	files.Release(f1)
	f2 := acquire(s2, d2)
	files.Release(f2)
	// s1 is used again, so s2 is now the least recently released.
	if g := acquire(s1, d1); g != f1 {
		t.Fatal("the idle handle of s1 was not reused")
	}
	files.Release(f1)
	f3 := acquire(s3, d3) // over the bound: closes s2's idle handle
	files.Release(f3)
	tests := []struct {
		name      string
		sha       string
		data      []byte
		old       *cache.File
		wantReuse bool
	}{
		{"most recently released kept", s3, d3, f3, true},
		{"used again kept", s1, d1, f1, true},
		{"least recently released closed", s2, d2, f2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := acquire(tt.sha, tt.data)
			defer files.Release(g)
			if got := g == tt.old; got != tt.wantReuse {
				t.Errorf("handle reused = %v, want %v", got, tt.wantReuse)
			}
			var b bytes.Buffer
			if _, err := g.CopyRange(&b, 0, int64(len(tt.data))); err != nil || !bytes.Equal(b.Bytes(), tt.data) {
				t.Errorf("CopyRange: %v, bytes right: %v", err, bytes.Equal(b.Bytes(), tt.data))
			}
		})
	}
	if got := files.Open(); got > 2 {
		t.Errorf("open handles = %d, want ≤ 2", got)
	}
}

// TestFile_Section: a section reads its bytes by pread and leaves the
// handle's offset: CopyRange goes on from where it stopped without a
// seek and still copies the right bytes.
func TestFile_Section(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, sha := ingest(t, c, 8<<10)
	files := cache.NewFiles(c, 0)
	f, err := files.Acquire(sha, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer files.Release(f)
	tests := []struct {
		name    string
		off, n  int64
		wantErr bool
	}{
		{"middle", 100, 1000, false},
		{"whole", 0, int64(len(data)), false},
		{"empty at the end", int64(len(data)), 0, false},
		{"past the end", int64(len(data)) - 5, 10, true},
		{"negative offset", -1, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The handle's offset is now 10, where the next copy starts.
			if _, err := f.CopyRange(&bytes.Buffer{}, 0, 10); err != nil {
				t.Fatal(err)
			}
			sr, err := f.Section(tt.off, tt.n)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Section(%d, %d) error = %v, want error %v", tt.off, tt.n, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var b bytes.Buffer
			if _, err := b.ReadFrom(sr); err != nil || !bytes.Equal(b.Bytes(), data[tt.off:tt.off+tt.n]) {
				t.Errorf("read: %v, bytes right: %v", err, bytes.Equal(b.Bytes(), data[tt.off:tt.off+tt.n]))
			}
			var c bytes.Buffer
			if _, err := f.CopyRange(&c, 10, 20); err != nil || !bytes.Equal(c.Bytes(), data[10:30]) {
				t.Errorf("CopyRange after the section: %v, bytes right: %v", err, bytes.Equal(c.Bytes(), data[10:30]))
			}
		})
	}
}
