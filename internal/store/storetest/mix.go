package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// ConcurrentLicenseMix runs 16 writers per store of stores (instances on
// one database, or one store) doing a random mix of licence writes for 40
// rounds each: leases of an entitlement of 8 seats and of an
// explicit-mode one of 6 (issue, renew, release), and seats of the
// explicit one (assign, revoke); two writers also take and give back a
// lease of a third every round. Each writer owns 3 subjects, so what it
// saw succeed is what the store must hold; the subjects of all writers
// compete for the seats. A refusal (every seat taken, no seat assigned)
// is ECONFLICT or EFORBIDDEN; a writer's release of its lease and
// revocation of its seat always succeed. Then each entitlement's active
// lease count is the leases the writers hold, the free seats are what
// the seats the writers hold leave (exactly that many new subjects get
// one), every lease and seat the writers hold is stored as they saw it,
// and the audit chain verifies with one event per success.
//
// It checks every kind of shared licence write against the others at
// once; a lost update of a counter (a write from a stale read that the
// backend let commit) shows as a count that is off.
func ConcurrentLicenseMix(t *testing.T, stores []store.Store) {
	const writers, rounds, subjects = 16, 40, 3
	const open, explicit = 8, 6
	f := newFx(t, stores[0])
	tn, p := f.tenant(), f.product("")
	ents := []*catalog.Entitlement{
		f.entitlement(tn.TenantID, p.ProductID, entPolicy(open, "")),
		f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(explicit, catalog.SeatsExplicit)),
		// Quiet: two writers (one a store where there are two) take a
		// lease of it and give it back every round, so its counter keeps
		// falling to zero while the other writer's issue reads it.
		f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(4, "")),
	}
	before := f.lastSeq()
	now := f.now
	// state is what one writer holds, by subject.
	type state struct {
		lease [2]*catalog.Lease // by entitlement
		seat  *catalog.SeatAssignment
	}
	var (
		mu     sync.Mutex
		events = map[string]int{}
		held   = make([][]state, writers*len(stores))
		wg     sync.WaitGroup
	)
	count := func(ev string) {
		mu.Lock()
		events[ev]++
		mu.Unlock()
	}
	refused := func(err error) bool {
		c := catalog.ErrorCode(err)
		return c == catalog.ECONFLICT || c == catalog.EFORBIDDEN
	}
	for i := range held {
		s := stores[i%len(stores)]
		held[i] = make([]state, subjects)
		rng := rand.New(rand.NewPCG(uint64(i), 18))
		wg.Go(func() {
			for r := range rounds {
				if i < 2 {
					l, err := s.AcquireLease(f.ctx, f.lease(ents[2].EntitlementID, fmt.Sprintf("w%d-quiet", i), now))
					if err != nil {
						t.Errorf("writer %d quiet acquire: %v", i, err)
						continue
					}
					count("lease.issued")
					if _, err := s.ReleaseLease(f.ctx, l.LeaseID, "", false, now); err != nil {
						t.Errorf("writer %d quiet release %s: %v", i, l.LeaseID, err)
						continue
					}
					count("lease.released")
				}
				j := rng.IntN(subjects)
				st := &held[i][j]
				subject := fmt.Sprintf("w%d-s%d", i, j)
				e := rng.IntN(2)
				switch op := rng.IntN(10); {
				case op < 5: // issue or renew
					l := f.lease(ents[e].EntitlementID, subject, now.Add(time.Duration(r)*time.Second))
					l.SubjectType = catalog.SubjectUser
					got, err := s.AcquireLease(f.ctx, l)
					switch {
					case err == nil && st.lease[e] != nil:
						if got.LeaseID != st.lease[e].LeaseID {
							t.Errorf("%s renewed lease %s as %s", subject, st.lease[e].LeaseID, got.LeaseID)
						}
						st.lease[e] = got
						count("lease.renewed")
					case err == nil:
						st.lease[e] = got
						count("lease.issued")
					case !refused(err):
						t.Errorf("%s acquire on %d: %v", subject, e, err)
					}
				case op < 7: // release
					if st.lease[e] == nil {
						continue
					}
					if _, err := s.ReleaseLease(f.ctx, st.lease[e].LeaseID, "", false, now); err != nil {
						t.Errorf("%s release %s: %v", subject, st.lease[e].LeaseID, err)
						continue
					}
					st.lease[e] = nil
					count("lease.released")
				case st.seat == nil: // assign
					seat := f.seat(ents[1].EntitlementID, subject)
					if err := s.AssignSeat(f.ctx, seat); err != nil {
						if !refused(err) {
							t.Errorf("%s assign: %v", subject, err)
						}
						continue
					}
					st.seat = seat
					count("seat.assigned")
				default: // revoke
					if _, err := s.RevokeSeat(f.ctx, ents[1].EntitlementID, st.seat.SeatAssignmentID, "usr_admin", time.Time{}); err != nil {
						t.Errorf("%s revoke %s: %v", subject, st.seat.SeatAssignmentID, err)
						continue
					}
					st.seat = nil
					count("seat.revoked")
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var active [3]int
	seats := 0
	for i := range held {
		for _, st := range held[i] {
			for e, l := range st.lease {
				if l == nil {
					continue
				}
				active[e]++
				got, err := stores[0].Lease(f.ctx, l.LeaseID)
				must(t, err)
				if got.ReleasedAt != nil || !got.ExpiresAt.Equal(l.ExpiresAt) {
					t.Errorf("lease %s: stored %+v, want it held until %s", l.LeaseID, got, l.ExpiresAt)
				}
			}
			if st.seat != nil {
				seats++
			}
		}
	}
	if events["lease.issued"] == 0 || events["seat.assigned"] == 0 || events["lease.released"] == 0 || events["seat.revoked"] == 0 {
		t.Fatalf("events %v: some kind of write never succeeded, the test proves little", events)
	}
	for e, ent := range ents {
		wantActive(t, f, ent.EntitlementID, now.Add(rounds*time.Second), active[e])
	}
	all, _, err := stores[0].Seats(f.ctx, ents[1].EntitlementID, store.Page{Limit: store.MaxLimit})
	must(t, err)
	stored := 0
	for _, st := range all {
		if st.RevokedAt == nil {
			stored++
		}
	}
	if stored != seats {
		t.Fatalf("%d active seats stored, the writers hold %d", stored, seats)
	}
	for k := range explicit - seats {
		if err := stores[k%len(stores)].AssignSeat(f.ctx, f.seat(ents[1].EntitlementID, fmt.Sprintf("after-%d", k))); err != nil {
			t.Fatalf("free seat %d of %d after the mix: %v (the counter kept seats)", k+1, explicit-seats, err)
		}
	}
	if err := stores[0].AssignSeat(f.ctx, f.seat(ents[1].EntitlementID, "after-extra")); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a seat beyond the %d free after the mix: %v, want ECONFLICT (the counter lost seats)", explicit-seats, err)
	}
	events["seat.assigned"] += explicit - seats
	got := map[string]int{}
	for _, ev := range f.eventsAfter(before) {
		got[ev.EventType]++
	}
	for ev, n := range events {
		if got[ev] != n {
			t.Errorf("%d %s events, want %d", got[ev], ev, n)
		}
	}
	f.verifyChain()
}
