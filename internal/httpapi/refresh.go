package httpapi

import (
	"context"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// RefreshSnapshots builds a new snapshot for every active tenant whose
// latest one expires within before, so mirrors never go stale just because
// nobody published: an offline site keeps getting fresh signatures with
// every bundle or sync. Tenants with no snapshot yet are left alone (the
// vendor decides when a tenant goes live). It returns how many it built.
func (s *Server) RefreshSnapshots(ctx context.Context, before time.Duration) (int, error) {
	s.once.Do(s.init)
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "snapshot-refresh"})
	built := 0
	p := store.Page{Limit: store.MaxLimit}
	for {
		tenants, next, err := s.Store.Tenants(ctx, p)
		if err != nil {
			return built, err
		}
		for _, t := range tenants {
			if t.Status != catalog.TenantActive {
				continue
			}
			head, err := s.Store.LatestSnapshotHead(ctx, t.TenantID)
			if catalog.ErrorCode(err) == catalog.ENOTFOUND {
				continue
			}
			if err != nil {
				return built, err
			}
			if head.ExpiresAt.Sub(s.now()) > before {
				continue
			}
			snap, err := BuildSnapshot(ctx, s.Store, s.Keys.Signers(), t.TenantID, s.now(), s.Config.SnapshotTTL)
			if err != nil {
				return built, err
			}
			built++
			s.Log.Info("snapshot refreshed before expiry", "tenant", t.TenantID, "sequence", snap.Sequence, "expires_at", snap.ExpiresAt)
		}
		if next == "" {
			return built, nil
		}
		p.Cursor = next
	}
}
