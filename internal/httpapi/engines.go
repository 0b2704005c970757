package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/update"
)

// tenantView is what the server derives from a tenant's latest snapshot:
// the manifest and which channels reference each artifact through an
// ACTIVE release. Rebuilt when a newer snapshot appears.
type tenantView struct {
	snap     *catalog.Snapshot
	manifest *snapshot.Manifest
	channels map[string]map[string]bool // artifact_id -> channels
	engine   *update.Engine
}

type engineCache struct {
	mu sync.Mutex
	m  map[string]*tenantView
}

// view returns the tenant's current view, rebuilding it if the latest
// snapshot changed. The control plane trusts its own stored envelopes, so
// it decodes rather than re-verifies them.
func (s *Server) view(ctx context.Context, tenantID string) (*tenantView, error) {
	head, err := s.latestHead(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	s.engines.mu.Lock()
	v := s.engines.m[tenantID]
	s.engines.mu.Unlock()
	if v != nil && v.snap.SnapshotID == head.SnapshotID {
		return v, nil
	}
	snap, err := s.Store.Snapshot(ctx, head.SnapshotID)
	if err != nil {
		return nil, err
	}
	m, err := decodeEnvelope(snap.Envelope)
	if err != nil {
		return nil, fmt.Errorf("decode snapshot %s: %w", snap.SnapshotID, err)
	}
	v = &tenantView{snap: snap, manifest: m, channels: map[string]map[string]bool{}}
	for _, rel := range m.Releases {
		if rel.Status != catalog.ReleaseActive {
			continue
		}
		for _, ra := range rel.Artifacts {
			if v.channels[ra.ArtifactID] == nil {
				v.channels[ra.ArtifactID] = map[string]bool{}
			}
			v.channels[ra.ArtifactID][rel.Channel] = true
		}
	}
	if v.engine, err = update.New(m); err != nil {
		return nil, fmt.Errorf("index snapshot %s: %w", snap.SnapshotID, err)
	}
	s.engines.mu.Lock()
	if s.engines.m == nil {
		s.engines.m = map[string]*tenantView{}
	}
	if old := s.engines.m[tenantID]; old == nil || old.snap.Sequence <= snap.Sequence {
		s.engines.m[tenantID] = v
	}
	s.engines.mu.Unlock()
	return v, nil
}

func decodeEnvelope(env []byte) (*snapshot.Manifest, error) {
	var e snapshot.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, err
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
