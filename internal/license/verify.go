package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// MaxClockSkew is how far in the future a token's iat may lie: mirrors on
// air-gapped sites keep their own clocks.
const MaxClockSkew = 5 * time.Minute

// Verifier checks lease tokens offline. It holds the vendor's trusted keys,
// the tenant it serves and, to accept mirror-signed tokens, a snapshot
// manifest verified against those keys. Build it with NewVerifier (vendor
// tokens only) or NewTUFVerifier (vendor and mirror tokens).
type Verifier struct {
	keys     map[string]ed25519.PublicKey
	tenantID string
	// Set only from a verified manifest (the TUF workflow's).
	manifest   *snapshot.Manifest
	mirrorKeys map[string]mirrorKey // by keyid
	ents       map[string]*snapshot.Entitlement
}

type mirrorKey struct {
	mirrorID string
	pub      ed25519.PublicKey
}

// NewVerifier returns a verifier that accepts only vendor-signed tokens of
// tenantID. keys maps keyid (KeyID) to the vendor's public keys.
func NewVerifier(keys map[string]ed25519.PublicKey, tenantID string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("new lease verifier: no trusted keys")
	}
	if !catalog.ValidID(catalog.PrefixTenant, tenantID) {
		return nil, fmt.Errorf("new lease verifier: %q is not a tenant id", tenantID)
	}
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys)), tenantID: tenantID}
	for kid, pub := range keys {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("new lease verifier: key %s is not an ed25519 public key", kid)
		}
		if KeyID(pub) != kid {
			return nil, fmt.Errorf("new lease verifier: key id %s does not match its key (%s)", kid, KeyID(pub))
		}
		v.keys[kid] = pub
	}
	return v, nil
}

// NewVerifierFromManifest is for a caller that already holds a manifest
// verified for these same keys and tenant (a mirror serving its held
// version). Anyone else should use NewTUFVerifier with a manifest the TUF
// workflow verified from the tenant's root.
func NewVerifierFromManifest(keys map[string]ed25519.PublicKey, tenantID string, m *snapshot.Manifest) (*Verifier, error) {
	v, err := NewVerifier(keys, tenantID)
	if err != nil {
		return nil, err
	}
	return v.withManifest(m)
}

// NewTUFVerifier is for a caller whose manifest comes from a TUF
// repository it verified from the tenant's root (tuf.Repository.Manifest
// after tuf.Client.Update): the chain of a mirror-signed token is then
// root → TUF metadata → mirror_keys document → mirror key → lease, and of
// a vendor-signed one root → TUF metadata → lease_keys document → vendor
// key → lease. keys (vendor keys pinned by the caller, besides those the
// metadata names) may be empty; a vendor-signed token by a key neither
// names is refused (ErrUntrustedKey).
func NewTUFVerifier(keys map[string]ed25519.PublicKey, tenantID string, m *snapshot.Manifest) (*Verifier, error) {
	all := maps.Clone(keys)
	if all == nil {
		all = map[string]ed25519.PublicKey{}
	}
	if m != nil {
		for _, lk := range m.LeaseKeys {
			raw, err := base64.StdEncoding.DecodeString(lk.PublicKey)
			if err != nil || len(raw) != ed25519.PublicKeySize || KeyID(raw) != lk.KeyID {
				continue // a bad entry in signed metadata trusts nothing
			}
			all[lk.KeyID] = ed25519.PublicKey(raw)
		}
	}
	if len(all) > 0 {
		return NewVerifierFromManifest(all, tenantID, m)
	}
	if !catalog.ValidID(catalog.PrefixTenant, tenantID) {
		return nil, fmt.Errorf("new lease verifier: %q is not a tenant id", tenantID)
	}
	v := &Verifier{keys: map[string]ed25519.PublicKey{}, tenantID: tenantID}
	return v.withManifest(m)
}

// withManifest adds the mirror keys and entitlements of a verified
// manifest of v's tenant.
func (v *Verifier) withManifest(m *snapshot.Manifest) (*Verifier, error) {
	tenantID := v.tenantID
	if m == nil {
		return nil, errors.New("new lease verifier: nil manifest")
	}
	if m.TenantID != tenantID {
		return nil, fmt.Errorf("new lease verifier: manifest is for tenant %s, not %s", m.TenantID, tenantID)
	}
	v.manifest = m
	v.mirrorKeys = make(map[string]mirrorKey, len(m.MirrorKeys))
	for _, mk := range m.MirrorKeys {
		raw, err := base64.StdEncoding.DecodeString(mk.PublicKey)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			// A bad key in a signed manifest delegates nothing; skipping it
			// keeps the other mirrors working.
			continue
		}
		pub := ed25519.PublicKey(raw)
		v.mirrorKeys[KeyID(pub)] = mirrorKey{mirrorID: mk.MirrorID, pub: pub}
	}
	v.ents = make(map[string]*snapshot.Entitlement, len(m.Entitlements))
	for i := range m.Entitlements {
		v.ents[m.Entitlements[i].EntitlementID] = &m.Entitlements[i]
	}
	return v, nil
}

