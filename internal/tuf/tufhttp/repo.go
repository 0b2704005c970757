package tufhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/outpost/outpost/internal/tuf"
)

// MemRepo is a Repo held in memory, by repository path
// ("metadata/…", "targets/…"): the builder's output, in tests.
type MemRepo struct {
	mu    sync.RWMutex
	files map[string][]byte
}

// NewMemRepo returns an empty MemRepo.
func NewMemRepo() *MemRepo { return &MemRepo{files: map[string][]byte{}} }

// Publish adds files (tuf.File paths are repository paths).
func (m *MemRepo) Publish(files []tuf.File) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range files {
		m.files[f.Path] = f.Data
	}
}

// Set puts data at a repository path (nil removes it).
func (m *MemRepo) Set(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if data == nil {
		delete(m.files, path)
		return
	}
	m.files[path] = data
}

// Get returns the bytes at a repository path, nil if none.
func (m *MemRepo) Get(path string) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.files[path]
}

// Metadata implements Repo.
func (m *MemRepo) Metadata(_ context.Context, name string) ([]byte, error) {
	b := m.Get(tuf.MetadataDir + "/" + name)
	if b == nil {
		return nil, fmt.Errorf("%s: %w", name, tuf.ErrNotFound)
	}
	return b, nil
}

// Target implements Repo.
func (m *MemRepo) Target(_ context.Context, path, sum string) (io.ReadSeekCloser, error) {
	b := m.Get(tuf.TargetPath(path, sum))
	if b == nil {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// DirRepo is a Repo over a published directory (the layout of
// docs/metadata.md under one directory). Files are opened through an
// os.Root, so no name leaves the directory, whatever the caller checked.
type DirRepo struct {
	root        *os.Root
	maxMetadata int64
}

// OpenDir opens a DirRepo on dir. Metadata files above maxMetadata bytes
// are refused (0: 32 MiB).
func OpenDir(dir string, maxMetadata int64) (*DirRepo, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	if maxMetadata <= 0 {
		maxMetadata = 32 << 20
	}
	return &DirRepo{root: r, maxMetadata: maxMetadata}, nil
}

// Close releases the directory.
func (d *DirRepo) Close() error { return d.root.Close() }

func (d *DirRepo) open(name string) (*os.File, error) {
	if err := tuf.CheckPath(name); err != nil {
		return nil, fmt.Errorf("%w: %w", tuf.ErrNotFound, err)
	}
	f, err := d.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, tuf.ErrNotFound)
	}
	if err != nil {
		// A symlink leading out of the tree, a permission: the name is
		// not served, and a client sees the same 404 as for a missing one.
		return nil, fmt.Errorf("open %s: %w: %w", name, tuf.ErrNotFound, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%s: not a regular file: %w", name, tuf.ErrNotFound)
	}
	return f, nil
}

// Metadata implements Repo.
func (d *DirRepo) Metadata(_ context.Context, name string) ([]byte, error) {
	f, err := d.open(tuf.MetadataDir + "/" + name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, d.maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > d.maxMetadata {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", name, d.maxMetadata, tuf.ErrTooLarge)
	}
	return b, nil
}

// Target implements Repo; it returns the *os.File.
func (d *DirRepo) Target(_ context.Context, path, sum string) (io.ReadSeekCloser, error) {
	return d.open(tuf.TargetPath(path, sum))
}

// Paths returns every repository path held (tests publish them
// elsewhere).
func (m *MemRepo) Paths() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.files))
	for p := range m.files {
		out = append(out, p)
	}
	return out
}
