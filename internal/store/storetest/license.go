package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var licenseCases = []testCase{
	{"Entitlements", testEntitlements},
	{"EntitlementOverlapRace", testEntitlementRace},
	{"Seats", testSeats},
	{"SeatsConcurrent", testSeatsConcurrent},
	{"Leases", testLeases},
	{"LeasesExplicit", testLeasesExplicit},
	{"LeasesSeatsReduced", testLeasesSeatsReduced},
	{"LeasesConcurrent", testLeasesConcurrent},
	{"LeaseSigner", testLeaseSigner},
	{"LeaseHolder", testLeaseHolder},
}

// testLeaseHolder: a lease bound to a holder is renewed and released
// only with its holder's secret (or released by force); a refusal changes
// nothing.
func testLeaseHolder(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: json.RawMessage(`{"max_seats":2}`), StartsAt: f.now.Add(-time.Hour)}
	f.mutation("entitlement.created", tn.TenantID, func() error { return f.s.CreateEntitlement(f.ctx, ent) })
	holder, other := randHash(), randHash()
	l := f.lease(ent.EntitlementID, "alice", f.now)
	l.HolderHash = holder
	var got *catalog.Lease
	f.mutation("lease.issued", tn.TenantID, func() (err error) { got, err = f.s.AcquireLease(f.ctx, l); return err })
	if got.HolderHash != holder {
		t.Fatalf("holder_hash = %q, want %q", got.HolderHash, holder)
	}
	later := f.now.Add(time.Minute)
	for name, h := range map[string]string{"no secret": "", "wrong secret": other} {
		t.Run("renew with "+name, func(t *testing.T) {
			again := f.lease(ent.EntitlementID, "alice", later)
			again.HolderHash = h
			f.refused(catalog.EFORBIDDEN, func() error { _, err := f.s.AcquireLease(f.ctx, again); return err })
			_, err := f.s.ReleaseLease(f.ctx, got.LeaseID, h, false, later)
			wantCode(t, err, catalog.EFORBIDDEN)
			still, err := f.s.Lease(f.ctx, got.LeaseID)
			must(t, err)
			if still.ReleasedAt != nil || !still.ExpiresAt.Equal(got.ExpiresAt) || still.TokenHash != got.TokenHash {
				t.Fatalf("a refused request changed the lease: %+v, was %+v", still, got)
			}
		})
	}
	t.Run("renew with the secret", func(t *testing.T) {
		again := f.lease(ent.EntitlementID, "alice", later)
		again.HolderHash = holder
		var renewed *catalog.Lease
		f.mutation("lease.renewed", tn.TenantID, func() (err error) { renewed, err = f.s.AcquireLease(f.ctx, again); return err })
		if renewed.LeaseID != got.LeaseID || renewed.HolderHash != holder {
			t.Fatalf("renewed = %+v, want lease %s bound to the same holder", renewed, got.LeaseID)
		}
	})
	t.Run("release by the holder", func(t *testing.T) {
		f.mutation("lease.released", tn.TenantID, func() error { _, err := f.s.ReleaseLease(f.ctx, got.LeaseID, holder, false, later); return err })
	})
	t.Run("force release", func(t *testing.T) {
		b := f.lease(ent.EntitlementID, "bob", later)
		b.HolderHash = other
		f.mutation("lease.issued", tn.TenantID, func() (err error) { b, err = f.s.AcquireLease(f.ctx, b); return err })
		f.mutation("lease.released", tn.TenantID, func() error { _, err := f.s.ReleaseLease(f.ctx, b.LeaseID, "", true, later); return err })
	})
	t.Run("unbound lease binds on renewal", func(t *testing.T) {
		c := f.lease(ent.EntitlementID, "carol", later)
		f.mutation("lease.issued", tn.TenantID, func() (err error) { c, err = f.s.AcquireLease(f.ctx, c); return err })
		again := f.lease(ent.EntitlementID, "carol", later.Add(time.Minute))
		again.HolderHash = holder
		var renewed *catalog.Lease
		f.mutation("lease.renewed", tn.TenantID, func() (err error) { renewed, err = f.s.AcquireLease(f.ctx, again); return err })
		if renewed.HolderHash != holder {
			t.Fatalf("holder_hash = %q after renewing an unbound lease, want it bound", renewed.HolderHash)
		}
	})
}

func tp(t time.Time) *time.Time { return &t }

