package tuf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/outpost/outpost/internal/fsutil"
)

// ErrNotFound is returned by a Fetcher or a Store for a file it does not
// hold.
var ErrNotFound = errors.New("not found")

// Fetcher reads a repository's files: path is relative to the
// repository's base ("metadata/3.snapshot.json", "targets/docs/<sha256>.policies.json").
// It returns ErrNotFound (wrapped) when the file does not exist. maxBytes
// is the most the caller will read; a fetcher may refuse larger files
// early, and the client refuses them anyway.
type Fetcher interface {
	Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error)
}

// Store keeps a client's trusted metadata and documents between runs.
// Names are slash-separated relative paths ("metadata/root.json",
// "targets/docs/policies.json"). The client writes only what it has
// verified.
type Store interface {
	Get(ctx context.Context, name string) ([]byte, error) // ErrNotFound when absent
	Put(ctx context.Context, name string, data []byte) error
}

// MemStore is a Store in memory (tests, one-shot tools).
type MemStore struct {
	mu    sync.Mutex
	files map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{files: map[string][]byte{}} }

// Get implements Store.
func (s *MemStore) Get(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return b, nil
}

// Put implements Store.
func (s *MemStore) Put(_ context.Context, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[name] = append([]byte(nil), data...)
	return nil
}

// DirStore is a Store in a directory: files 0600 written atomically,
// directories 0700.
type DirStore struct{ Dir string }

// Get implements Store.
func (s DirStore) Get(_ context.Context, name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// Put implements Store.
func (s DirStore) Put(_ context.Context, name string, data []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	if err := fsutil.WriteFile(p, data, 0o600); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	return nil
}

func (s DirStore) path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, filepath.FromSlash(name)), nil
}

// checkName refuses a name that could leave its directory or is not a
// plain slash-separated path of [A-Za-z0-9._-] segments.
func checkName(name string) error {
	if name == "" || len(name) > 512 {
		return fmt.Errorf("name %q: empty or too long", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("name %q: bad segment %q", name, seg)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("name %q: character %q", name, c)
			}
		}
	}
	return nil
}

// FSFetcher reads a published repository from a file system: a
// directory the control plane publishes to, an unpacked bundle, an
// inbox.
type FSFetcher struct{ FS fs.FS }

// Fetch implements Fetcher; it refuses a file larger than maxBytes
// before reading it.
func (f FSFetcher) Fetch(_ context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if err := checkName(path); err != nil {
		return nil, err
	}
	file, err := f.FS.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if st, err := file.Stat(); err == nil && st.Size() > maxBytes {
		_ = file.Close()
		return nil, fmt.Errorf("%s: %d bytes, at most %d: %w", path, st.Size(), maxBytes, ErrTooLarge)
	}
	return file, nil
}

// CheckPath refuses a repository path that could leave its directory or
// is not a plain slash-separated path of [A-Za-z0-9._-] segments (at most
// 512 bytes): the names the layout uses, and no others.
func CheckPath(path string) error { return checkName(path) }
