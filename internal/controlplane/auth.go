package controlplane

import (
	"context"
	"crypto/subtle"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
)

var errUnauthorized = catalog.Errorf(catalog.EUNAUTHORIZED, "missing or invalid bearer token")

// Authenticate resolves a bearer secret (an API token or a mirror
// credential) to a principal. The lookup is by hash; the stored hash is
// then compared in constant time so that no comparison on secret material
// short-circuits.
func (a *App) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	if secret == "" || len(secret) > 256 {
		return nil, errUnauthorized
	}
	hash := HashSecret(secret)
	if strings.HasPrefix(secret, credentialPrefix) {
		m, err := a.store.MirrorByCredentialHash(ctx, hash)
		if err != nil || subtle.ConstantTimeCompare([]byte(m.CredentialHash), []byte(hash)) != 1 {
			return nil, errUnauthorized
		}
		if m.Status == catalog.MirrorInactive {
			return nil, catalog.Errorf(catalog.EUNAUTHORIZED, "mirror is deactivated")
		}
		if err := a.tenantActive(ctx, m.TenantID); err != nil {
			return nil, err
		}
		return &Principal{Role: RoleMirror, TenantID: m.TenantID, TokenID: m.MirrorID, Mirror: m}, nil
	}
	return a.TokenPrincipal(ctx, hash)
}

// TokenPrincipal resolves an API token by its hash (HashSecret of the
// secret) with the same checks as Authenticate. The console re-checks a
// session's token with it on every request, keeping the hash rather than
// the secret.
func (a *App) TokenPrincipal(ctx context.Context, hash string) (*Principal, error) {
	t, err := a.store.TokenByHash(ctx, hash)
	if err != nil || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
		return nil, errUnauthorized
	}
	if t.Role != catalog.RoleAdmin {
		if err := a.tenantActive(ctx, t.TenantID); err != nil {
			return nil, err
		}
	}
	return &Principal{Role: t.Role, TenantID: t.TenantID, TokenID: t.TokenID}, nil
}

// tenantActive refuses the credentials of a tenant the vendor suspended
// (403: they come back when it is reactivated) or deleted (401: they never
// work again), so its update checks, downloads, leases and mirror syncs
// stop at once rather than at the snapshot's expiry.
func (a *App) tenantActive(ctx context.Context, tenantID string) error {
	t, err := a.store.Tenant(ctx, tenantID)
	switch {
	case catalog.ErrorCode(err) == catalog.ENOTFOUND:
		return errUnauthorized
	case err != nil:
		return err
	case t.Status == catalog.TenantActive:
		return nil
	case t.Status == catalog.TenantSuspended:
		return catalog.Errorf(catalog.EFORBIDDEN, "tenant is suspended")
	default:
		return catalog.Errorf(catalog.EUNAUTHORIZED, "tenant is %s", t.Status)
	}
}
