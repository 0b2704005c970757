package controlplane

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealer encrypts secrets the control plane must be able to recover
// (mirror credentials, webhook secrets, remembered answers) with the
// data-encryption key: XChaCha20-Poly1305, random 24-byte nonce
// prepended, the object id as associated data so a ciphertext cannot be
// moved to another record. The same construction seals the shared keys
// with the key-encryption key (package keyshare).
//
// A Sealer seals with its first key and opens with any of its keys, so
// that values sealed with a key being rotated out stay readable until
// they are re-sealed (keys rotate-data-key, keys rekey). SetKeys swaps
// the keys of a Sealer in use (an instance that took a rotated key from
// the database); it is safe for concurrent use.
type Sealer struct {
	keys atomic.Pointer[[][]byte]
}

// ErrWrongKey says a sealed value does not open with any key held.
var ErrWrongKey = errors.New("sealed value does not decrypt with this key")

// NewSealer returns a Sealer that seals with key and opens with key or
// any of older (32 bytes each).
func NewSealer(key []byte, older ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	if err := s.SetKeys(key, older...); err != nil {
		return nil, err
	}
	return s, nil
}

// SetKeys makes s seal with key and open with key or any of older.
func (s *Sealer) SetKeys(key []byte, older ...[]byte) error {
	keys := make([][]byte, 0, 1+len(older))
	for _, k := range append([][]byte{key}, older...) {
		if len(k) != chacha20poly1305.KeySize {
			return fmt.Errorf("data-encryption key must be %d bytes, got %d", chacha20poly1305.KeySize, len(k))
		}
		if !slices.ContainsFunc(keys, func(h []byte) bool { return bytes.Equal(h, k) }) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	s.keys.Store(&keys)
	return nil
}

// Seal encrypts plaintext bound to id with the first key.
func (s *Sealer) Seal(id string, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX((*s.keys.Load())[0])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(id)), nil
}

// Open decrypts a value sealed for id with any of the keys (ErrWrongKey
// when none opens it: the authentication tag never lets a wrong key
// return garbage).
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	out, _, err := s.OpenWhich(id, sealed)
	return out, err
}

// OpenWhich is Open that also reports whether the first key opened it
// (false: an older one did, so the value wants re-sealing).
func (s *Sealer) OpenWhich(id string, sealed []byte) ([]byte, bool, error) {
	if len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, false, errors.New("sealed value too short")
	}
	for i, k := range *s.keys.Load() {
		aead, err := chacha20poly1305.NewX(k)
		if err != nil {
			return nil, false, err
		}
		out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
		if err == nil {
			return out, i == 0, nil
		}
	}
	return nil, false, ErrWrongKey
}

// Token prefixes make leaked secrets recognisable.
const (
	tokenPrefix      = "opt_"
	credentialPrefix = "omc_"
)

// NewSecret returns prefix + base64url of 32 random bytes.
func NewSecret(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// NewToken returns a new API token secret.
func NewToken() string { return NewSecret(tokenPrefix) }

// NewCredential returns a new mirror credential secret.
func NewCredential() string { return NewSecret(credentialPrefix) }

// HashSecret returns the hex sha256 the store keeps instead of a secret.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
