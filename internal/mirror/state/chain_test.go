package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
)

// TestVerify_AlongTheChain: the tenant's verified metadata (the manifest
// the TUF workflow assembles) -> mirror key listed in it -> lease token
// the mirror's ledger issued. The metadata's own verification is the TUF
// client's (internal/tuf attack tests).
func TestVerify_AlongTheChain(t *testing.T) {
	m := testManifest(t)
	l, _, _ := newTestLedger(t)
	ctx := context.Background()
	// The mirror serves from what it verified, as it would after a sync.
	_, tok, err := l.Acquire(ctx, m, entAuto, "machine", "host-9", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	withoutMirror1 := testManifest(t)
	withoutMirror1.MirrorKeys = withoutMirror1.MirrorKeys[1:]

	cases := []struct {
		name      string
		m         *snapshot.Manifest
		tenant    string
		now       time.Time
		wantLease error // from license.Verify
	}{
		{"valid chain", m, tenantA, t0.Add(time.Minute), nil},
		{"metadata no longer lists the mirror key", withoutMirror1, tenantA, t0, license.ErrUnknownMirrorKey},
		{"lease expired", m, tenantA, t0.Add(3*time.Hour + time.Second), license.ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := license.NewTUFVerifier(vendorKeys(), tc.tenant, tc.m)
			if err != nil {
				t.Fatalf("NewTUFVerifier: %v", err)
			}
			c, err := license.Verify(tok, v, tc.now)
			if tc.wantLease != nil {
				if !errors.Is(err, tc.wantLease) {
					t.Fatalf("Verify: got %v, want %v", err, tc.wantLease)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.MirrorID() != mirror1 || c.SubjectID != "host-9" || c.ProductID != product1 {
				t.Errorf("claims: got %+v", c)
			}
		})
	}
}
