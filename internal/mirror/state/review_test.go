package state

import (
	"context"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// When a newer snapshot delegates fewer seats to this mirror, leases
// already out must drain down to the new limit: renewing them all would
// keep the mirror above its mirror_seats forever, and the vendor may have
// handed the difference to the control plane.
func TestLedgerAcquire_RenewalRespectsReducedSeats(t *testing.T) {
	l, _, _ := newTestLedger(t)
	ctx := context.Background()
	m1 := testManifest(t) // entAuto: 10 seats for mirror1, 1h leases
	subjects := []string{"a", "b", "c"}
	for _, s := range subjects {
		if _, _, err := l.Acquire(ctx, m1, entAuto, "machine", s, "", t0); err != nil {
			t.Fatalf("acquire %s: %v", s, err)
		}
	}
	m2 := testManifest(t)
	m2.Sequence = 2
	m2.Entitlements[0].Policy = policyJSON(t, map[string]any{
		"max_seats": 20, "lease_ttl": "1h", "mirror_seats": map[string]int{mirror1: 1},
	})
	renewed := 0
	for _, s := range subjects {
		_, _, err := l.Acquire(ctx, m2, entAuto, "machine", s, "", t0.Add(time.Minute))
		switch catalog.ErrorCode(err) {
		case "":
			renewed++
		case catalog.ECONFLICT:
		default:
			t.Fatalf("renew %s: %v", s, err)
		}
	}
	if renewed != 0 {
		t.Errorf("renewals with 3 leases out and 1 seat: got %d, want 0", renewed)
	}
	// Once the original leases ran out, exactly the new limit is held.
	at := t0.Add(time.Hour + 30*time.Second)
	for _, s := range subjects {
		l.Acquire(ctx, m2, entAuto, "machine", s, "", at)
	}
	if got, _ := l.ActiveLeases(ctx, entAuto, at); got != 1 {
		t.Errorf("ActiveLeases after the old leases expired: got %d, want 1", got)
	}
	// At the limit, the holder still renews.
	holder := ""
	for _, s := range subjects {
		if _, _, err := l.Acquire(ctx, m2, entAuto, "machine", s, "", at.Add(time.Minute)); err == nil {
			holder = s
		}
	}
	if holder == "" {
		t.Errorf("the one lease holder could not renew at the limit")
	}
}
