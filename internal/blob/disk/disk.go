// Package disk is the default blob store: one file per key under a
// directory, written atomically (temp file, fsync, rename, fsync dir).
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/fsutil"
)

// tmpDir holds in-flight Puts. Keys cannot start with ".", so it never
// collides with an object.
const tmpDir = ".tmp"

const copyBuf = 256 << 10

// Store keeps objects as files under a directory. One process owns a
// directory at a time: New removes leftover temp files.
type Store struct {
	dir string
	tmp string
}

var _ blob.Store = (*Store)(nil)

// New opens (creating if needed) the store rooted at dir and sweeps temp
// files left by a crash.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("disk blob store: empty dir")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("disk blob store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("disk blob store: %w", err)
	}
	tmp := filepath.Join(abs, tmpDir)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("disk blob store: sweep temp files: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("disk blob store: %w", err)
	}
	return &Store{dir: abs, tmp: tmp}, nil
}

// Dir returns the root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(key string) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	// ValidateKey rules out "..", absolute paths and odd bytes, so the
	// join stays under dir.
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put implements blob.Store. A full device or quota fails with an
// insufficient_storage domain error (blob.NoSpace).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, e blob.Expect) (blob.Info, error) {
	info, err := s.put(ctx, key, r, e)
	return info, blob.NoSpace(s.dir, err)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, e blob.Expect) (blob.Info, error) {
	dst, err := s.path(key)
	if err != nil {
		return blob.Info{}, err
	}
	m, err := blob.NewMeter(ctx, r, e)
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()

	// Hide File.ReadFrom so our larger buffer is used.
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, m, make([]byte, copyBuf)); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	size, sum, err := m.Finish()
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: sync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: close: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	parent := filepath.Dir(dst)
	if err := mkdirAllSync(parent); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	done = true
	if err := fsutil.SyncDir(parent); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	info := blob.Info{Key: key, Size: size, SHA256: sum, ModTime: time.Now()}
	if fi, err := os.Stat(dst); err == nil {
		info.ModTime = fi.ModTime()
	}
	return info, nil
}

// Open implements blob.Store. The object is an *os.File, so net/http can
// serve it with sendfile.
func (s *Store) Open(ctx context.Context, key string) (blob.Object, blob.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("open %s: %w", key, mapErr(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blob.Info{}, fmt.Errorf("open %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, blob.Info{}, fmt.Errorf("open %s: %w", key, blob.ErrNotFound)
	}
	return f, blob.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Stat implements blob.Store. SHA256 is left empty: computing it would
// mean reading the whole file.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, mapErr(err))
	}
	if !fi.Mode().IsRegular() {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, blob.ErrNotFound)
	}
	return blob.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(mapErr(err), blob.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		// A directory is a key prefix, not an object.
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PresignGet implements blob.Store: a directory cannot presign.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return "", blob.ErrNotSupported
}

// mapErr turns "no such file" (including a path through a regular file)
// into blob.ErrNotFound.
func mapErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return blob.ErrNotFound
	}
	return err
}

// mkdirAllSync creates dir and its missing parents, fsyncing each new
// directory's parent so the new entries survive a crash.
func mkdirAllSync(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return fsutil.SyncDir(parent)
}

// List implements blob.Store: a walk of the directory, skipping temp files.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	return filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if path == s.tmp {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || blob.ValidateKey(key) != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		return fn(blob.Info{Key: key, Size: info.Size(), ModTime: info.ModTime()})
	})
}
