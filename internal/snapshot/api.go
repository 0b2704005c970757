package snapshot

import (
	"crypto/ed25519"
	"errors"
)

// Envelope is a DSSE envelope. Payload and Sig are base64 in JSON
// (encoding/json's []byte encoding is standard base64, as DSSE wants).
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is the hex sha256 of the raw
// 32-byte ed25519 public key.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// Signer is a vendor signing key.
type Signer struct {
	KeyID string
	Key   ed25519.PrivateKey
}

// Errors of the catalog view (Build, and the TUF assembler's checks).
var (
	ErrDuplicateID = errors.New("duplicate id")
	ErrDangling    = errors.New("dangling reference")
)
