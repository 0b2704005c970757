package controlplane

import (
	"context"
	"encoding/json"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// TokenInput asks for an API token.
type TokenInput struct {
	Role     string `json:"role"` // one of catalog.TokenRoles
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	// TTLSeconds, when above 0, sets expires_at = created_at + TTL.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// maxTokenTTL bounds TokenInput.TTLSeconds (ten years).
const maxTokenTTL = 10 * 365 * 24 * 3600

// TokenCreated is a new token with its secret, which exists only here:
// the store keeps its hash.
type TokenCreated struct {
	*catalog.Token
	Secret string `json:"token"`
}

// CreateToken creates an API token of one of catalog.TokenRoles.
func (a *App) CreateToken(ctx context.Context, in TokenInput) (*TokenCreated, error) {
	if err := catalog.ValidateEnum("role", in.Role, catalog.TokenRoles); err != nil {
		return nil, err
	}
	switch base, _ := catalog.BaseRole(in.Role); base {
	case catalog.RoleTenant:
		if in.TenantID == "" {
			return nil, catalog.Invalid("tenant_id", "is required for a tenant token")
		}
		if err := checkID(catalog.PrefixTenant, "tenant", in.TenantID); err != nil {
			return nil, err
		}
		t, err := a.store.Tenant(ctx, in.TenantID)
		if err != nil {
			return nil, err
		}
		if t.Status == catalog.TenantDeleted {
			return nil, catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", in.TenantID)
		}
	case catalog.RoleAdmin:
		if in.TenantID != "" {
			return nil, catalog.Invalid("tenant_id", "must be empty for an admin token")
		}
	}
	if len(in.Name) > 200 {
		return nil, catalog.Invalid("name", "must be at most 200 bytes")
	}
	if in.TTLSeconds < 0 || in.TTLSeconds > maxTokenTTL {
		return nil, catalog.Invalid("ttl_seconds", "must be between 0 and %d", maxTokenTTL)
	}
	secret := NewToken()
	now := a.now()
	t := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: in.Role, TenantID: in.TenantID, Name: in.Name, Hash: HashSecret(secret), CreatedAt: now}
	if in.TTLSeconds > 0 {
		exp := now.Add(time.Duration(in.TTLSeconds) * time.Second)
		t.ExpiresAt = &exp
	}
	if err := a.store.CreateToken(ctx, t); err != nil {
		return nil, err
	}
	return &TokenCreated{Token: t, Secret: secret}, nil
}

// ListTokens lists API tokens: every one for an admin, a tenant's own for
// a tenant principal. Hashes never leave the store's JSON.
func (a *App) ListTokens(ctx context.Context, pg store.Page) ([]*catalog.Token, string, error) {
	p := principal(ctx)
	switch p.Role {
	case catalog.RoleAdmin:
		return a.store.Tokens(ctx, "", pg.Normalize())
	case catalog.RoleTenant:
		return a.store.Tokens(ctx, p.TenantID, pg.Normalize())
	}
	return nil, "", catalog.Errorf(catalog.EFORBIDDEN, "only API tokens may list tokens")
}

// RevokeToken revokes a token: an admin any, a tenant principal its own
// tenant's (another's is not_found). The next request with it fails on
// every control plane instance: authentication reads the store.
func (a *App) RevokeToken(ctx context.Context, id string) (*catalog.Token, error) {
	t, err := load(ctx, catalog.PrefixToken, "token", id, a.store.Token, func(t *catalog.Token) string { return t.TenantID })
	if err != nil {
		return nil, err
	}
	if t.TenantID == "" && principal(ctx).Role != catalog.RoleAdmin {
		return nil, catalog.NotFound("token", id)
	}
	return a.store.RevokeToken(ctx, t.TokenID, principal(ctx).TokenID)
}

// PublicKeys lists the vendor's signing keys.
func (a *App) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	return a.keys.PublicKeys(), nil
}

