package license

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"

	"github.com/outpost/outpost/internal/catalog"
)

// holderPrefix makes a leaked holder secret recognisable.
const holderPrefix = "olh_"

// NewHolderSecret returns a new lease holder secret (32 random bytes)
// and its hash, which is all a store keeps.
func NewHolderSecret() (secret, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("license: no randomness: " + err.Error())
	}
	secret = holderPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HolderHash(secret)
}

// HolderHash is the stored form of a holder secret (hex sha256); "" for
// no secret.
func HolderHash(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidHolderSecret reports whether s has the form NewHolderSecret gives.
func ValidHolderSecret(s string) bool {
	if len(s) != len(holderPrefix)+43 || s[:len(holderPrefix)] != holderPrefix {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(holderPrefix):])
	return err == nil
}

// CheckHolder is the holder rule of both daemons: a change to an active
// lease (renewal, release) needs the secret its acquire returned, whose
// hash is presented; compared in constant time. A lease stored before
// holder secrets existed (no hash) is not bound: its next renewal binds
// it. force (an administrator's release) skips the check.
func CheckHolder(held *catalog.Lease, presentedHash string, force bool) error {
	if force || held.HolderHash == "" {
		return nil
	}
	if presentedHash == "" {
		return catalog.Errorf(catalog.EFORBIDDEN, "lease %s is held: its holder secret is required (header Outpost-Lease-Secret)", held.LeaseID)
	}
	if subtle.ConstantTimeCompare([]byte(held.HolderHash), []byte(presentedHash)) != 1 {
		return catalog.Errorf(catalog.EFORBIDDEN, "lease %s is held by another holder: wrong holder secret", held.LeaseID)
	}
	return nil
}
