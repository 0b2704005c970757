package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
)

// BuildSnapshot builds, signs and stores the next snapshot of a tenant.
// The store assigns the sequence inside its transaction, so concurrent
// builds never share one.
func BuildSnapshot(ctx context.Context, st store.Store, signers []snapshot.Signer, tenantID string, now time.Time, ttl time.Duration) (*catalog.Snapshot, error) {
	if len(signers) == 0 {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key: run `controlplane keys generate`")
	}
	return st.CreateSnapshot(ctx, tenantID, func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if in.Tenant.Status != catalog.TenantActive {
			return nil, catalog.Errorf(catalog.ECONFLICT, "tenant %s is %s", tenantID, in.Tenant.Status)
		}
		id := catalog.NewID(catalog.PrefixSnapshot)
		m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: id, Now: now, TTL: ttl})
		env, err := snapshot.Sign(m, signers)
		if err != nil {
			return nil, err
		}
		return &catalog.Snapshot{
			SnapshotID: id, TenantID: tenantID, Sequence: m.Sequence, CreatedAt: m.CreatedAt,
			ExpiresAt: m.ExpiresAt, Hash: snapshot.Hash(env), Envelope: env,
		}, nil
	})
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	snap, err := BuildSnapshot(r.Context(), s.Store, s.Keys.Signers(), t.TenantID, s.now(), s.Config.SnapshotTTL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, snap)
	return nil
}

// getSnapshot returns the envelope bytes exactly as stored.
func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixSnapshot, "snapshot")
	if err != nil {
		return err
	}
	snap, err := s.Store.Snapshot(r.Context(), id)
	if err != nil {
		return err
	}
	if !p.canSeeTenant(snap.TenantID) {
		return catalog.NotFound("snapshot", id)
	}
	writeEnvelope(w, snap)
	return nil
}

func writeEnvelope(w http.ResponseWriter, snap *catalog.Snapshot) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(snap.Envelope)))
	h.Set("ETag", `"`+snap.Hash+`"`)
	h.Set("Outpost-Snapshot-Sequence", strconv.FormatInt(snap.Sequence, 10))
	w.WriteHeader(http.StatusOK)
	w.Write(snap.Envelope)
}

// latestHead returns the tenant's newest snapshot without its envelope, or
// ENOTFOUND.
func (s *Server) latestHead(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	snap, err := s.Store.LatestSnapshotHead(ctx, tenantID)
	if err != nil {
		if catalog.ErrorCode(err) == catalog.ENOTFOUND {
			return nil, catalog.Errorf(catalog.ENOTFOUND, "tenant has no snapshot yet")
		}
		return nil, err
	}
	return snap, nil
}
