// Package keyshare lets several control plane instances on one PostgreSQL
// database sign with the same vendor keys. An instance's key material —
// every key file under its keys directory (snapshot signing keys, the TUF
// online keys and root spec) and the data-encryption key — is packed into
// one document, sealed with a key-encryption key (KEK) the operator gives
// every instance, and kept in the shared database. Each instance
// materialises the document into its own keys directory: at `init
// --join`, when it starts, periodically while it serves, and before a
// key command runs; a key command that changed the files pushes them
// back.
//
// The database only ever holds ciphertext: without the KEK file (which
// never enters the database) a database dump reveals no key.
package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/store/kv"
)

// Format names the document's layout; it is also the sealing's
// associated data, so a value sealed for anything else does not open.
const Format = "outpost-keyshare-v1"

// bucket and key locate the sealed document in the kv backend.
var (
	bucket = []byte("keyshare")
	docKey = []byte("v1")
)

// maxFiles and maxFileSize bound what a document may carry (a real one
// holds a handful of ~250-byte key files).
const (
	maxFiles    = 1024
	maxFileSize = 64 << 10
)

// ErrNone says the database holds no shared keys yet.
var ErrNone = errors.New("the database holds no shared keys")

// File is one file of the keys directory: its slash path relative to the
// directory and its bytes.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// Share is the key material of one control plane.
type Share struct {
	Format  string `json:"format"`
	DataKey []byte `json:"data_key"`
	// DataKeyPrevious is the data-encryption key the last rotation
	// replaced (PreviousDataKeyFile): an instance that sealed a value
	// with it before taking the new key still opens the value.
	DataKeyPrevious []byte `json:"data_key_previous,omitempty"`
	Files           []File `json:"files"`
}

// PreviousDataKeyFile is where the data-encryption key a rotation
// replaced is kept, beside dataKeyFile.
func PreviousDataKeyFile(dataKeyFile string) string { return dataKeyFile + ".previous" }

// shared reports whether a file of the keys directory belongs in a share:
// key files and JSON specs (root.json), nothing else (no temp files).
func shared(name string) bool {
	return strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".json")
}

