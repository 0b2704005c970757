// Package license is the pure licensing core shared by the control plane,
// the mirrors and the client: the one lease admission rule (Admit), signed
// lease tokens (issue, parse, verify, along the vendor → snapshot → mirror
// key chain) and the verification of a mirror's signed audit export
// (docs/licensing.md). It does no I/O; the mirror's ledger that applies
// Admit over bbolt lives in internal/mirror/state.
package license

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost/outpost/internal/catalog"
)

// TokenPrefix starts every lease token and is part of the signed bytes, so
// a token of another format or version can never verify as this one.
const TokenPrefix = "olt1."

// MaxTokenSize caps a token before any decoding (hostile input).
const MaxTokenSize = 64 << 10

// IssuerVendor is the iss of tokens the control plane signs; mirrors sign
// as "mirror:<mirror_id>".
const IssuerVendor = "vendor"

const issuerMirrorPrefix = "mirror:"

// MirrorIssuer is the iss of tokens mirror mirrorID signs.
func MirrorIssuer(mirrorID string) string { return issuerMirrorPrefix + mirrorID }

// Sentinel errors. Every one wraps ErrRejected, so callers test
// errors.Is(err, ErrRejected) for "refuse" and the specific one for why.
var (
	ErrRejected         = errors.New("lease token rejected")
	ErrMalformed        = fmt.Errorf("%w: malformed token", ErrRejected)
	ErrTooLarge         = fmt.Errorf("%w: token exceeds %d bytes", ErrRejected, MaxTokenSize)
	ErrForged           = fmt.Errorf("%w: signature does not verify", ErrRejected)
	ErrUntrustedKey     = fmt.Errorf("%w: signed by a key that is not a trusted vendor key", ErrRejected)
	ErrUnknownMirrorKey = fmt.Errorf("%w: signed by a mirror key no verified snapshot lists", ErrRejected)
	ErrNoSnapshot       = fmt.Errorf("%w: mirror-signed token needs a verified snapshot", ErrRejected)
	ErrNotEntitled      = fmt.Errorf("%w: token exceeds what the snapshot's entitlement grants", ErrRejected)
	ErrWrongTenant      = fmt.Errorf("%w: token is for another tenant", ErrRejected)
	ErrExpired          = fmt.Errorf("%w: token has expired", ErrRejected)
	ErrNotYetValid      = fmt.Errorf("%w: token is issued in the future", ErrRejected)
)

// Claims is a lease token's payload. Times are unix seconds.
type Claims struct {
	LeaseID       string   `json:"lid"`
	EntitlementID string   `json:"eid"`
	TenantID      string   `json:"tid"`
	ProductID     string   `json:"pid"`
	SubjectType   string   `json:"sty"`
	SubjectID     string   `json:"sub"`
	Features      []string `json:"fea"`
	IssuedAt      int64    `json:"iat"`
	ExpiresAt     int64    `json:"exp"`
	Grace         int64    `json:"grc"` // offline grace, seconds
	KeyID         string   `json:"kid"` // hex sha256 of the signer's raw public key
	Issuer        string   `json:"iss"` // "vendor" or "mirror:<mirror_id>"
}

// Signature is the signed part of a parsed token and its signature, for
// callers that verify against a key of their own choosing.
type Signature struct {
	Message []byte // "olt1." + payload part, the bytes the signature covers
	Sig     []byte
}

// MirrorID returns the mirror id of a mirror-issued token, or "".
func (c *Claims) MirrorID() string {
	id, _ := strings.CutPrefix(c.Issuer, issuerMirrorPrefix)
	if id == c.Issuer {
		return ""
	}
	return id
}

// UsableUntil is the first instant the token is no longer valid:
// expires_at plus the offline grace.
func (c *Claims) UsableUntil() time.Time {
	return time.Unix(c.ExpiresAt+c.Grace, 0).UTC()
}

// KeyID is the key id of an ed25519 public key: hex sha256 of its 32 raw
// bytes (the same as the snapshot envelope's keyid).
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// TokenHash is what a store keeps instead of the token: hex sha256.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Issue signs claims with signer. An empty KeyID is filled in from the
// signer; one that does not match the signer is an error.
func Issue(claims Claims, signer ed25519.PrivateKey) (string, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return "", errors.New("issue lease token: signer is not an ed25519 private key")
	}
	kid := KeyID(signer.Public().(ed25519.PublicKey))
	if claims.KeyID == "" {
		claims.KeyID = kid
	}
	if claims.KeyID != kid {
		return "", fmt.Errorf("issue lease token: kid %s is not the signer's key %s", claims.KeyID, kid)
	}
	if claims.Features == nil {
		claims.Features = []string{}
	}
	if err := claims.validate(); err != nil {
		return "", fmt.Errorf("issue lease token: %w", err)
	}
	payload, err := json.Marshal(&claims)
	if err != nil {
		return "", fmt.Errorf("issue lease token: %w", err)
	}
	signed := TokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	sig := ed25519.Sign(signer, []byte(signed))
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	if len(tok) > MaxTokenSize {
		return "", fmt.Errorf("issue lease token: %d bytes, more than %d", len(tok), MaxTokenSize)
	}
	return tok, nil
}

