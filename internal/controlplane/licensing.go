package controlplane

import (
	"context"
	"encoding/json"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
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
	Policy    json.RawMessage `json:"policy_json"`
	StartsAt  *time.Time      `json:"starts_at"`
	EndsAt    *time.Time      `json:"ends_at"`
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
	signers := a.keys.Signers()
	if len(signers) == 0 {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key")
	}
	now := a.now()
	expires := now.Add(time.Duration(pol.LeaseTTL))
	if e.EndsAt != nil && e.EndsAt.Before(expires) {
		expires = *e.EndsAt
	}
	var token string
	l := &catalog.Lease{
		LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID, TenantID: e.TenantID,
		SubjectType: in.SubjectType, SubjectID: in.SubjectID, IssuedAt: now, ExpiresAt: expires,
	}
	l, err = a.store.AcquireLease(ctx, l, func(final *catalog.Lease) (string, error) {
		var err error
		token, err = license.Issue(license.Claims{
			LeaseID: final.LeaseID, EntitlementID: e.EntitlementID, TenantID: e.TenantID, ProductID: e.ProductID,
			SubjectType: final.SubjectType, SubjectID: final.SubjectID, Features: pol.Features,
			IssuedAt: final.IssuedAt.Unix(), ExpiresAt: final.ExpiresAt.Unix(), Grace: int64(time.Duration(pol.OfflineGrace) / time.Second),
			Issuer: "vendor",
		}, signers[0].Key)
		return license.TokenHash(token), err
	})
	if err != nil {
		a.noteSeatsExhausted(ctx, e, in, err)
		return nil, err
	}
	return &LeaseIssued{Lease: l, Token: token}, nil
}

// ReleaseLease gives a lease back before it expires.
func (a *App) ReleaseLease(ctx context.Context, id string) (*catalog.Lease, error) {
	if _, err := load(ctx, catalog.PrefixLease, "lease", id, a.store.Lease, func(l *catalog.Lease) string { return l.TenantID }); err != nil {
		return nil, err
	}
	return a.store.ReleaseLease(ctx, id, a.now())
}
