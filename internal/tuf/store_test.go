package tuf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// TestFSFetcher_Repository publishes a repository to a directory and
// has a client update from it (the shape of a bundle or an inbox).
func TestFSFetcher_Repository(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	dir := t.TempDir()
	write := func(files []File) {
		for _, x := range files {
			p := filepath.Join(dir, filepath.FromSlash(x.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, x.Data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write([]File{{Path: MetadataPath("root", 1), Data: f.rootData}})
	m := view(2, 20, 1)
	write(f.build(m))
	s := NewMemStore()
	if err := Init(ctx, s, f.tenantID, f.rootData); err != nil {
		t.Fatal(err)
	}
	c := NewClient(f.tenantID, FSFetcher{FS: os.DirFS(dir)}, s, ClientOptions{Now: func() time.Time { return f.now }})
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	addRelease(m, 1, 1)
	write(f.build(m))
	ch, err := c.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Targets) != 1 {
		t.Fatalf("changed targets %d, want 1", len(ch.Targets))
	}
	for _, tc := range []struct {
		name string
		path string
		max  int64
		want error
	}{
		{"missing", "metadata/99.root.json", 1 << 20, ErrNotFound},
		{"over the cap", "metadata/timestamp.json", 10, ErrTooLarge},
		{"escaping the directory", "../x", 1 << 20, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FSFetcher{FS: os.DirFS(dir)}.Fetch(ctx, tc.path, tc.max)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDirStore_Names(t *testing.T) {
	s := DirStore{Dir: t.TempDir()}
	for _, name := range []string{"../escape", "/abs", "a//b", "a/./b", "a b", ""} {
		t.Run(name, func(t *testing.T) {
			if err := s.Put(context.Background(), name, []byte("x")); err == nil {
				t.Fatalf("Put(%q) accepted", name)
			}
		})
	}
	t.Run("round trip, mode 0600", func(t *testing.T) {
		if err := s.Put(context.Background(), "metadata/root.json", []byte("x")); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(s.Dir, "metadata", "root.json"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, %v", st.Mode(), err)
		}
		if b, err := s.Get(context.Background(), "metadata/root.json"); err != nil || string(b) != "x" {
			t.Fatalf("got %q, %v", b, err)
		}
		if _, err := s.Get(context.Background(), "metadata/none.json"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: got %v", err)
		}
	})
}
