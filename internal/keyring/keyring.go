// Package keyring keeps the vendor's ed25519 snapshot signing keys as
// files in a directory (default <data-dir>/keys), one JSON document per
// key, mode 0600 in a 0700 directory. Every active key signs, so keys
// rotate by overlap: generate a new key, publish it to mirrors' trusted
// keys, then retire the old one.
package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/snapshot"
)

// Key statuses.
const (
	StatusActive  = "active"
	StatusRetired = "retired"
)

// ext is the file name suffix of key files: <key_id>.key.
const ext = ".key"

// maxFileSize caps a key file read: a real one is ~250 bytes.
const maxFileSize = 4 << 10

// Key is one signing key.
type Key struct {
	KeyID     string
	Public    ed25519.PublicKey
	Status    string
	CreatedAt time.Time
	private   ed25519.PrivateKey
}

// Signer returns the key as a snapshot signer.
func (k *Key) Signer() snapshot.Signer {
	return snapshot.Signer{KeyID: k.KeyID, Key: k.private}
}

// Active returns the active keys of keys.
func Active(keys []*Key) []*Key {
	var out []*Key
	for _, k := range keys {
		if k.Status == StatusActive {
			out = append(out, k)
		}
	}
	return out
}

// Signers returns a signer for every active key of keys.
func Signers(keys []*Key) []snapshot.Signer {
	var out []snapshot.Signer
	for _, k := range Active(keys) {
		out = append(out, k.Signer())
	}
	return out
}

// file is the on-disk form of a key.
type file struct {
	KeyID      string    `json:"key_id"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	PrivateKey []byte    `json:"private_key"` // base64 of the 64-byte ed25519 private key
}

// Generate creates a new active key in dir (created 0700 if missing) and
// writes it atomically with mode 0600.
func Generate(dir string) (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k := &Key{KeyID: snapshot.KeyID(pub), Public: pub, Status: StatusActive, CreatedAt: time.Now().UTC().Truncate(time.Second), private: priv}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("generate key: create key directory: %w", err)
	}
	// An existing directory may be looser; it holds private keys.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := write(dir, k); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// Load reads every key file in dir, oldest first. A missing directory
// holds no keys. A key file readable by group or others, or malformed,
// is an error naming the file: a signing key must never be used from an
// exposed or damaged file.
func Load(dir string) ([]*Key, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	var keys []*Key
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		k, err := load(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("load keys: %w", err)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID)
	})
	return keys, nil
}

// Retire marks a key retired: it stops signing but stays listed (mirrors
// may still hold snapshots it signed). Retiring the last active key is
// refused, since snapshots could no longer be signed.
func Retire(dir, keyID string) error {
	keys, err := Load(dir)
	if err != nil {
		return fmt.Errorf("retire key: %w", err)
	}
	var k *Key
	for _, c := range keys {
		if c.KeyID == keyID {
			k = c
		}
	}
	if k == nil {
		return fmt.Errorf("retire key: %w", catalog.NotFound("key", keyID))
	}
	if k.Status == StatusRetired {
		return nil
	}
	if len(Active(keys)) == 1 {
		return fmt.Errorf("retire key: %w", catalog.Errorf(catalog.ECONFLICT, "key %s is the last active key; generate a new key first", keyID))
	}
	k.Status = StatusRetired
	if err := write(dir, k); err != nil {
		return fmt.Errorf("retire key: %w", err)
	}
	return nil
}

func load(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets group or others read a private key; chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, maxFileSize)
	}
	var kf file
	if err := catalog.DecodeStrict(bytes.NewReader(data), &kf); err != nil {
		return nil, fmt.Errorf("%s: malformed key file: %w", path, err)
	}
	if len(kf.PrivateKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%s: private_key must be base64 of %d bytes, got %d", path, ed25519.PrivateKeySize, len(kf.PrivateKey))
	}
	priv := ed25519.PrivateKey(kf.PrivateKey)
	// The public half is stored in the key; it must be the seed's.
	derived := ed25519.NewKeyFromSeed(priv.Seed())
	if !bytes.Equal(derived, priv) {
		return nil, fmt.Errorf("%s: private_key is inconsistent (public half does not match the seed)", path)
	}
	pub := derived.Public().(ed25519.PublicKey)
	id := snapshot.KeyID(pub)
	if kf.KeyID != id {
		return nil, fmt.Errorf("%s: key_id %q does not match the key (%s)", path, kf.KeyID, id)
	}
	if filepath.Base(path) != id+ext {
		return nil, fmt.Errorf("%s: file name does not match key_id %s", path, id)
	}
	if kf.Status != StatusActive && kf.Status != StatusRetired {
		return nil, fmt.Errorf("%s: status %q is not active or retired", path, kf.Status)
	}
	if kf.CreatedAt.IsZero() {
		return nil, fmt.Errorf("%s: created_at is missing", path)
	}
	return &Key{KeyID: id, Public: pub, Status: kf.Status, CreatedAt: kf.CreatedAt, private: priv}, nil
}

// write stores k as <dir>/<key_id>.key: temp file (0600), fsync, rename,
// fsync the directory, so a crash leaves the old file or the new one.
func write(dir string, k *Key) error {
	data, err := json.MarshalIndent(file{KeyID: k.KeyID, Status: k.Status, CreatedAt: k.CreatedAt, PrivateKey: k.private}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := fsutil.WriteFile(filepath.Join(dir, k.KeyID+ext), data, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}