func testEntitlements(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	jan := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	feb, mar := jan.AddDate(0, 1, 0), jan.AddDate(0, 2, 0)
	e := f.newEntitlement(tn.TenantID, p.ProductID, entPolicy(5, ""), jan, tp(feb))
	f.mutation("entitlement.created", tn.TenantID, func() error { return f.s.CreateEntitlement(f.ctx, e) })
	got, err := f.s.Entitlement(f.ctx, e.EntitlementID)
	must(t, err)
	if !got.StartsAt.Equal(jan) || got.EndsAt == nil || !got.EndsAt.Equal(feb) || got.TenantID != tn.TenantID {
		t.Fatalf("Entitlement = %+v", got)
	}
	if _, err := catalog.ParseEntitlementPolicy(got.Policy); err != nil {
		t.Fatalf("stored policy_json %s does not parse: %v", got.Policy, err)
	}

	t.Run("overlap", func(t *testing.T) {
		cases := []struct {
			name      string
			start     time.Time
			end       *time.Time
			code      string
			otherTen  bool
			otherProd bool
		}{
			{"same range", jan, tp(feb), catalog.ECONFLICT, false, false},
			{"open end before", jan.AddDate(-1, 0, 0), nil, catalog.ECONFLICT, false, false},
			{"inside", jan.AddDate(0, 0, 10), tp(jan.AddDate(0, 0, 11)), catalog.ECONFLICT, false, false},
			{"straddles start", jan.AddDate(0, 0, -5), tp(jan.AddDate(0, 0, 5)), catalog.ECONFLICT, false, false},
			{"adjacent after", feb, tp(mar), "", false, false},
			{"other tenant same range", jan, tp(feb), "", true, false},
			{"other product same range", jan, tp(feb), "", false, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tenID, prodID := tn.TenantID, p.ProductID
				if tc.otherTen {
					tenID = f.tenant().TenantID
				}
				if tc.otherProd {
					prodID = f.product("").ProductID
				}
				x := f.newEntitlement(tenID, prodID, entPolicy(1, ""), tc.start, tc.end)
				if tc.code == "" {
					must(t, f.s.CreateEntitlement(f.ctx, x))
					return
				}
				f.refused(tc.code, func() error { return f.s.CreateEntitlement(f.ctx, x) })
			})
		}
	})
	t.Run("create refused", func(t *testing.T) {
		cases := []struct {
			name string
			e    *catalog.Entitlement
			code string
		}{
			{"unknown tenant", f.newEntitlement("ten_nope", p.ProductID, entPolicy(1, ""), jan, nil), catalog.ENOTFOUND},
			{"unknown product", f.newEntitlement(tn.TenantID, "prd_nope", entPolicy(1, ""), jan, nil), catalog.ENOTFOUND},
			{"bad policy", f.newEntitlement(tn.TenantID, p.ProductID, json.RawMessage(`{"max_seats":0}`), jan.AddDate(5, 0, 0), nil), catalog.EINVALID},
			{"unknown policy key", f.newEntitlement(tn.TenantID, p.ProductID, json.RawMessage(`{"max_seats":1,"seats":2}`), jan.AddDate(5, 0, 0), nil), catalog.EINVALID},
			{"ends before start", f.newEntitlement(tn.TenantID, p.ProductID, entPolicy(1, ""), jan.AddDate(5, 0, 0), tp(jan.AddDate(4, 0, 0))), catalog.EINVALID},
			{"no start", f.newEntitlement(tn.TenantID, p.ProductID, entPolicy(1, ""), time.Time{}, nil), catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { return f.s.CreateEntitlement(f.ctx, tc.e) })
			})
		}
	})
	t.Run("update", func(t *testing.T) {
		var upd *catalog.Entitlement
		f.mutation("entitlement.updated", tn.TenantID, func() (err error) {
			upd, err = f.s.UpdateEntitlement(f.ctx, e.EntitlementID, func(x *catalog.Entitlement) error {
				x.Policy = entPolicy(9, "")
				x.EndsAt = tp(feb.AddDate(0, 0, -1))
				return nil
			})
			return err
		})
		pol, err := catalog.ParseEntitlementPolicy(upd.Policy)
		must(t, err)
		if pol.MaxSeats != 9 || !upd.EndsAt.Equal(feb.AddDate(0, 0, -1)) {
			t.Fatalf("UpdateEntitlement = %+v", upd)
		}
	})
	t.Run("update refused", func(t *testing.T) {
		cases := []struct {
			name string
			fn   func(*catalog.Entitlement) error
			code string
		}{
			{"entitlement_id", func(x *catalog.Entitlement) error { x.EntitlementID = "ent_x"; return nil }, catalog.EINVALID},
			{"tenant_id", func(x *catalog.Entitlement) error { x.TenantID = "ten_x"; return nil }, catalog.EINVALID},
			{"product_id", func(x *catalog.Entitlement) error { x.ProductID = "prd_x"; return nil }, catalog.EINVALID},
			{"created_at", func(x *catalog.Entitlement) error { x.CreatedAt = x.CreatedAt.Add(1); return nil }, catalog.EINVALID},
			{"policy", func(x *catalog.Entitlement) error { x.Policy = json.RawMessage(`{}`); return nil }, catalog.EINVALID},
			// Growing into the adjacent entitlement (feb..mar) overlaps it.
			{"overlap by extension", func(x *catalog.Entitlement) error { x.EndsAt = nil; return nil }, catalog.ECONFLICT},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { _, err := f.s.UpdateEntitlement(f.ctx, e.EntitlementID, tc.fn); return err })
			})
		}
	})
}

