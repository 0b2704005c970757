// Package tuf lays out one tenant's catalog as a TUF 1.0 repository
// (docs/metadata.md) with go-tuf v2's metadata model: it builds and signs
// the metadata in proportion to each change, runs signing ceremonies for
// offline keys, runs the client update workflow over an I/O interface and
// assembles the verified repository back into the snapshot.Manifest the
// update engine and the licence ledger consume, and binds an update
// answer to the verified metadata (CheckAnswer). It does no network or
// database I/O of its own; package tufhttp serves a repository over HTTP.
package tuf

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Signer signs metadata for one key: an online key in memory, an offline
// key file opened during a ceremony, or a hardware token.
type Signer interface {
	// KeyID is the TUF key id (hex sha256 of the canonical key object).
	KeyID() string
	// Public is the public key (ed25519.PublicKey for the keys Outpost makes).
	Public() crypto.PublicKey
	// Sign signs payload, the canonical JSON of a role's signed part.
	Sign(ctx context.Context, payload []byte) ([]byte, error)
}

// Ed25519Signer is a Signer over an ed25519 private key held in memory.
type Ed25519Signer struct {
	key  *metadata.Key
	id   string
	priv ed25519.PrivateKey
}

// NewEd25519Signer returns a signer for priv.
func NewEd25519Signer(priv ed25519.PrivateKey) (*Ed25519Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 signer: key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	id, err := k.ID()
	if err != nil {
		return nil, fmt.Errorf("ed25519 signer: %w", err)
	}
	return &Ed25519Signer{key: k, id: id, priv: priv}, nil
}

// KeyID implements Signer.
func (s *Ed25519Signer) KeyID() string { return s.id }

// Public implements Signer.
func (s *Ed25519Signer) Public() crypto.PublicKey { return s.priv.Public() }

// Sign implements Signer.
func (s *Ed25519Signer) Sign(_ context.Context, payload []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, payload), nil
}

// PublicKey returns the TUF key object of a public key.
func PublicKey(pub crypto.PublicKey) (*metadata.Key, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if _, err := k.ID(); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return k, nil
}

// keyOf returns the TUF key object of s and checks that its key id is the
// one s claims.
func keyOf(s Signer) (*metadata.Key, error) {
	k, err := PublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	if id, _ := k.ID(); id != s.KeyID() {
		return nil, fmt.Errorf("signer %s: key id does not match its public key (%s)", s.KeyID(), id)
	}
	return k, nil
}

// keyIDs returns the key ids of signers.
func keyIDs(signers []Signer) []string {
	ids := make([]string, len(signers))
	for i, s := range signers {
		ids[i] = s.KeyID()
	}
	return ids
}

// canonical returns the canonical JSON of a role's signed part: the bytes
// every signature covers.
func canonical[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	b, err := cjson.EncodeCanonical(m.Signed)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return b, nil
}

// sign adds a signature by every signer to m, replacing any earlier
// signature by the same key.
func sign[T metadata.Roles](ctx context.Context, m *metadata.Metadata[T], signers ...Signer) error {
	if len(signers) == 0 {
		return fmt.Errorf("sign: no signer")
	}
	payload, err := canonical(m)
	if err != nil {
		return err
	}
	for _, s := range signers {
		sig, err := s.Sign(ctx, payload)
		if err != nil {
			return fmt.Errorf("sign with %s: %w", s.KeyID(), err)
		}
		addSignature(m, metadata.Signature{KeyID: s.KeyID(), Signature: sig})
	}
	return nil
}

// addSignature puts sig on m, replacing an earlier one by the same key.
func addSignature[T metadata.Roles](m *metadata.Metadata[T], sig metadata.Signature) {
	for i := range m.Signatures {
		if m.Signatures[i].KeyID == sig.KeyID {
			m.Signatures[i] = sig
			return
		}
	}
	m.Signatures = append(m.Signatures, sig)
}

// encode serialises signed metadata compactly (what is published).
func encode[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	b, err := m.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return b, nil
}
