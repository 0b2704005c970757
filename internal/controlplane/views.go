package controlplane

import (
	"context"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// Read-only views for the console: what the API gives through several
// calls, gathered in one, with the same visibility rules.

// LatestSnapshotHead returns the tenant's newest snapshot without its
// envelope (ENOTFOUND when it has none yet).
func (a *App) LatestSnapshotHead(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	if _, err := a.Tenant(ctx, tenantID); err != nil {
		return nil, err
	}
	return a.latestHead(ctx, tenantID)
}

// ReleaseTenants lists the tenants whose latest snapshot lists the
// release: the ones revoking it affects (admins only see every tenant; a
// tenant principal sees at most its own).
func (a *App) ReleaseTenants(ctx context.Context, releaseID string) ([]*catalog.Tenant, error) {
	if _, err := a.Release(ctx, releaseID); err != nil {
		return nil, err
	}
	var out []*catalog.Tenant
	pg := store.Page{Limit: store.MaxLimit}
	for {
		ts, next, err := a.Tenants(ctx, pg)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			v, err := a.view(ctx, t.TenantID)
			if catalog.ErrorCode(err) == catalog.ENOTFOUND {
				continue // no snapshot yet
			}
			if err != nil {
				return nil, err
			}
			if _, ok := v.releases[releaseID]; ok {
				out = append(out, t)
			}
		}
		if next == "" {
			return out, nil
		}
		pg.Cursor = next
	}
}