// testEntitlementRace: overlapping entitlements created concurrently, only
// one may win.
func testEntitlementRace(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	for round := range 5 {
		start := f.now.AddDate(round, 0, 0)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				errs[i] = f.s.CreateEntitlement(f.ctx, f.newEntitlement(tn.TenantID, p.ProductID, entPolicy(1, ""), start.Add(time.Duration(i)*time.Hour), tp(start.AddDate(0, 6, 0))))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				wantCode(t, err, catalog.ECONFLICT)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d racing overlapping entitlements succeeded, want 1", round, ok)
		}
	}
	list, _, err := f.s.Entitlements(f.ctx, tn.TenantID, store.Page{})
	must(t, err)
	if len(list) != 5 {
		t.Fatalf("Entitlements = %d, want 5", len(list))
	}
}

func testSeats(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(2, catalog.SeatsExplicit))
	s1 := f.seat(ent.EntitlementID, "alice")
	f.mutation("seat.assigned", tn.TenantID, func() error { return f.s.AssignSeat(f.ctx, s1) })
	t.Run("refused", func(t *testing.T) {
		auto := f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(2, ""))
		f.refused(catalog.ECONFLICT, func() error { return f.s.AssignSeat(f.ctx, f.seat(auto.EntitlementID, "bob")) })
		f.refused(catalog.ECONFLICT, func() error { return f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "alice")) })
		bad := f.seat(ent.EntitlementID, "carol")
		bad.SubjectType = "robot"
		f.refused(catalog.EINVALID, func() error { return f.s.AssignSeat(f.ctx, bad) })
		empty := f.seat(ent.EntitlementID, "")
		f.refused(catalog.EINVALID, func() error { return f.s.AssignSeat(f.ctx, empty) })
	})
	err := f.s.AssignSeat(f.ctx, f.seat(catalog.NewID(catalog.PrefixEntitlement), "x"))
	wantCode(t, err, catalog.ENOTFOUND)
	s2 := f.seat(ent.EntitlementID, "bob")
	must(t, f.s.AssignSeat(f.ctx, s2))
	t.Run("full", func(t *testing.T) {
		var err error
		f.refused(catalog.ECONFLICT, func() error { err = f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "carol")); return err })
		if !strings.Contains(err.Error(), "no free seat") {
			t.Fatalf("error %q does not say no free seat", err)
		}
	})
	t.Run("revoke frees the seat and keeps history", func(t *testing.T) {
		at := f.now.Add(time.Minute)
		var rev *catalog.SeatAssignment
		f.mutation("seat.revoked", tn.TenantID, func() (err error) {
			rev, err = f.s.RevokeSeat(f.ctx, ent.EntitlementID, s1.SeatAssignmentID, "usr_admin", at)
			return err
		})
		if rev.RevokedAt == nil || !rev.RevokedAt.Equal(at) || rev.RevokedBy != "usr_admin" {
			t.Fatalf("RevokeSeat = %+v", rev)
		}
		f.refused(catalog.ECONFLICT, func() error {
			_, err := f.s.RevokeSeat(f.ctx, ent.EntitlementID, s1.SeatAssignmentID, "x", at)
			return err
		})
		other := f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(1, catalog.SeatsExplicit))
		f.refused(catalog.ENOTFOUND, func() error {
			_, err := f.s.RevokeSeat(f.ctx, other.EntitlementID, s2.SeatAssignmentID, "x", at)
			return err
		})
		// The freed seat can be taken, by alice again too.
		must(t, f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, "alice")))
		seats, _, err := f.s.Seats(f.ctx, ent.EntitlementID, store.Page{})
		must(t, err)
		if len(seats) != 3 {
			t.Fatalf("Seats = %d, want 3 (one revoked kept)", len(seats))
		}
		if seats[0].SeatAssignmentID != s1.SeatAssignmentID || seats[0].RevokedAt == nil {
			t.Fatalf("first seat = %+v, want the revoked one", seats[0])
		}
	})
	t.Run("mirror seats are not online seats", func(t *testing.T) {
		mid := catalog.NewID(catalog.PrefixMirror)
		e := f.entitlement(tn.TenantID, f.product("").ProductID, json.RawMessage(fmt.Sprintf(`{"max_seats":3,"seat_assignment_mode":"explicit","mirror_seats":{%q:2}}`, mid)))
		must(t, f.s.AssignSeat(f.ctx, f.seat(e.EntitlementID, "u1")))
		f.refused(catalog.ECONFLICT, func() error { return f.s.AssignSeat(f.ctx, f.seat(e.EntitlementID, "u2")) })
	})
}

