package controlplane

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealer encrypts secrets the control plane must be able to recover
// (mirror credentials) with the data-encryption key: XChaCha20-Poly1305,
// random 24-byte nonce prepended, the object id as associated data so a
// ciphertext cannot be moved to another record.
type Sealer struct {
	key []byte
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("data-encryption key must be %d bytes, got %d", chacha20poly1305.KeySize, len(key))
	}
	return &Sealer{key: append([]byte(nil), key...)}, nil
}

// Seal encrypts plaintext bound to id.
func (s *Sealer) Seal(id string, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(id)), nil
}

// Open decrypts a value sealed for id.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, errors.New("sealed value does not decrypt with this key")
	}
	return out, nil
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
