package state

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestLedgerSweep_PurgesExpired: the sweep takes every expired lease out
// of the seat index (bounded by its limit) without touching live ones or
// the lease records, and the counters stay what ActiveLeases reports.
func TestLedgerSweep_PurgesExpired(t *testing.T) {
	l, db, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	// entOne: 10-minute leases; entAuto: 1-hour leases.
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, _, err := l.Acquire(ctx, m, entAuto, "machine", fmt.Sprintf("old-%d", i), "", t0); err != nil {
			t.Fatal(err)
		}
	}
	live := t0.Add(30 * time.Minute)
	if _, _, err := l.Acquire(ctx, m, entAuto, "machine", "live", "", live); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(61 * time.Minute) // all but "live" expired
	indexed := func() int {
		n := 0
		if err := db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketActive).Stats().KeyN; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		name        string
		limit, want int
		left        int
	}{
		{"bounded", 2, 2, 4},
		{"the rest", 0, 3, 1},
		{"nothing left", 0, 0, 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n, err := l.Sweep(ctx, at, st.limit)
			if err != nil {
				t.Fatal(err)
			}
			if n != st.want || indexed() != st.left {
				t.Fatalf("Sweep = %d with %d index entries left, want %d and %d", n, indexed(), st.want, st.left)
			}
		})
	}
	for _, c := range []struct {
		ent  string
		want int
	}{{entOne, 0}, {entAuto, 1}} {
		if got, err := l.ActiveLeases(ctx, c.ent, at); err != nil || got != c.want {
			t.Errorf("ActiveLeases(%s) = %d, %v; want %d", c.ent, got, err, c.want)
		}
		if got := countOf(t, db, c.ent); got != c.want {
			t.Errorf("counter of %s = %d, want %d", c.ent, got, c.want)
		}
	}
	// Alice's lease was swept: she takes a new lease, and bob has no seat.
	lease, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", at)
	if err != nil {
		t.Fatal(err)
	}
	if got := countOf(t, db, entOne); got != 1 {
		t.Errorf("counter after a new lease = %d, want 1 (lease %s)", got, lease.LeaseID)
	}
}

// TestLedger_CountsRebuiltOnOpen: a mirror.db from before license_counts
// gets its counters from the seat index when the ledger opens.
func TestLedger_CountsRebuiltOnOpen(t *testing.T) {
	l, db, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := l.Acquire(ctx, m, entAuto, "machine", fmt.Sprintf("m-%d", i), "", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCounts) }); err != nil {
		t.Fatal(err)
	}
	l2, err := mustState(t, db).Ledger(mirror1, mirror1Key, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if got := countOf(t, db, entAuto); got != 3 {
		t.Fatalf("rebuilt counter = %d, want 3", got)
	}
	if got, err := l2.ActiveLeases(ctx, entAuto, t0); err != nil || got != 3 {
		t.Fatalf("ActiveLeases = %d, %v; want 3", got, err)
	}
}

func countOf(t *testing.T, db *bolt.DB, eid string) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bolt.Tx) error {
		n = (&Ledger{}).count(tx, eid)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