func testSeatsConcurrent(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(10, catalog.SeatsExplicit))
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f.s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, fmt.Sprintf("user-%d", i))) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, err, catalog.ECONFLICT)
		}
	}
	if ok != 10 {
		t.Fatalf("%d of %d concurrent AssignSeat succeeded, want 10", ok, n)
	}
	seats, _, err := f.s.Seats(f.ctx, ent.EntitlementID, store.Page{})
	must(t, err)
	if len(seats) != 10 {
		t.Fatalf("Seats = %d, want 10", len(seats))
	}
}

func testLeases(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(2, ""))
	now := f.now
	l1 := f.lease(ent.EntitlementID, "m1", now)
	var got *catalog.Lease
	f.mutation("lease.issued", tn.TenantID, func() (err error) { got, err = f.s.AcquireLease(f.ctx, l1); return err })
	if got.LeaseID != l1.LeaseID || got.TenantID != tn.TenantID || got.TokenHash != l1.TokenHash || got.ReleasedAt != nil {
		t.Fatalf("AcquireLease = %+v", got)
	}

	t.Run("same subject renews in place", func(t *testing.T) {
		again := f.lease(ent.EntitlementID, "m1", now.Add(10*time.Minute))
		var renewed *catalog.Lease
		f.mutation("lease.renewed", tn.TenantID, func() (err error) { renewed, err = f.s.AcquireLease(f.ctx, again); return err })
		if renewed.LeaseID != l1.LeaseID || !renewed.IssuedAt.Equal(again.IssuedAt) || !renewed.ExpiresAt.Equal(again.ExpiresAt) || renewed.TokenHash != again.TokenHash {
			t.Fatalf("renewal = %+v, want lease %s with the new times and hash", renewed, l1.LeaseID)
		}
		stored, err := f.s.Lease(f.ctx, l1.LeaseID)
		must(t, err)
		if stored.TokenHash != again.TokenHash {
			t.Fatalf("stored token_hash not renewed")
		}
		if _, err := f.s.Lease(f.ctx, again.LeaseID); catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("renewal stored a second lease %s (err %v)", again.LeaseID, err)
		}
	})
	l2 := f.lease(ent.EntitlementID, "m2", now)
	_, err := f.s.AcquireLease(f.ctx, l2)
	must(t, err)
	t.Run("seats full", func(t *testing.T) {
		var err error
		f.refused(catalog.ECONFLICT, func() error { _, err = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m3", now)); return err })
		if !strings.Contains(err.Error(), "all 2 seats are in use") {
			t.Fatalf("error %q, want \"all 2 seats are in use\"", err)
		}
	})
	t.Run("expired lease frees its seat", func(t *testing.T) {
		later := now.Add(3 * time.Hour) // l2 (and l1) expired by then
		l3 := f.lease(ent.EntitlementID, "m3", later)
		_, err := f.s.AcquireLease(f.ctx, l3)
		must(t, err)
		// m2's lease expired: a new acquire is a new lease, not a renewal.
		l2b := f.lease(ent.EntitlementID, "m2", later)
		got, err := f.s.AcquireLease(f.ctx, l2b)
		must(t, err)
		if got.LeaseID != l2b.LeaseID {
			t.Fatalf("acquire after expiry renewed %s, want new lease %s", got.LeaseID, l2b.LeaseID)
		}
		f.refused(catalog.ECONFLICT, func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m4", later)); return err })
		t.Run("release", func(t *testing.T) {
			at := later.Add(time.Minute)
			var rel *catalog.Lease
			f.mutation("lease.released", tn.TenantID, func() (err error) { rel, err = f.s.ReleaseLease(f.ctx, l3.LeaseID, "", false, at); return err })
			if rel.ReleasedAt == nil || !rel.ReleasedAt.Equal(at) {
				t.Fatalf("ReleaseLease = %+v", rel)
			}
			f.refused(catalog.ECONFLICT, func() error { _, err := f.s.ReleaseLease(f.ctx, l3.LeaseID, "", false, at); return err })
			_, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m4", at))
			must(t, err)
		})
	})
	t.Run("refused", func(t *testing.T) {
		future := f.newEntitlement(tn.TenantID, f.product("").ProductID, entPolicy(5, ""), now.AddDate(1, 0, 0), nil)
		must(t, f.s.CreateEntitlement(f.ctx, future))
		ended := f.newEntitlement(tn.TenantID, f.product("").ProductID, entPolicy(5, ""), now.AddDate(-1, 0, 0), tp(now.Add(-time.Hour)))
		must(t, f.s.CreateEntitlement(f.ctx, ended))
		bad := f.lease(ent.EntitlementID, "m9", now)
		bad.ExpiresAt = now.Add(-time.Second)
		badType := f.lease(ent.EntitlementID, "m9", now)
		badType.SubjectType = "toaster"
		badHash := f.lease(ent.EntitlementID, "m9", now)
		badHash.TokenHash = "zz"
		cases := []struct {
			name, code, msg string
			l               *catalog.Lease
		}{
			{"before window", catalog.EFORBIDDEN, "time window", f.lease(future.EntitlementID, "m1", now)},
			{"after window", catalog.EFORBIDDEN, "time window", f.lease(ended.EntitlementID, "m1", now)},
			{"expires before issued", catalog.EINVALID, "expires_at", bad},
			{"subject type", catalog.EINVALID, "subject_type", badType},
			{"token hash", catalog.EINVALID, "token_hash", badHash},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var err error
				f.refused(tc.code, func() error { _, err = f.s.AcquireLease(f.ctx, tc.l); return err })
				if !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %q does not mention %q", err, tc.msg)
				}
			})
		}
	})
	t.Run("suspended and deleted tenants", func(t *testing.T) {
		t2 := f.tenant()
		e2 := f.entitlement(t2.TenantID, p.ProductID, entPolicy(5, ""))
		for _, status := range []string{catalog.TenantSuspended, catalog.TenantDeleted} {
			_, err := f.s.UpdateTenant(f.ctx, t2.TenantID, func(x *catalog.Tenant) error { x.Status = status; return nil })
			must(t, err)
			var lerr error
			f.refused(catalog.EFORBIDDEN, func() error { _, lerr = f.s.AcquireLease(f.ctx, f.lease(e2.EntitlementID, "m1", now)); return lerr })
			if !strings.Contains(lerr.Error(), "tenant is "+status) {
				t.Fatalf("error %q, want \"tenant is %s\"", lerr, status)
			}
		}
	})
}

