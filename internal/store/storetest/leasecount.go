package storetest

import (
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// The lease counters (store/kv leasecount.go) are written in the same
// transaction as the lease they count, so a crash between the two cannot
// happen: crash consistency is the single transaction's. These cases
// check that the counters follow every way a lease takes or gives back
// a seat.
var leaseCountCases = []testCase{
	{"LeaseCounters", testLeaseCounters},
	{"LeaseExpiryFreesSeatWithoutSweep", testLeaseExpiryNoSweep},
	{"LeaseSweep", testLeaseSweep},
	{"SeatCounters", testSeatCounters},
}

// wantActive checks the entitlement's active lease count at at.
func wantActive(t *testing.T, f *fx, entitlementID string, at time.Time, want int) {
	t.Helper()
	got, err := f.s.ActiveLeaseCount(f.ctx, entitlementID, at)
	must(t, err)
	if got != want {
		t.Fatalf("ActiveLeaseCount(%s) = %d, want %d", at.Format(time.TimeOnly), got, want)
	}
}

// testLeaseCounters: acquire, renew, release, force release and expiry
// each move the active count as they should, and it is what admission
// enforces.
func testLeaseCounters(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(3, ""))
	other := f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(3, ""))
	now := f.now
	var m1, m3 *catalog.Lease
	steps := []struct {
		name string
		op   func() error
		at   time.Time
		want int
	}{
		{"acquire m1", func() (err error) {
			m1, err = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", now))
			return err
		}, now, 1},
		{"acquire m2", func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m2", now)); return err }, now, 2},
		{"other entitlement", func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(other.EntitlementID, "m1", now)); return err }, now, 2},
		{"renew m1", func() error {
			_, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", now.Add(30*time.Minute)))
			return err
		}, now.Add(30 * time.Minute), 2},
		{"acquire m3", func() (err error) {
			m3, err = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m3", now.Add(30*time.Minute)))
			return err
		}, now.Add(30 * time.Minute), 3},
		// m2 (taken at now, one hour) has expired; m1 (renewed) and m3 hold.
		{"expiry", func() error { return nil }, now.Add(61 * time.Minute), 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			must(t, st.op())
			wantActive(t, f, ent.EntitlementID, st.at, st.want)
		})
	}
	wantActive(t, f, other.EntitlementID, now, 1)
	at := now.Add(62 * time.Minute)
	_, err := f.s.ReleaseLease(f.ctx, m3.LeaseID, "", false, at)
	must(t, err)
	wantActive(t, f, ent.EntitlementID, at, 1)
	_, err = f.s.ReleaseLease(f.ctx, m1.LeaseID, "", true, at)
	must(t, err)
	wantActive(t, f, ent.EntitlementID, at, 0)
	// A refused acquire (all seats taken) changes no count.
	for _, m := range []string{"a", "b", "c"} {
		_, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, m, at))
		must(t, err)
	}
	f.refused(catalog.ECONFLICT, func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "d", at)); return err })
	wantActive(t, f, ent.EntitlementID, at, 3)
}

// testLeaseExpiryNoSweep: an expired lease frees its seat for the next
// acquire with no sweep run, and its subject then takes a new lease.
func testLeaseExpiryNoSweep(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(1, ""))
	first, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", f.now))
	must(t, err)
	f.refused(catalog.ECONFLICT, func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m2", f.now)); return err })
	at := first.ExpiresAt // expired exactly then (expires_at is exclusive)
	wantActive(t, f, ent.EntitlementID, at.Add(-time.Second), 1)
	wantActive(t, f, ent.EntitlementID, at, 0)
	_, err = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m2", at))
	must(t, err)
	f.refused(catalog.ECONFLICT, func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", at)); return err })
	wantActive(t, f, ent.EntitlementID, at, 1)
}

// testLeaseSweep: the sweep takes every expired lease out (bounded by its
// limit), keeps the records, and leaves active leases alone.
func testLeaseSweep(t *testing.T, f *fx) {
	tn := f.tenant()
	var ents []*catalog.Entitlement
	for range 3 {
		ents = append(ents, f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(10, "")))
	}
	var expired []*catalog.Lease
	for _, e := range ents {
		for j := range 3 {
			l, err := f.s.AcquireLease(f.ctx, f.lease(e.EntitlementID, string(rune('a'+j)), f.now))
			must(t, err)
			expired = append(expired, l)
		}
		// One lease per entitlement still active at the sweep.
		live := f.lease(e.EntitlementID, "live", f.now)
		live.ExpiresAt = f.now.Add(3 * time.Hour)
		_, err := f.s.AcquireLease(f.ctx, live)
		must(t, err)
	}
	at := f.now.Add(90 * time.Minute)
	n, err := f.s.SweepExpiredLeases(f.ctx, at, 4)
	must(t, err)
	if n != 4 {
		t.Fatalf("SweepExpiredLeases(limit 4) = %d, want 4", n)
	}
	n, err = f.s.SweepExpiredLeases(f.ctx, at, 0)
	must(t, err)
	if n != 5 {
		t.Fatalf("SweepExpiredLeases = %d, want the 5 left", n)
	}
	n, err = f.s.SweepExpiredLeases(f.ctx, at, 0)
	must(t, err)
	if n != 0 {
		t.Fatalf("second SweepExpiredLeases = %d, want 0", n)
	}
	for _, e := range ents {
		wantActive(t, f, e.EntitlementID, at, 1)
	}
	for _, l := range expired {
		got, err := f.s.Lease(f.ctx, l.LeaseID)
		must(t, err)
		if got.ReleasedAt != nil || !got.ExpiresAt.Equal(l.ExpiresAt) {
			t.Fatalf("swept lease record changed: %+v", got)
		}
	}
	// A swept subject takes a new lease (not a renewal of the old one).
	l := f.lease(ents[0].EntitlementID, "a", at)
	got, err := f.s.AcquireLease(f.ctx, l)
	must(t, err)
	if got.LeaseID != l.LeaseID {
		t.Fatalf("acquire after the sweep = lease %s, want new lease %s", got.LeaseID, l.LeaseID)
	}
	wantActive(t, f, ents[0].EntitlementID, at, 2)
}

// testSeatCounters: assignments and revocations move the seat count that
// AssignSeat enforces.
func testSeatCounters(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(2, catalog.SeatsExplicit))
	s1, s2 := f.seat(ent.EntitlementID, "u1"), f.seat(ent.EntitlementID, "u2")
	must(t, f.s.AssignSeat(f.ctx, s1))
	must(t, f.s.AssignSeat(f.ctx, s2))
	f.refused(catalog.ECONFLICT, func() error { return f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "u3")) })
	_, err := f.s.RevokeSeat(f.ctx, ent.EntitlementID, s1.SeatAssignmentID, "usr_admin", f.now)
	must(t, err)
	f.refused(catalog.ECONFLICT, func() error {
		_, err := f.s.RevokeSeat(f.ctx, ent.EntitlementID, s1.SeatAssignmentID, "usr_admin", f.now)
		return err
	})
	must(t, f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "u3")))
	f.refused(catalog.ECONFLICT, func() error { return f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "u4")) })
}
