package controlplane

import (
	"context"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// RoleMirror is the role of a mirror's credential (admin and tenant are
// catalog.RoleAdmin and catalog.RoleTenant).
const RoleMirror = "mirror"

// Principal is who an operation acts as: an API token, a mirror
// credential, or an operator at the console. The service scopes what a
// tenant principal may see; which roles may call which operation is the
// transport's rule (httpapi's route table).
type Principal struct {
	Role string // catalog.RoleAdmin, catalog.RoleTenant or RoleMirror
	// ReadOnly principals (admin_ro, tenant_ro tokens) may call GET
	// routes only (the transport's rule).
	ReadOnly bool
	TenantID string
	TokenID  string          // token or mirror id; recorded as assigned_by, revoked_by
	Mirror   *catalog.Mirror // for RoleMirror
}

type principalKey struct{}

// WithPrincipal returns ctx acting as p, with p's audit actor.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return catalog.WithActor(context.WithValue(ctx, principalKey{}, p), p.Actor())
}

// PrincipalFrom returns the principal of ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// AsOperator returns ctx acting as an administrator at the console (the
// CLI opening the data dir, housekeeping), audited as actor.
func AsOperator(ctx context.Context, actor catalog.Actor) context.Context {
	p := &Principal{Role: catalog.RoleAdmin, TokenID: actor.ID}
	return catalog.WithActor(context.WithValue(ctx, principalKey{}, p), actor)
}

// Actor is the audit actor of p.
func (p *Principal) Actor() catalog.Actor {
	if p.Role == RoleMirror {
		return catalog.Actor{Type: catalog.ActorMirror, ID: p.TokenID}
	}
	return catalog.Actor{Type: catalog.ActorServiceAccount, ID: p.TokenID}
}

// CanSeeTenant reports whether p may see objects of tenantID. Operations
// answer 404, never 403, when it may not, so ids of other tenants do not
// leak.
func (p *Principal) CanSeeTenant(tenantID string) bool {
	if p == nil {
		return false
	}
	return p.Role == catalog.RoleAdmin || (p.Role != RoleMirror && p.TenantID == tenantID)
}

// principal returns ctx's principal; an operation without one sees
// nothing.
func principal(ctx context.Context) *Principal {
	if p := PrincipalFrom(ctx); p != nil {
		return p
	}
	return &Principal{}
}

// visible returns err when the principal of ctx may not see tenantID's
// object kind/id.
func visible(ctx context.Context, tenantID, kind, id string) error {
	if !principal(ctx).CanSeeTenant(tenantID) {
		return catalog.NotFound(kind, id)
	}
	return nil
}

// checkID answers a malformed id with a clear 404 without a store lookup.
func checkID(prefix, kind, id string) error {
	if !catalog.ValidID(prefix, id) {
		return catalog.NotFound(kind, id)
	}
	return nil
}

// ofTenant lists a page of a tenant's objects once the principal may see
// the tenant.
func ofTenant[T any](ctx context.Context, a *App, tenantID string, pg store.Page, list func(context.Context, string, store.Page) ([]T, string, error)) ([]T, string, error) {
	if _, err := a.Tenant(ctx, tenantID); err != nil {
		return nil, "", err
	}
	return list(ctx, tenantID, pg.Normalize())
}

// load reads a kind of object by id (a malformed id is not looked up) and
// hides it unless the principal may see the tenant it belongs to.
func load[T any](ctx context.Context, prefix, kind, id string, get func(context.Context, string) (T, error), tenant func(T) string) (T, error) {
	var zero T
	if err := checkID(prefix, kind, id); err != nil {
		return zero, err
	}
	v, err := get(ctx, id)
	if err != nil {
		return zero, err
	}
	if err := visible(ctx, tenant(v), kind, id); err != nil {
		return zero, err
	}
	return v, nil
}

// TokenRole is the role of p's token as stored: catalog.RoleAdminRO or
// catalog.RoleTenantRO for a read-only principal, else p.Role (the
// console's roles are these).
func (p *Principal) TokenRole() string {
	switch {
	case p.ReadOnly && p.Role == catalog.RoleAdmin:
		return catalog.RoleAdminRO
	case p.ReadOnly && p.Role == catalog.RoleTenant:
		return catalog.RoleTenantRO
	}
	return p.Role
}