func testLeasesExplicit(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(1, catalog.SeatsExplicit))
	var err error
	f.refused(catalog.EFORBIDDEN, func() error { _, err = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", f.now)); return err })
	if !strings.Contains(err.Error(), "no seat") {
		t.Fatalf("error %q does not say the subject has no seat", err)
	}
	st := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: ent.EntitlementID, SubjectType: catalog.SubjectMachine, SubjectID: "m1"}
	must(t, f.s.AssignSeat(f.ctx, st))
	l, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", f.now))
	must(t, err)
	_, err = f.s.RevokeSeat(f.ctx, ent.EntitlementID, st.SeatAssignmentID, "usr_admin", f.now)
	must(t, err)
	// Without its seat the subject cannot renew.
	f.refused(catalog.EFORBIDDEN, func() error {
		_, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", f.now.Add(time.Minute)))
		return err
	})
	_, err = f.s.ReleaseLease(f.ctx, l.LeaseID, "", false, f.now)
	must(t, err)
}

func testLeasesConcurrent(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(10, ""))
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, fmt.Sprintf("machine-%d", i), f.now))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, err, catalog.ECONFLICT)
		}
	}
	if ok != 10 {
		t.Fatalf("%d of %d concurrent AcquireLease succeeded, want 10", ok, n)
	}
}