// named checks what tenants and products are made of: a name, an enum
// field (empty takes allowed[0]) and metadata, which it returns
// normalized.
func named(name string, value *string, field string, allowed []string, metadata json.RawMessage) (json.RawMessage, error) {
	if err := catalog.ValidateName("name", name); err != nil {
		return nil, err
	}
	if *value == "" {
		*value = allowed[0]
	}
	if err := catalog.ValidateEnum(field, *value, allowed); err != nil {
		return nil, err
	}
	return catalog.NormalizeMetadata("metadata", metadata)
}

// TenantInput creates a tenant.
type TenantInput struct {
	Name     string          `json:"name"`
	Status   string          `json:"status"` // default active
	Metadata json.RawMessage `json:"metadata"`
}

// CreateTenant creates a tenant.
func (a *App) CreateTenant(ctx context.Context, in TenantInput) (*catalog.Tenant, error) {
	md, err := named(in.Name, &in.Status, "status", []string{catalog.TenantActive, catalog.TenantSuspended}, in.Metadata)
	if err != nil {
		return nil, err
	}
	t := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: in.Name, Status: in.Status, CreatedAt: a.now(), Metadata: md}
	if err := a.store.CreateTenant(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Tenants lists tenants; a tenant principal sees exactly its own.
func (a *App) Tenants(ctx context.Context, pg store.Page) ([]*catalog.Tenant, string, error) {
	if p := principal(ctx); p.Role != catalog.RoleAdmin {
		t, err := a.Tenant(ctx, p.TenantID)
		if err != nil {
			return nil, "", err
		}
		return []*catalog.Tenant{t}, "", nil
	}
	return a.store.Tenants(ctx, pg.Normalize())
}

// Tenant returns a tenant the principal may see.
func (a *App) Tenant(ctx context.Context, id string) (*catalog.Tenant, error) {
	if err := checkID(catalog.PrefixTenant, "tenant", id); err != nil {
		return nil, err
	}
	if err := visible(ctx, id, "tenant", id); err != nil {
		return nil, err
	}
	return a.store.Tenant(ctx, id)
}

// TenantPatch changes a tenant; nil fields stay.
type TenantPatch struct {
	Name      *string         `json:"name"`
	Status    *string         `json:"status"`
	Metadata  json.RawMessage `json:"metadata"`
	Unchanged Unchanged       `json:"-"`
}

// UpdateTenant changes a tenant's name, status or metadata. A deleted
// tenant no longer changes.
func (a *App) UpdateTenant(ctx context.Context, id string, in TenantPatch) (*catalog.Tenant, error) {
	if err := checkID(catalog.PrefixTenant, "tenant", id); err != nil {
		return nil, err
	}
	if in.Name != nil {
		if err := catalog.ValidateName("name", *in.Name); err != nil {
			return nil, err
		}
	}
	if in.Status != nil {
		if err := catalog.ValidateEnum("status", *in.Status, []string{catalog.TenantActive, catalog.TenantSuspended, catalog.TenantDeleted}); err != nil {
			return nil, err
		}
	}
	var md json.RawMessage
	if in.Metadata != nil {
		var err error
		if md, err = catalog.NormalizeMetadata("metadata", in.Metadata); err != nil {
			return nil, err
		}
	}
	return a.store.UpdateTenant(ctx, id, func(t *catalog.Tenant) error {
		if err := in.Unchanged.check(t); err != nil {
			return err
		}
		if t.Status == catalog.TenantDeleted {
			return catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", id)
		}
		if in.Name != nil {
			t.Name = *in.Name
		}
		if in.Status != nil {
			t.Status = *in.Status
		}
		if md != nil {
			t.Metadata = md
		}
		return nil
	})
}

// AuditEvents lists audit events; a tenant principal sees its tenant's
// only.
func (a *App) AuditEvents(ctx context.Context, f store.AuditFilter, pg store.Page) ([]*catalog.AuditEvent, string, error) {
	if p := principal(ctx); p.Role != catalog.RoleAdmin {
		if f.TenantID != "" && f.TenantID != p.TenantID {
			return nil, "", nil
		}
		f.TenantID = p.TenantID
	}
	return a.store.AuditEvents(ctx, f, pg.Normalize())
}
