package snapshot

// This file fixes the package's API so that other packages can be written
// against it; the implementation lives beside it.

import (
	"crypto/ed25519"
	"errors"
	"time"
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

// Trust is what a verifier pins: the vendor's keys (by keyid), how many of
// them must sign, the tenant it serves and the envelope size cap.
type Trust struct {
	Keys      map[string]ed25519.PublicKey
	Threshold int // at least 1
	TenantID  string
	MaxSize   int64 // 0 means DefaultMaxSize
}

// Held is the snapshot a verifier already holds (nil when none).
type Held struct {
	Sequence int64
	Hash     string // hex sha256 of its envelope bytes
}

// Verification errors. Every one wraps ErrVerification, so callers test
// errors.Is(err, ErrVerification) for "reject" and the specific one for why.
var (
	ErrVerification  = errors.New("snapshot verification failed")
	ErrTooLarge      = errors.New("envelope exceeds the size cap")
	ErrMalformed     = errors.New("malformed envelope or manifest")
	ErrPayloadType   = errors.New("wrong payload type")
	ErrSignature     = errors.New("signature does not verify")
	ErrUntrustedKey  = errors.New("signed by an untrusted key")
	ErrThreshold     = errors.New("not enough trusted signatures")
	ErrSchema        = errors.New("unknown schema version")
	ErrTenant        = errors.New("snapshot is for another tenant")
	ErrRollback      = errors.New("sequence is older than the held snapshot")
	ErrFork          = errors.New("same sequence as the held snapshot with different bytes")
	ErrExpired       = errors.New("snapshot has expired")
	ErrPreviousChain = errors.New("previous hash does not chain to the held snapshot")
	ErrDuplicateID   = errors.New("duplicate id")
	ErrDangling      = errors.New("dangling reference")
)

var _ = time.Now