// testLeaseSigner checks that a signer sees the lease as it will be stored
// and that its hash is what is stored.
func testLeaseSigner(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(1, ""))
	var seen []catalog.Lease
	signer := func(final *catalog.Lease) (string, error) {
		seen = append(seen, *final)
		return hashOf([]byte(final.LeaseID + final.IssuedAt.String())), nil
	}
	first := f.lease(ent.EntitlementID, "m1", f.now)
	first.LeaseID, first.TokenHash = "", ""
	var got *catalog.Lease
	f.mutation("lease.issued", tn.TenantID, func() (err error) { got, err = f.s.AcquireLease(f.ctx, first, signer); return err })
	if len(seen) != 1 || seen[0].LeaseID == "" || seen[0].LeaseID != got.LeaseID || seen[0].TenantID != tn.TenantID {
		t.Fatalf("signer saw %+v, stored %+v", seen, got)
	}
	if want := hashOf([]byte(got.LeaseID + got.IssuedAt.String())); got.TokenHash != want {
		t.Fatalf("token_hash = %s, want the signer's %s", got.TokenHash, want)
	}
	renew := f.lease(ent.EntitlementID, "m1", f.now.Add(time.Minute))
	renew.TokenHash = ""
	renewed, err := f.s.AcquireLease(f.ctx, renew, signer)
	must(t, err)
	if len(seen) != 2 || seen[1].LeaseID != got.LeaseID || renewed.LeaseID != got.LeaseID || !seen[1].IssuedAt.Equal(renew.IssuedAt) {
		t.Fatalf("renewal signer saw %+v, want lease %s at the new time", seen[1], got.LeaseID)
	}
	stored, err := f.s.Lease(f.ctx, got.LeaseID)
	must(t, err)
	if stored.TokenHash != renewed.TokenHash || stored.TokenHash == got.TokenHash {
		t.Fatalf("stored token_hash %s, want the renewal's %s", stored.TokenHash, renewed.TokenHash)
	}
	t.Run("signer failure stores nothing", func(t *testing.T) {
		boom := fmt.Errorf("key unavailable")
		_, err := f.s.ReleaseLease(f.ctx, got.LeaseID, "", false, f.now.Add(2*time.Minute))
		must(t, err)
		l := f.lease(ent.EntitlementID, "m2", f.now.Add(3*time.Minute))
		f.refused(catalog.EINTERNAL, func() error {
			_, err := f.s.AcquireLease(f.ctx, l, func(*catalog.Lease) (string, error) { return "", boom })
			return err
		})
		f.refused(catalog.EINVALID, func() error {
			_, err := f.s.AcquireLease(f.ctx, l, func(*catalog.Lease) (string, error) { return "not-a-hash", nil })
			return err
		})
		_, err = f.s.Lease(f.ctx, l.LeaseID)
		wantCode(t, err, catalog.ENOTFOUND)
		// The seat is still free.
		_, err = f.s.AcquireLease(f.ctx, l, signer)
		must(t, err)
	})
}

// testLeasesSeatsReduced: after max_seats is lowered below the live leases,
// no holder renews until the live count is within the new limit.
func testLeasesSeatsReduced(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(3, ""))
	held := map[string]*catalog.Lease{}
	for _, m := range []string{"m1", "m2", "m3"} {
		l, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, m, f.now))
		must(t, err)
		held[m] = l
	}
	_, err := f.s.UpdateEntitlement(f.ctx, ent.EntitlementID, func(e *catalog.Entitlement) error {
		e.Policy = entPolicy(1, "")
		return nil
	})
	must(t, err)
	later := f.now.Add(10 * time.Minute)
	f.refused(catalog.ECONFLICT, func() error { _, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", later)); return err })
	for _, m := range []string{"m2", "m3"} {
		_, err := f.s.ReleaseLease(f.ctx, held[m].LeaseID, "", false, later)
		must(t, err)
	}
	got, err := f.s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, "m1", later))
	must(t, err)
	if got.LeaseID != held["m1"].LeaseID {
		t.Fatalf("renewal within the new limit = lease %s, want %s", got.LeaseID, held["m1"].LeaseID)
	}
}