// Parse decodes a token and checks its form, but not its signature: the
// claims are untrusted until Verify (or an ed25519 check of Signature
// against the kid's key) says otherwise.
func Parse(token string) (*Claims, Signature, error) {
	if len(token) > MaxTokenSize {
		return nil, Signature{}, ErrTooLarge
	}
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return nil, Signature{}, fmt.Errorf("%w: does not start with %q", ErrMalformed, TokenPrefix)
	}
	payloadPart, sigPart, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigPart, ".") {
		return nil, Signature{}, fmt.Errorf("%w: want olt1.<payload>.<signature>", ErrMalformed)
	}
	// Strict: RawURLEncoding rejects padding, other alphabets and
	// non-canonical trailing bits, so a token has exactly one spelling.
	payload, err := base64.RawURLEncoding.Strict().DecodeString(payloadPart)
	if err != nil {
		return nil, Signature{}, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigPart)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, Signature{}, fmt.Errorf("%w: signature is not a base64url ed25519 signature", ErrMalformed)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, Signature{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Signature{}, fmt.Errorf("%w: payload: trailing data", ErrMalformed)
	}
	if err := c.validate(); err != nil {
		return nil, Signature{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &c, Signature{Message: []byte(TokenPrefix + payloadPart), Sig: sig}, nil
}

// validate checks the claims' form, naming the offending claim.
func (c *Claims) validate() error {
	switch {
	case !catalog.ValidID(catalog.PrefixLease, c.LeaseID):
		return errors.New("lid: not a lease id")
	case !catalog.ValidID(catalog.PrefixEntitlement, c.EntitlementID):
		return errors.New("eid: not an entitlement id")
	case !catalog.ValidID(catalog.PrefixTenant, c.TenantID):
		return errors.New("tid: not a tenant id")
	case !catalog.ValidID(catalog.PrefixProduct, c.ProductID):
		return errors.New("pid: not a product id")
	}
	if err := catalog.ValidateEnum("sty", c.SubjectType, catalog.SubjectTypes); err != nil {
		return err
	}
	if err := ValidateSubjectID("sub", c.SubjectID); err != nil {
		return err
	}
	if c.Features == nil {
		return errors.New("fea: is required (may be empty)")
	}
	if len(c.Features) > 256 {
		return errors.New("fea: at most 256 features")
	}
	for _, f := range c.Features {
		if f == "" || len(f) > 128 || strings.ContainsAny(f, "\x00\n\r\t") {
			return errors.New("fea: each feature must be 1..128 printable bytes")
		}
	}
	switch {
	case c.IssuedAt <= 0:
		return errors.New("iat: must be a positive unix time")
	case c.ExpiresAt <= c.IssuedAt:
		return errors.New("exp: must be after iat")
	case c.ExpiresAt > c.IssuedAt+int64(10*365*24*3600):
		return errors.New("exp: more than ten years after iat")
	case c.Grace < 0 || c.Grace > int64(720*3600):
		return errors.New("grc: must be between 0 and 2592000 seconds")
	case len(c.KeyID) != 64 || catalog.ValidateSHA256("kid", c.KeyID) != nil:
		return errors.New("kid: must be 64 lowercase hex characters")
	}
	if c.Issuer != IssuerVendor {
		id, ok := strings.CutPrefix(c.Issuer, issuerMirrorPrefix)
		if !ok || !catalog.ValidID(catalog.PrefixMirror, id) {
			return errors.New(`iss: must be "vendor" or "mirror:<mirror_id>"`)
		}
	}
	return nil
}

// ValidateSubjectID checks a lease or seat subject id: 1..256 bytes of
// valid UTF-8 without control characters.
func ValidateSubjectID(field, s string) error {
	if s == "" || len(s) > 256 {
		return catalog.Invalid(field, "must be 1..256 bytes")
	}
	if !utf8.ValidString(s) {
		return catalog.Invalid(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return catalog.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}
