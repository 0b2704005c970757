package controlplane

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

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
	now := a.now()
	if why := t.Usable(now); why != "" {
		return nil, catalog.Errorf(catalog.EUNAUTHORIZED, "%s", why)
	}
	role, readOnly := catalog.BaseRole(t.Role)
	if role != catalog.RoleAdmin {
		if err := a.tenantActive(ctx, t.TenantID); err != nil {
			return nil, err
		}
	}
	a.touch(ctx, t, now)
	return &Principal{Role: role, ReadOnly: readOnly, TenantID: t.TenantID, TokenID: t.TokenID}, nil
}

// touch records a use of t when its stored last_used_at is older than
// catalog.TokenTouchEvery: at most one write a minute per token on each
// instance (the store skips it when another instance wrote it within the
// minute), never one per request. A failure is logged, not answered.
func (a *App) touch(ctx context.Context, t *catalog.Token, now time.Time) {
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < catalog.TokenTouchEvery {
		return
	}
	if last, ok := a.touched.Load(t.TokenID); ok && now.Sub(last.(time.Time)) < catalog.TokenTouchEvery {
		return
	}
	a.touched.Store(t.TokenID, now)
	if err := a.store.TouchToken(context.WithoutCancel(ctx), t.TokenID, now); err != nil {
		a.log.Warn("record token use", "token_id", t.TokenID, "err", err)
	}
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
