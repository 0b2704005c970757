package kv

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
)

// TestLeaseCounters_RebuiltOnOpen: a store written before the counters
// existed (no lease_counts, seat_counts, idx_lease_expiry, no marker) gets
// them rebuilt from its leases and seats once, at open, and admission
// then enforces the limits with them.
func TestLeaseCounters_RebuiltOnOpen(t *testing.T) {
	db, path := openTemp(t)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	now := time.Now().UTC().Truncate(time.Second)
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme", Status: catalog.TenantActive}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "w"}
	p2 := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "x"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateTenant(ctx, tn))
	must(db.CreateProduct(ctx, p))
	must(db.CreateProduct(ctx, p2))
	ent := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: []byte(`{"max_seats":3}`), StartsAt: now.Add(-time.Hour)}
	must(db.CreateEntitlement(ctx, ent))
	expl := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p2.ProductID,
		Policy: []byte(`{"max_seats":2,"seat_assignment_mode":"explicit"}`), StartsAt: now.Add(-time.Hour)}
	must(db.CreateEntitlement(ctx, expl))
	lease := func(subject string, at time.Time, ttl time.Duration) *catalog.Lease {
		return &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: ent.EntitlementID, SubjectType: catalog.SubjectMachine,
			SubjectID: subject, IssuedAt: at, ExpiresAt: at.Add(ttl), TokenHash: "0000000000000000000000000000000000000000000000000000000000000000"}
	}
	_, err := db.AcquireLease(ctx, lease("short", now, time.Minute))
	must(err)
	_, err = db.AcquireLease(ctx, lease("long", now, time.Hour))
	must(err)
	rel, err := db.AcquireLease(ctx, lease("released", now, time.Hour))
	must(err)
	_, err = db.ReleaseLease(ctx, rel.LeaseID, "", true, now)
	must(err)
	must(db.AssignSeat(ctx, &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: expl.EntitlementID,
		SubjectType: catalog.SubjectUser, SubjectID: "u1", AssignedBy: "usr_admin"}))

	// The old layout: none of the counters, no marker.
	must(db.bdb.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bLeaseCounts, bSeatCounts, iLeaseExpiry} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Delete(kLeaseCounted)
	}))
	must(db.Close())
	re, err := openFile(path, Options{})
	must(err)
	defer re.Close()
	if !re.counted.Load() {
		t.Fatal("counters not rebuilt at open")
	}
	cases := []struct {
		name string
		at   time.Time
		want int
	}{
		{"now", now, 2},
		{"after the short lease", now.Add(2 * time.Minute), 1},
		{"after both", now.Add(2 * time.Hour), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := re.ActiveLeaseCount(ctx, ent.EntitlementID, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ActiveLeaseCount = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("admission uses the rebuilt counters", func(t *testing.T) {
		_, err := re.AcquireLease(ctx, lease("third", now, time.Hour))
		must(err)
		_, err = re.AcquireLease(ctx, lease("fourth", now, time.Hour))
		if got := catalog.ErrorCode(err); got != catalog.ECONFLICT {
			t.Fatalf("fourth lease on 3 seats: code %q (%v), want conflict", got, err)
		}
		// The short lease's expiry entry was rebuilt: it frees its seat.
		_, err = re.AcquireLease(ctx, lease("fourth", now.Add(2*time.Minute), time.Hour))
		must(err)
	})
	t.Run("seat counter rebuilt", func(t *testing.T) {
		must(re.AssignSeat(ctx, &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: expl.EntitlementID,
			SubjectType: catalog.SubjectUser, SubjectID: "u2", AssignedBy: "usr_admin"}))
		err := re.AssignSeat(ctx, &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: expl.EntitlementID,
			SubjectType: catalog.SubjectUser, SubjectID: "u3", AssignedBy: "usr_admin"})
		if got := catalog.ErrorCode(err); got != catalog.ECONFLICT {
			t.Fatalf("third seat on 2: code %q (%v), want conflict", got, err)
		}
	})
}