// Verify checks token against v at now: form, signature along the chain
// (vendor key, or vendor key -> snapshot -> mirror key), tenant, what the
// entitlement grants a mirror, and expiry (now >= exp + grace is expired).
// Every rejection wraps ErrRejected and one specific sentinel.
func Verify(token string, v *Verifier, now time.Time) (*Claims, error) {
	if v == nil {
		return nil, errors.New("verify lease token: nil verifier")
	}
	c, sig, err := Parse(token)
	if err != nil {
		return nil, err
	}
	if c.Issuer == IssuerVendor {
		pub, ok := v.keys[c.KeyID]
		if !ok {
			return nil, fmt.Errorf("%w (kid %s)", ErrUntrustedKey, c.KeyID)
		}
		if !ed25519.Verify(pub, sig.Message, sig.Sig) {
			return nil, ErrForged
		}
	} else {
		if v.manifest == nil {
			return nil, ErrNoSnapshot
		}
		mk, ok := v.mirrorKeys[c.KeyID]
		if !ok || mk.mirrorID != c.MirrorID() {
			return nil, fmt.Errorf("%w (%s, kid %s)", ErrUnknownMirrorKey, c.Issuer, c.KeyID)
		}
		if !ed25519.Verify(mk.pub, sig.Message, sig.Sig) {
			return nil, ErrForged
		}
	}
	if c.TenantID != v.tenantID {
		return nil, fmt.Errorf("%w (token for %s, verifier for %s)", ErrWrongTenant, c.TenantID, v.tenantID)
	}
	if c.Issuer != IssuerVendor {
		if err := v.checkMirrorGrant(c); err != nil {
			return nil, err
		}
	}
	if c.IssuedAt > now.Add(MaxClockSkew).Unix() {
		return nil, fmt.Errorf("%w (iat %s)", ErrNotYetValid, time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	}
	if !now.Before(c.UsableUntil()) {
		return nil, fmt.Errorf("%w (usable until %s)", ErrExpired, c.UsableUntil().Format(time.RFC3339))
	}
	return c, nil
}

// checkMirrorGrant holds a mirror-signed token to what the verified
// snapshot lets that mirror grant: a mirror key alone must not be able to
// mint leases for other products, longer terms or extra features.
func (v *Verifier) checkMirrorGrant(c *Claims) error {
	m := v.manifest
	if m.Tenant.Status != "" && m.Tenant.Status != catalog.TenantActive {
		return fmt.Errorf("%w: tenant is %s", ErrNotEntitled, m.Tenant.Status)
	}
	e, ok := v.ents[c.EntitlementID]
	if !ok {
		return fmt.Errorf("%w: entitlement %s is not in the snapshot", ErrNotEntitled, c.EntitlementID)
	}
	if e.ProductID != c.ProductID {
		return fmt.Errorf("%w: entitlement %s is for product %s, not %s", ErrNotEntitled, e.EntitlementID, e.ProductID, c.ProductID)
	}
	p, err := catalog.ParseEntitlementPolicy(e.Policy)
	if err != nil {
		return fmt.Errorf("%w: entitlement %s: %v", ErrNotEntitled, e.EntitlementID, err)
	}
	if p.MirrorSeats[c.MirrorID()] < 1 {
		return fmt.Errorf("%w: %s has no seats of entitlement %s", ErrNotEntitled, c.MirrorID(), e.EntitlementID)
	}
	iat := time.Unix(c.IssuedAt, 0)
	if iat.Before(e.StartsAt.Truncate(time.Second)) || (e.EndsAt != nil && !iat.Before(*e.EndsAt)) {
		return fmt.Errorf("%w: issued outside the entitlement's term", ErrNotEntitled)
	}
	if e.EndsAt != nil && c.ExpiresAt > ceilUnix(*e.EndsAt) {
		return fmt.Errorf("%w: expires after the entitlement ends", ErrNotEntitled)
	}
	if c.ExpiresAt-c.IssuedAt > int64(time.Duration(p.LeaseTTL)/time.Second) {
		return fmt.Errorf("%w: lasts longer than lease_ttl %s", ErrNotEntitled, time.Duration(p.LeaseTTL))
	}
	if c.Grace > int64(time.Duration(p.OfflineGrace)/time.Second) {
		return fmt.Errorf("%w: grace longer than offline_grace %s", ErrNotEntitled, time.Duration(p.OfflineGrace))
	}
	for _, f := range c.Features {
		if !slices.Contains(p.Features, f) {
			return fmt.Errorf("%w: feature %q is not granted", ErrNotEntitled, f)
		}
	}
	return nil
}

// ceilUnix is t in unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
