package httpapi

import (
	"context"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// IssueToken creates an admin or tenant token and returns its secret, which
// exists only in this return value: the store keeps its hash.
func IssueToken(ctx context.Context, st store.Store, role, tenantID, name string, now time.Time) (string, *catalog.Token, error) {
	if err := catalog.ValidateEnum("role", role, []string{catalog.RoleAdmin, catalog.RoleTenant}); err != nil {
		return "", nil, err
	}
	switch role {
	case catalog.RoleTenant:
		if tenantID == "" {
			return "", nil, catalog.Invalid("tenant_id", "is required for a tenant token")
		}
		if !catalog.ValidID(catalog.PrefixTenant, tenantID) {
			return "", nil, catalog.NotFound("tenant", tenantID)
		}
		t, err := st.Tenant(ctx, tenantID)
		if err != nil {
			return "", nil, err
		}
		if t.Status == catalog.TenantDeleted {
			return "", nil, catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", tenantID)
		}
	case catalog.RoleAdmin:
		if tenantID != "" {
			return "", nil, catalog.Invalid("tenant_id", "must be empty for an admin token")
		}
	}
	if len(name) > 200 {
		return "", nil, catalog.Invalid("name", "must be at most 200 bytes")
	}
	secret := NewToken()
	t := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: role, TenantID: tenantID, Name: name, Hash: HashSecret(secret), CreatedAt: now}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

func storeAuditFilter(tenantID, eventType string) store.AuditFilter {
	return store.AuditFilter{TenantID: tenantID, EventType: eventType}
}
