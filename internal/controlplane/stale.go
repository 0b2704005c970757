package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// EventMirrorStale is the audit event of a registered mirror that has not
// synced or reported for longer than Config.MirrorStaleAfter; its webhook
// event is mirror.stale.
const EventMirrorStale = "mirror.stale"

// EventMirrorRecovered is the audit event of a mirror heard from again
// (a sync report) after a silence longer than Config.MirrorStaleAfter;
// its webhook event is mirror.synced.
const EventMirrorRecovered = "mirror.recovered"

// DefaultMirrorStaleAfter is Config.MirrorStaleAfter's default.
const DefaultMirrorStaleAfter = 24 * time.Hour

// MirrorStale is one mirror CheckStaleMirrors found stale.
type MirrorStale struct {
	MirrorID string    `json:"mirror_id"`
	TenantID string    `json:"tenant_id"`
	LastSeen time.Time `json:"last_seen_at"`
	// Recorded is false when this stale period was already recorded (by
	// an earlier round or another instance).
	Recorded bool `json:"recorded"`
}

// CheckStaleMirrors records a mirror.stale audit event (and so a webhook)
// for every active mirror whose last contact (its last sync report
// (ReportSync), or the newest fleet report that came back from it,
// online or carried; its registration when it never made either) is
// older than Config.MirrorStaleAfter. One event per stale period: the
// event's dedup key is the mirror and its last contact, so later rounds,
// restarts and other instances add nothing until the mirror is heard from
// again and then falls silent again. A mirror that syncs again reports
// mirror.synced through its audit upload as usual. A negative
// MirrorStaleAfter turns the check off.
func (a *App) CheckStaleMirrors(ctx context.Context) ([]MirrorStale, error) {
	after := a.cfg.MirrorStaleAfter
	if after < 0 {
		return nil, nil
	}
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "mirror-watch"})
	reported := map[string]time.Time{}
	if a.fleet != nil {
		cs, err := a.fleet.Cursors(ctx)
		if err != nil {
			return nil, fmt.Errorf("stale mirrors: fleet reports: %w", err)
		}
		for _, c := range cs {
			if c.AsOf.After(reported[c.MirrorID]) {
				reported[c.MirrorID] = c.AsOf
			}
		}
	}
	now := a.now()
	var out []MirrorStale
	err := eachPage(ctx, a.store.Tenants, func(t *catalog.Tenant) error {
		return eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Mirror, string, error) {
			return a.store.Mirrors(ctx, t.TenantID, pg)
		}, func(m *catalog.Mirror) error {
			if m.Status == catalog.MirrorInactive {
				return nil
			}
			seen, via := lastContact(m, reported[m.MirrorID])
			silent := now.Sub(seen)
			if silent <= after {
				return nil
			}
			payload, err := json.Marshal(map[string]any{
				"mirror_id": m.MirrorID, "tenant_id": m.TenantID, "name": m.Name,
				"last_seen_at": seen.UTC(), "last_seen_by": via, "last_sync_at": m.LastSyncAt,
				"last_snapshot_id": m.LastSnapshotID, "silent_for": silent.Round(time.Second).String(),
				"stale_after": after.String(),
			})
			if err != nil {
				return err
			}
			ev := &catalog.AuditEvent{TenantID: m.TenantID, EventType: EventMirrorStale, Payload: payload, CreatedAt: now}
			recorded, err := a.store.AppendAudit(ctx, ev, "mirror.stale:"+m.MirrorID+":"+seen.UTC().Format(time.RFC3339Nano))
			if err != nil {
				return fmt.Errorf("stale mirror %s: %w", m.MirrorID, err)
			}
			if recorded {
				a.log.Warn("mirror stale", "mirror", m.MirrorID, "tenant", m.TenantID, "last_seen_at", seen.UTC(), "by", via, "silent_for", silent.Round(time.Second))
			}
			out = append(out, MirrorStale{MirrorID: m.MirrorID, TenantID: m.TenantID, LastSeen: seen.UTC(), Recorded: recorded})
			return nil
		})
	})
	return out, err
}

// lastContact is when the control plane last heard from m: its last sync
// report, the newest fleet report that came back from it (reported,
// zero when none), or its registration; and which of them it was.
func lastContact(m *catalog.Mirror, reported time.Time) (time.Time, string) {
	seen, via := m.CreatedAt, "registered"
	if m.LastSyncAt != nil && m.LastSyncAt.After(seen) {
		seen, via = *m.LastSyncAt, "sync"
	}
	if reported.After(seen) {
		seen, via = reported, "fleet report"
	}
	return seen, via
}

// reportedAt is the newest fleet report that came back from mirrorID
// (zero when none, or without a fleet sink).
func (a *App) reportedAt(ctx context.Context, mirrorID string) (time.Time, error) {
	var at time.Time
	if a.fleet == nil {
		return at, nil
	}
	cs, err := a.fleet.Cursors(ctx)
	if err != nil {
		return at, err
	}
	for _, c := range cs {
		if c.MirrorID == mirrorID && c.AsOf.After(at) {
			at = c.AsOf
		}
	}
	return at, nil
}

// noteRecovered records mirror.recovered (webhook mirror.synced) when m,
// which is reporting a sync at now, had been silent for longer than
// Config.MirrorStaleAfter. It runs before the report is stored, keyed by
// the contact that ended the silence, so a crash in between repeats
// nothing and loses nothing: the retried report finds the same silence.
// Best effort: a failure is logged, never the report's.
func (a *App) noteRecovered(ctx context.Context, m *catalog.Mirror, now time.Time) {
	after := a.cfg.MirrorStaleAfter
	if after < 0 || m.Status == catalog.MirrorInactive {
		return
	}
	if seen, _ := lastContact(m, time.Time{}); now.Sub(seen) <= after {
		return
	}
	// Only now, rarely, look at the fleet reports too.
	reported, err := a.reportedAt(ctx, m.MirrorID)
	if err != nil {
		a.log.Warn("mirror recovery not checked", "mirror", m.MirrorID, "err", err)
		return
	}
	seen, via := lastContact(m, reported)
	if now.Sub(seen) <= after {
		return
	}
	payload, err := json.Marshal(map[string]any{
		"mirror_id": m.MirrorID, "tenant_id": m.TenantID, "name": m.Name, "recovered": true,
		"last_seen_at": seen.UTC(), "last_seen_by": via, "silent_for": now.Sub(seen).Round(time.Second).String(),
		"stale_after": after.String(),
	})
	if err == nil {
		ev := &catalog.AuditEvent{TenantID: m.TenantID, EventType: EventMirrorRecovered, Payload: payload, CreatedAt: now}
		_, err = a.store.AppendAudit(ctx, ev, "mirror.recovered:"+m.MirrorID+":"+seen.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		a.log.Warn("mirror recovery not recorded", "mirror", m.MirrorID, "err", err)
		return
	}
	a.log.Info("mirror heard from again", "mirror", m.MirrorID, "silent_for", now.Sub(seen).Round(time.Second))
}
