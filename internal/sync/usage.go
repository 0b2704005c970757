package sync

import (
	"context"
	"fmt"

	"github.com/outpost/outpost/internal/mirror/state"
)

// RefreshUsage recomputes the cache summary /v1/status answers from (a
// walk of the cache and a stat per needed artifact) and stores it in the
// state. The syncer calls it after every commit and GC; the daemon once
// when it opens.
func (s *Syncer) RefreshUsage(ctx context.Context) (state.CacheUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshUsage(ctx)
}

// refreshUsage is RefreshUsage with s.mu held.
func (s *Syncer) refreshUsage(ctx context.Context) (state.CacheUsage, error) {
	u := state.CacheUsage{At: s.cfg.Now().UTC()}
	var err error
	if u.Blobs, u.Bytes, err = s.cache.Usage(ctx); err != nil {
		return u, fmt.Errorf("cache usage: %w", err)
	}
	var h *state.Held
	if s.cfg.TUF != nil {
		// The held manifest as the TUF sync keeps it in memory.
		rec, err := s.st.CurrentRecord()
		if err == nil {
			h, err = s.heldTUF(rec)
		}
		if err != nil {
			return u, fmt.Errorf("cache usage: %w", err)
		}
	} else if h, err = s.st.Current(); err != nil {
		return u, fmt.Errorf("cache usage: %w", err)
	}
	if h != nil {
		for _, a := range state.Needed(h.Manifest, h.Channels) {
			if !s.cache.Has(a.SHA256, a.SizeBytes) {
				u.Missing++
			}
		}
	}
	u.Quarantined = s.cache.Quarantined()
	if err := s.st.SetCacheUsage(u); err != nil {
		return u, fmt.Errorf("cache usage: %w", err)
	}
	return u, nil
}

// noteUsage refreshes the summary after a change, logging a failure (the
// change itself stands).
func (s *Syncer) noteUsage(ctx context.Context) {
	if _, err := s.refreshUsage(context.WithoutCancel(ctx)); err != nil {
		s.cfg.Logger.Warn("cache summary not refreshed", "err", err)
	}
}
