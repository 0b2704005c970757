package license

import (
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// NewChainVerifier verifies a snapshot envelope against the vendor's
// trust (keys, threshold, tenant) and returns a verifier that accepts
// vendor-signed tokens and tokens signed by the mirror keys that snapshot
// lists: the chain vendor key -> snapshot -> mirror key -> lease. held may
// be nil; pass the client's held snapshot to refuse rolled-back ones.
// The manifest may alias envelope, so the caller must not modify it.
func NewChainVerifier(t snapshot.Trust, envelope []byte, held *snapshot.Held, now time.Time) (*Verifier, error) {
	m, err := snapshot.Verify(envelope, t, held, now)
	if err != nil {
		return nil, fmt.Errorf("new lease verifier: snapshot: %w", err)
	}
	// A clock behind the snapshot's signing would accept tokens past
	// their expiry as measured by any right clock.
	if err := snapshot.CheckClock(m, now); err != nil {
		return nil, fmt.Errorf("new lease verifier: %w", err)
	}
	return NewVerifierFromManifest(t.Keys, t.TenantID, m)
}