// Pack reads the key material of keysDir and dataKeyFile.
func Pack(keysDir, dataKeyFile string) (*Share, error) {
	dk, err := os.ReadFile(dataKeyFile)
	if err != nil {
		return nil, fmt.Errorf("pack keys: read data-encryption key: %w", err)
	}
	s := &Share{Format: Format, DataKey: dk}
	if prev, err := os.ReadFile(PreviousDataKeyFile(dataKeyFile)); err == nil {
		s.DataKeyPrevious = prev
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pack keys: read previous data-encryption key: %w", err)
	}
	err = filepath.WalkDir(keysDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !shared(d.Name()) {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(keysDir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s.Files = append(s.Files, File{Path: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack keys: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("pack keys: %w", err)
	}
	return s, nil
}

// check refuses a document that could write outside the keys directory
// or is not one this version wrote.
func (s *Share) check() error {
	if s.Format != Format {
		return fmt.Errorf("format %q is not %s", s.Format, Format)
	}
	if len(s.DataKey) != 32 {
		return fmt.Errorf("data-encryption key of %d bytes, want 32", len(s.DataKey))
	}
	if s.DataKeyPrevious != nil && len(s.DataKeyPrevious) != 32 {
		return fmt.Errorf("previous data-encryption key of %d bytes, want 32", len(s.DataKeyPrevious))
	}
	if len(s.Files) > maxFiles {
		return fmt.Errorf("%d files, more than %d", len(s.Files), maxFiles)
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		p := f.Path
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") ||
			strings.Contains(p, "\\") || !shared(path.Base(p)) {
			return fmt.Errorf("file path %q is not a clean relative path of a key file", p)
		}
		if seen[p] {
			return fmt.Errorf("file %q twice", p)
		}
		seen[p] = true
		if len(f.Data) > maxFileSize {
			return fmt.Errorf("file %q is %d bytes, more than %d", p, len(f.Data), maxFileSize)
		}
	}
	return nil
}

// Digest identifies the document's content (the order of files aside).
func (s *Share) Digest() string {
	files := slices.Clone(s.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%x\n", s.Format, s.DataKey)
	if s.DataKeyPrevious != nil {
		fmt.Fprintf(h, "previous\n%x\n", s.DataKeyPrevious)
	}
	for _, f := range files {
		fmt.Fprintf(h, "%s\n%d\n", f.Path, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Seal encrypts the document with the KEK.
func (s *Share) Seal(kek *controlplane.Sealer) ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return kek.Seal(Format, data)
}

// Open decrypts and checks a sealed document.
func Open(kek *controlplane.Sealer, sealed []byte) (*Share, error) {
	data, err := kek.Open(Format, sealed)
	if err != nil {
		return nil, fmt.Errorf("open shared keys: %w: is key_encryption_key_file the same file on every instance, "+
			"and the current one if the key-encryption key was rotated (keys rekey)?", err)
	}
	var s Share
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("open shared keys: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("open shared keys: %w", err)
	}
	return &s, nil
}

// Materialise makes keysDir and dataKeyFile hold exactly the document's
// material: files that differ are replaced atomically (0600, directories
// 0700), key files the document lacks are removed. It reports whether
// anything changed.
func (s *Share) Materialise(keysDir, dataKeyFile string) (bool, error) {
	changed := false
	want := map[string]bool{}
	for _, f := range s.Files {
		p := filepath.Join(keysDir, filepath.FromSlash(f.Path))
		want[p] = true
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, f.Data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return changed, fmt.Errorf("write shared keys: %w", err)
		}
		if err := fsutil.WriteFile(p, f.Data, 0o600); err != nil {
			return changed, fmt.Errorf("write shared keys: %w", err)
		}
		changed = true
	}
	err := filepath.WalkDir(keysDir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() || !shared(d.Name()) || want[p] {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return changed, fmt.Errorf("write shared keys: %w", err)
	}
	if cur, err := os.ReadFile(dataKeyFile); err != nil || !bytes.Equal(cur, s.DataKey) {
		if err := os.MkdirAll(filepath.Dir(dataKeyFile), 0o700); err != nil {
			return changed, fmt.Errorf("write shared keys: %w", err)
		}
		if err := fsutil.WriteFile(dataKeyFile, s.DataKey, 0o600); err != nil {
			return changed, fmt.Errorf("write shared keys: data-encryption key: %w", err)
		}
		changed = true
	}
	prevFile := PreviousDataKeyFile(dataKeyFile)
	cur, err := os.ReadFile(prevFile)
	switch {
	case s.DataKeyPrevious == nil && err == nil:
		if err := os.Remove(prevFile); err != nil {
			return changed, fmt.Errorf("write shared keys: %w", err)
		}
		changed = true
	case s.DataKeyPrevious != nil && !bytes.Equal(cur, s.DataKeyPrevious):
		if err := fsutil.WriteFile(prevFile, s.DataKeyPrevious, 0o600); err != nil {
			return changed, fmt.Errorf("write shared keys: previous data-encryption key: %w", err)
		}
		changed = true
	}
	return changed, nil
}

// Get reads the sealed document from the database (ErrNone when absent).
func Get(ctx context.Context, db kv.Backend, kek *controlplane.Sealer) (*Share, error) {
	var sealed []byte
	err := db.View(ctx, func(tx kv.Tx) error {
		sealed = bytes.Clone(tx.Bucket(bucket).Get(docKey))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read shared keys: %w", err)
	}
	if sealed == nil {
		return nil, ErrNone
	}
	return Open(kek, sealed)
}

// Put seals s and stores it in the database, replacing what was there.
func Put(ctx context.Context, db kv.Backend, kek *controlplane.Sealer, s *Share) error {
	sealed, err := s.Seal(kek)
	if err != nil {
		return fmt.Errorf("store shared keys: %w", err)
	}
	if err := db.Update(ctx, func(tx kv.Tx) error { return tx.Bucket(bucket).Put(docKey, sealed) }); err != nil {
		return fmt.Errorf("store shared keys: %w", err)
	}
	return nil
}

// PutTx is Put inside a caller's read-write transaction.
func PutTx(tx kv.Tx, kek *controlplane.Sealer, s *Share) error {
	sealed, err := s.Seal(kek)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(docKey, sealed)
}

// ErrChanged says the database's keys changed since they were read.
var ErrChanged = errors.New("the shared keys changed on another instance meanwhile")

// Swap stores s only if the database still holds the document of digest
// base ("": none), in one transaction: a key change on one instance never
// silently overwrites another's (ErrChanged).
func Swap(ctx context.Context, db kv.Backend, kek *controlplane.Sealer, base string, s *Share) error {
	if err := db.Update(ctx, func(tx kv.Tx) error { return SwapTx(tx, kek, base, s) }); err != nil {
		return fmt.Errorf("store shared keys: %w", err)
	}
	return nil
}

// SwapTx is Swap inside a caller's read-write transaction, so the keys
// change with whatever else tx writes (a rotation's re-sealed values,
// its audit event).
func SwapTx(tx kv.Tx, kek *controlplane.Sealer, base string, s *Share) error {
	sealed, err := s.Seal(kek)
	if err != nil {
		return err
	}
	b := tx.Bucket(bucket)
	cur := ""
	if raw := b.Get(docKey); raw != nil {
		held, err := Open(kek, raw)
		if err != nil {
			return err
		}
		cur = held.Digest()
	}
	if cur != base {
		return ErrChanged
	}
	return b.Put(docKey, sealed)
}

// RekeyTx re-seals the document the database holds, opened with kek
// (whichever of its keys opens it), with newKEK, inside a caller's
// read-write transaction (ErrNone when it holds none). After it commits,
// only newKEK opens the document.
func RekeyTx(tx kv.Tx, kek, newKEK *controlplane.Sealer) (*Share, error) {
	b := tx.Bucket(bucket)
	raw := b.Get(docKey)
	if raw == nil {
		return nil, ErrNone
	}
	s, err := Open(kek, raw)
	if err != nil {
		return nil, err
	}
	sealed, err := s.Seal(newKEK)
	if err != nil {
		return nil, err
	}
	return s, b.Put(docKey, sealed)
}

// ErrBusy says a key command holds the keys directory's lock.
var ErrBusy = errors.New("a key command is changing the keys directory")

// Pull materialises the database's document into keysDir and
// dataKeyFile (ErrNone when the database holds none; ErrBusy, without
// waiting, while a key command holds the directory's lock). It reports
// whether anything changed.
func Pull(ctx context.Context, db kv.Backend, kek *controlplane.Sealer, keysDir, dataKeyFile string) (bool, error) {
	unlock, err := Lock(keysDir, false)
	if err != nil {
		return false, err
	}
	defer unlock()
	return PullLocked(ctx, db, kek, keysDir, dataKeyFile)
}

// PullLocked is Pull for a caller that holds the lock (Lock).
func PullLocked(ctx context.Context, db kv.Backend, kek *controlplane.Sealer, keysDir, dataKeyFile string) (bool, error) {
	s, err := Get(ctx, db, kek)
	if err != nil {
		return false, err
	}
	return s.Materialise(keysDir, dataKeyFile)
}

// Push packs keysDir and dataKeyFile and stores them in the database.
func Push(ctx context.Context, db kv.Backend, kek *controlplane.Sealer, keysDir, dataKeyFile string) (*Share, error) {
	s, err := Pack(keysDir, dataKeyFile)
	if err != nil {
		return nil, err
	}
	return s, Put(ctx, db, kek, s)
}

// maxKEKFile caps the KEK file read (hex of 32 bytes plus a newline).
const maxKEKFile = 256

// ReadKEK reads a key-encryption key file: 32 bytes, raw or as hex or
// base64 text (`openssl rand -hex 32 > kek`). The file must be readable
// by its owner only, like every private key of the control plane.
// previous, if given and not "", name key files the returned Sealer
// also opens with (it seals with file's key): the keys of a rotation in
// progress (previous_key_encryption_key_file).
func ReadKEK(file string, previous ...string) (*controlplane.Sealer, error) {
	key, err := readKEKFile(file, "key_encryption_key_file")
	if err != nil {
		return nil, err
	}
	var older [][]byte
	for _, p := range previous {
		if p == "" {
			continue
		}
		k, err := readKEKFile(p, "previous_key_encryption_key_file")
		if err != nil {
			return nil, err
		}
		older = append(older, k)
	}
	return controlplane.NewSealer(key, older...)
}

func readKEKFile(file, setting string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (make one with `openssl rand -hex 32 > FILE; chmod 600 FILE` and give every instance the same file)", setting, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s: mode %04o lets group or others read it; chmod 600 it", setting, file, perm)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxKEKFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", setting, file, err)
	}
	key, err := parseKEK(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", setting, file, err)
	}
	return key, nil
}

func parseKEK(raw []byte) ([]byte, error) {
	if len(raw) == 32 {
		return raw, nil
	}
	if len(raw) > maxKEKFile {
		return nil, fmt.Errorf("larger than %d bytes, not a key", maxKEKFile)
	}
	text := strings.TrimSpace(string(raw))
	if b, err := hex.DecodeString(text); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want 32 bytes, raw or as hex or base64 text (got %d bytes): make one with `openssl rand -hex 32`", len(raw))
}
