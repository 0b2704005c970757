package controlplane

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
)

// EntitlementInput grants a tenant an entitlement to a product.
type EntitlementInput struct {
	ProductID string          `json:"product_id"`
	Policy    json.RawMessage `json:"policy_json"` // docs/licensing.md
	StartsAt  *time.Time      `json:"starts_at"`   // default now
	EndsAt    *time.Time      `json:"ends_at"`     // default never
}

// EntitlementPatch changes an entitlement; nil fields stay.
type EntitlementPatch struct {
	// omitempty: a field not given is left out of the PATCH body (a
	// JSON null policy would be a policy to validate).
	Policy    json.RawMessage `json:"policy_json,omitempty"`
	StartsAt  *time.Time      `json:"starts_at,omitempty"`
	EndsAt    *time.Time      `json:"ends_at,omitempty"`
	Unchanged Unchanged       `json:"-"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CreateEntitlement grants an entitlement.
func (a *App) CreateEntitlement(ctx context.Context, tenantID string, in EntitlementInput) (*catalog.Entitlement, error) {
	t, err := a.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !catalog.ValidID(catalog.PrefixProduct, in.ProductID) {
		return nil, catalog.Invalid("product_id", "%q is not a product id", in.ProductID)
	}
	if _, err := catalog.ParseEntitlementPolicy(in.Policy); err != nil {
		return nil, err
	}
	now := a.now()
	starts := now
	if in.StartsAt != nil {
		starts = in.StartsAt.UTC()
	}
	if in.EndsAt != nil && !in.EndsAt.After(starts) {
		return nil, catalog.Invalid("ends_at", "must be after starts_at")
	}
	e := &catalog.Entitlement{
		EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: t.TenantID, ProductID: in.ProductID,
		Policy: compactJSON(in.Policy), StartsAt: starts, EndsAt: utcPtr(in.EndsAt), CreatedAt: now, UpdatedAt: now,
	}
	if err := a.store.CreateEntitlement(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Entitlements lists a tenant's entitlements.
func (a *App) Entitlements(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Entitlement, string, error) {
	return ofTenant(ctx, a, tenantID, pg, a.store.Entitlements)
}

// Entitlement returns an entitlement the principal may see.
func (a *App) Entitlement(ctx context.Context, id string) (*catalog.Entitlement, error) {
	return load(ctx, catalog.PrefixEntitlement, "entitlement", id, a.store.Entitlement, func(x *catalog.Entitlement) string { return x.TenantID })
}

// UpdateEntitlement changes an entitlement's policy or period.
func (a *App) UpdateEntitlement(ctx context.Context, id string, in EntitlementPatch) (*catalog.Entitlement, error) {
	if err := checkID(catalog.PrefixEntitlement, "entitlement", id); err != nil {
		return nil, err
	}
	if in.Policy != nil {
		if _, err := catalog.ParseEntitlementPolicy(in.Policy); err != nil {
			return nil, err
		}
	}
	return a.store.UpdateEntitlement(ctx, id, func(e *catalog.Entitlement) error {
		if err := in.Unchanged.check(e); err != nil {
			return err
		}
		if in.Policy != nil {
			e.Policy = compactJSON(in.Policy)
		}
		if in.StartsAt != nil {
			e.StartsAt = in.StartsAt.UTC()
		}
		if in.EndsAt != nil {
			e.EndsAt = utcPtr(in.EndsAt)
		}
		if e.EndsAt != nil && !e.EndsAt.After(e.StartsAt) {
			return catalog.Invalid("ends_at", "must be after starts_at")
		}
		e.UpdatedAt = a.now()
		return nil
	})
}

// Subject names who holds a seat or a lease.
type Subject struct {
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
	// HolderSecret (AcquireLease only) is the secret a previous acquire
	// returned, needed to renew the subject's active lease. Over HTTP it
	// travels in the Outpost-Lease-Secret header, never in the body.
	HolderSecret string `json:"-"`
}

func (s Subject) validate() error {
	if err := catalog.ValidateEnum("subject_type", s.SubjectType, catalog.SubjectTypes); err != nil {
		return err
	}
	return license.ValidateSubjectID("subject_id", s.SubjectID)
}

// AssignSeat assigns a seat of an entitlement to a subject.
func (a *App) AssignSeat(ctx context.Context, entitlementID string, in Subject) (*catalog.SeatAssignment, error) {
	e, err := a.Entitlement(ctx, entitlementID)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	seat := &catalog.SeatAssignment{
		SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: e.EntitlementID, SubjectType: in.SubjectType,
		SubjectID: in.SubjectID, AssignedAt: a.now(), AssignedBy: principal(ctx).TokenID,
	}
	if err := a.store.AssignSeat(ctx, seat); err != nil {
		return nil, err
	}
	return seat, nil
}

// Seats lists an entitlement's seat assignments.
func (a *App) Seats(ctx context.Context, entitlementID string, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
	e, err := a.Entitlement(ctx, entitlementID)
	if err != nil {
		return nil, "", err
	}
	return a.store.Seats(ctx, e.EntitlementID, pg.Normalize())
}

// RevokeSeat ends a seat assignment.
func (a *App) RevokeSeat(ctx context.Context, entitlementID, seatID string) (*catalog.SeatAssignment, error) {
	e, err := a.Entitlement(ctx, entitlementID)
	if err != nil {
		return nil, err
	}
	if err := checkID(catalog.PrefixSeat, "seat assignment", seatID); err != nil {
		return nil, err
	}
	return a.store.RevokeSeat(ctx, e.EntitlementID, seatID, principal(ctx).TokenID, a.now())
}

// LeaseIssued is a lease with its vendor-signed token, which exists only
// here: the store keeps its sha256.
type LeaseIssued struct {
	*catalog.Lease
	Token string `json:"token"`
	// HolderSecret is returned once, by the acquire that bound the lease
	// to its holder: renewing and releasing the lease need it.
	HolderSecret string `json:"holder_secret,omitempty"`
}

// AcquireLease issues (or renews) a subject's online lease.
func (a *App) AcquireLease(ctx context.Context, entitlementID string, in Subject) (*LeaseIssued, error) {
	e, err := a.Entitlement(ctx, entitlementID)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	pol, err := catalog.ParseEntitlementPolicy(e.Policy)
	if err != nil {
		return nil, err
	}
	signer, err := a.leaseSigner(ctx, e.TenantID)
	if err != nil {
		return nil, err
	}
	now := a.now()
	expires := now.Add(time.Duration(pol.LeaseTTL))
	if e.EndsAt != nil && e.EndsAt.Before(expires) {
		expires = *e.EndsAt
	}
	var token string
	if in.HolderSecret != "" && !license.ValidHolderSecret(in.HolderSecret) {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "malformed lease holder secret")
	}
	secret, holder := in.HolderSecret, license.HolderHash(in.HolderSecret)
	fresh := ""
	if secret == "" {
		fresh, holder = license.NewHolderSecret()
	}
	l := &catalog.Lease{
		LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID, TenantID: e.TenantID,
		SubjectType: in.SubjectType, SubjectID: in.SubjectID, IssuedAt: now, ExpiresAt: expires, HolderHash: holder,
	}
	l, err = a.store.AcquireLease(ctx, l, func(final *catalog.Lease) (string, error) {
		var err error
		token, err = license.Issue(license.Claims{
			LeaseID: final.LeaseID, EntitlementID: e.EntitlementID, TenantID: e.TenantID, ProductID: e.ProductID,
			SubjectType: final.SubjectType, SubjectID: final.SubjectID, Features: pol.Features,
			IssuedAt: final.IssuedAt.Unix(), ExpiresAt: final.ExpiresAt.Unix(), Grace: int64(time.Duration(pol.OfflineGrace) / time.Second),
			Issuer: "vendor",
		}, signer.Key)
		return license.TokenHash(token), err
	})
	if err != nil {
		a.noteSeatsExhausted(ctx, e, in, err)
		return nil, err
	}
	out := &LeaseIssued{Lease: l, Token: token}
	if fresh != "" && l.HolderHash == holder {
		out.HolderSecret = fresh
	}
	return out, nil
}

// ReleaseLease gives a lease back before it expires. It needs the
// holder's secret, except from an administrator (a forced release, for a
// holder that lost its secret).
func (a *App) ReleaseLease(ctx context.Context, id, holderSecret string) (*catalog.Lease, error) {
	if _, err := load(ctx, catalog.PrefixLease, "lease", id, a.store.Lease, func(l *catalog.Lease) string { return l.TenantID }); err != nil {
		return nil, err
	}
	force := holderSecret == "" && principal(ctx).Role == catalog.RoleAdmin
	return a.store.ReleaseLease(ctx, id, license.HolderHash(holderSecret), force, a.now())
}

// leaseSigner is the vendor key that signs a tenant's online leases,
// chosen deterministically (docs/licensing.md, "Which key signs a
// lease"): of the active keys that the tenant's current TUF metadata
// names for leases (docs/lease_keys.json; for a tenant with no
// repository yet, those that signed its latest build record), the oldest
// (created_at, then key id); with none of them still active, the oldest
// active key. So `keys generate` does not move leases to a key clients
// do not trust yet (the metadata lists both, the old key keeps signing);
// retiring the old key does, once the next build lists the new one alone.
func (a *App) leaseSigner(ctx context.Context, tenantID string) (snapshot.Signer, error) {
	active := map[string]snapshot.Signer{}
	for _, s := range a.keys.Signers() {
		active[s.KeyID] = s
	}
	if len(active) == 0 {
		return snapshot.Signer{}, catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key")
	}
	var keys []PublicKey
	for _, k := range a.keys.PublicKeys() {
		if _, ok := active[k.KeyID]; ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y PublicKey) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.KeyID, y.KeyID)
	})
	named := a.leaseKeysNamed(ctx, tenantID)
	for _, k := range keys {
		if named[k.KeyID] {
			return active[k.KeyID], nil
		}
	}
	if len(keys) > 0 {
		return active[keys[0].KeyID], nil
	}
	// A keyring that lists no public half of its signers: the smallest id.
	ids := slices.Sorted(maps.Keys(active))
	return active[ids[0]], nil
}

// leaseKeysNamed is the key ids the tenant's current TUF metadata names
// for online leases, or, for a tenant with no repository yet, the keys
// that signed its latest build record.
func (a *App) leaseKeysNamed(ctx context.Context, tenantID string) map[string]bool {
	if a.tuf != nil {
		if v, err := a.tufView(ctx, tenantID); err == nil {
			return v.leaseKeys
		}
	}
	return a.snapshotSigners(ctx, tenantID)
}

// activeLeaseKeys lists the active signers' public keys: what a build
// names for the tenant's online leases.
func (a *App) activeLeaseKeys(signers []snapshot.Signer) []snapshot.LeaseKey {
	active := map[string]bool{}
	for _, s := range signers {
		active[s.KeyID] = true
	}
	var out []snapshot.LeaseKey
	for _, k := range a.keys.PublicKeys() {
		if active[k.KeyID] && len(k.PublicKey) == ed25519.PublicKeySize {
			out = append(out, snapshot.LeaseKey{KeyID: k.KeyID, PublicKey: base64.StdEncoding.EncodeToString(k.PublicKey)})
		}
	}
	return out
}

// signedBy is the key ids that signed one snapshot.
type signedBy struct {
	snapshotID string
	keys       map[string]bool
}

// snapshotSigners returns the key ids that signed the tenant's latest
// snapshot (none without one). The envelope is decoded once per snapshot:
// the cache, one entry per tenant, is keyed by the snapshot id read from
// the cheap head.
func (a *App) snapshotSigners(ctx context.Context, tenantID string) map[string]bool {
	head, err := a.store.LatestSnapshotHead(ctx, tenantID)
	if err != nil || head == nil {
		return nil
	}
	if v, ok := a.signers.Load(tenantID); ok && v.(*signedBy).snapshotID == head.SnapshotID {
		return v.(*signedBy).keys
	}
	snap, err := a.store.Snapshot(ctx, head.SnapshotID)
	if err != nil {
		return nil
	}
	var env snapshot.Envelope
	if err := json.Unmarshal(snap.Envelope, &env); err != nil {
		return nil
	}
	sb := &signedBy{snapshotID: head.SnapshotID, keys: map[string]bool{}}
	for _, sig := range env.Signatures {
		sb.keys[sig.KeyID] = true
	}
	a.signers.Store(tenantID, sb)
	return sb.keys
}
