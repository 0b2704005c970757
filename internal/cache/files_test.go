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
