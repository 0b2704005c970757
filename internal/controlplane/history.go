package controlplane

import (
	"context"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/history"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/kv"
)

// historyOf is the console's time series on the store's own backend; nil
// when the store is not on store/kv.
func (a *App) historyOf() *history.History {
	if b, ok := a.store.(interface{ Backend() kv.Backend }); ok {
		return history.New(b.Backend())
	}
	return nil
}

// RecordHistory appends one point to every rollout's series (except
// rollouts completed or killed more than history.MaxAge ago) (its
// percentage and its release's install and check totals from the fleet
// reports, with the product's successful installs for the adoption share)
// and to every entitlement's (seats assigned, leases active),
// at the App's now (housekeeping, and after a report import when the
// caller wants the charts current). Each series is bounded (history.MaxPoints,
// history.MaxAge). It returns how many points it wrote.
func (a *App) RecordHistory(ctx context.Context) (int, error) {
	h := a.historyOf()
	if h == nil || a.fleet == nil {
		return 0, nil
	}
	now := a.now()
	n := 0
	err := eachPage(ctx, a.store.Products, func(p *catalog.Product) error {
		var productOK int64
		counted := false
		return eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
			return a.store.Rollouts(ctx, p.ProductID, pg)
		}, func(ro *catalog.Rollout) error {
			if (ro.Status == catalog.RolloutCompleted || ro.Status == catalog.RolloutKilled) && now.Sub(ro.UpdatedAt) > history.MaxAge {
				return nil // finished long ago: its series has aged out
			}
			if !counted {
				err := eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Release, string, error) {
					return a.store.Releases(ctx, p.ProductID, pg)
				}, func(rel *catalog.Release) error {
					t, err := a.releaseTotals(ctx, rel.ReleaseID)
					productOK += t.InstallsOK
					return err
				})
				if err != nil {
					return err
				}
				counted = true
			}
			pt, err := a.releaseTotals(ctx, ro.ReleaseID)
			if err != nil {
				return err
			}
			pt.At, pt.Percentage, pt.InstallsProduct = now, ro.Percentage, productOK
			n++
			return h.Append(ctx, history.Rollout, ro.RolloutID, pt)
		})
	})
	if err != nil {
		return n, fmt.Errorf("record rollout history: %w", err)
	}
	err = eachPage(ctx, a.store.Tenants, func(t *catalog.Tenant) error {
		return eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Entitlement, string, error) {
			return a.store.Entitlements(ctx, t.TenantID, pg)
		}, func(e *catalog.Entitlement) error {
			var seats int64
			err := eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
				return a.store.Seats(ctx, e.EntitlementID, pg)
			}, func(s *catalog.SeatAssignment) error {
				if s.RevokedAt == nil {
					seats++
				}
				return nil
			})
			if err != nil {
				return err
			}
			leases := int64(-1) // unknown on a store that cannot count them
			if c, ok := a.store.(leaseCounter); ok {
				k, err := c.ActiveLeaseCount(ctx, e.EntitlementID, now)
				if err != nil {
					return err
				}
				leases = int64(k)
			}
			n++
			return h.Append(ctx, history.Entitlement, e.EntitlementID, history.Point{At: now, Seats: seats, Leases: leases})
		})
	})
	if err != nil {
		return n, fmt.Errorf("record entitlement history: %w", err)
	}
	return n, nil
}

// releaseTotals sums the fleet aggregates of a release over every mirror
// and store that reported it.
func (a *App) releaseTotals(ctx context.Context, releaseID string) (history.Point, error) {
	var pt history.Point
	srcs, err := a.fleet.Sources(ctx, releaseID)
	if err != nil {
		return pt, err
	}
	for _, s := range srcs {
		for _, ag := range s.Aggregates {
			if ag.ReleaseID != releaseID {
				continue
			}
			switch ag.Type {
			case fleet.TypeInstallOK:
				pt.InstallsOK += ag.Count
			case fleet.TypeInstallFailed:
				pt.InstallsFailed += ag.Count
			case fleet.TypeCheck:
				pt.Checks += ag.Count
			}
		}
	}
	return pt, nil
}

// RolloutHistory is a rollout's recorded series, oldest first (the
// principal must be able to read the rollout).
func (a *App) RolloutHistory(ctx context.Context, rolloutID string) ([]history.Point, error) {
	ro, err := a.Rollout(ctx, rolloutID)
	if err != nil {
		return nil, err
	}
	h := a.historyOf()
	if h == nil {
		return nil, nil
	}
	return h.Points(ctx, history.Rollout, ro.RolloutID)
}

// EntitlementHistory is an entitlement's recorded series, oldest first
// (the principal must be able to read the entitlement).
func (a *App) EntitlementHistory(ctx context.Context, entitlementID string) ([]history.Point, error) {
	e, err := a.Entitlement(ctx, entitlementID)
	if err != nil {
		return nil, err
	}
	h := a.historyOf()
	if h == nil {
		return nil, nil
	}
	return h.Points(ctx, history.Entitlement, e.EntitlementID)
}

// leaseCounter is a store that counts an entitlement's active leases
// (store/kv, so both bbolt and PostgreSQL).
type leaseCounter interface {
	ActiveLeaseCount(ctx context.Context, entitlementID string, t time.Time) (int, error)
}

// ActiveLeases counts an entitlement's online leases active now (-1 when
// the store cannot count them), scoped like Entitlement.
func (a *App) ActiveLeases(ctx context.Context, entitlementID string) (int, error) {
	if _, err := a.Entitlement(ctx, entitlementID); err != nil {
		return 0, err
	}
	c, ok := a.store.(leaseCounter)
	if !ok {
		return -1, nil
	}
	return c.ActiveLeaseCount(ctx, entitlementID, a.now())
}
