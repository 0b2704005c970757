package controlplane

import "time"

// Retention is the policy for old snapshots and TUF metadata versions
// (docs/metadata.md, "Retention").
type Retention struct {
	// Keep is how many of a tenant's newest snapshots (and versions of
	// each TUF role) are always kept (default 10; the newest is kept
	// whatever the setting).
	Keep int
	// MirrorMaxAge bounds how long a mirror's last report pins older
	// snapshots: a mirror silent for longer pins nothing (default 30
	// days).
	MirrorMaxAge time.Duration
	// Disabled turns pruning off.
	Disabled bool
}

func (r *Retention) defaults() {
	if r.Keep <= 0 {
		r.Keep = 10
	}
	if r.MirrorMaxAge <= 0 {
		r.MirrorMaxAge = 30 * 24 * time.Hour
	}
}
