package snapshot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// The DSSE primitives that sign what is not the (removed) schema 1
// snapshot format: return-file acknowledgements, audit exports, leases.

// KeyID returns the keyid of an ed25519 public key: hex sha256 of its raw
// 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// PAE is DSSE v1's pre-authentication encoding, what signatures cover:
// "DSSEv1" SP len(type) SP type SP len(body) SP body.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// Hash returns the hex sha256 of stored record bytes (a build record, a
// schema 1 envelope kept from before TUF): their identity in listings.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
