package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// Concurrent are the suite's tests that run on several stores at once
// (instances on one database, or one store given alone): Run runs each on
// one store, and a backend with instances runs them on two.
var Concurrent = []struct {
	Name string
	Run  func(t *testing.T, stores []store.Store)
}{
	{"ConcurrentCatalogWrites", ConcurrentCatalogWrites},
	{"ConcurrentLeases", ConcurrentLeases},
	{"ConcurrentIdempotency", ConcurrentIdempotency},
	{"ConcurrentLeaseChurn", ConcurrentLeaseChurn},
	{"ConcurrentSeats", ConcurrentSeats},
	{"ConcurrentLicenseMix", ConcurrentLicenseMix},
}

// ConcurrentSeats runs 16 writers per store of stores (instances on one
// database, or one store) assigning seats of one explicit-mode
// entitlement of 10 seats to 20 users, 3 tries each (every user is tried
// by several writers): exactly 10 users get a seat, none twice, every
// other try is ECONFLICT. Then each seat is revoked by two writers at
// once, from different stores where there are two (one succeeds, the
// other is ECONFLICT), while other writers ask for leases of the seated
// users (a lease or a refusal, nothing else). Then the counter agrees
// (10 new users get a seat, an 11th is refused) and the audit chain
// verifies with one event per assignment and revocation.
func ConcurrentSeats(t *testing.T, stores []store.Store) {
	const writers, tries, seats, users = 16, 3, 10, 20
	f := newFx(t, stores[0])
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(seats, catalog.SeatsExplicit))
	before := f.lastSeq()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string][]string{} // user -> seat ids it got
	)
	for i := range writers * len(stores) {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for r := range tries {
				user := fmt.Sprintf("user-%d", (i*tries+r)%users)
				seat := f.seat(ent.EntitlementID, user)
				if err := s.AssignSeat(f.ctx, seat); err != nil {
					if catalog.ErrorCode(err) != catalog.ECONFLICT {
						t.Errorf("writer %d assign to %s: %v", i, user, err)
					}
					continue
				}
				mu.Lock()
				got[user] = append(got[user], seat.SeatAssignmentID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != seats {
		t.Fatalf("%d users got a seat, want %d (%v)", len(got), seats, got)
	}
	for user, ids := range got {
		if len(ids) != 1 {
			t.Fatalf("%s got %d seats (%v), want 1", user, len(ids), ids)
		}
	}
	var revoked, conflicted atomic.Int64
	for user, ids := range got {
		for k := range 2 {
			s := stores[k%len(stores)]
			wg.Go(func() {
				_, err := s.RevokeSeat(f.ctx, ent.EntitlementID, ids[0], "usr_admin", time.Time{})
				switch {
				case err == nil:
					revoked.Add(1)
				case catalog.ErrorCode(err) == catalog.ECONFLICT:
					conflicted.Add(1)
				default:
					t.Errorf("revoke %s of %s: %v", ids[0], user, err)
				}
			})
			wg.Go(func() {
				l := f.lease(ent.EntitlementID, user, f.now)
				l.SubjectType = catalog.SubjectUser
				if _, err := s.AcquireLease(f.ctx, l); err != nil && catalog.ErrorCode(err) != catalog.EFORBIDDEN {
					t.Errorf("lease for %s while its seat is revoked: %v, want a lease or EFORBIDDEN", user, err)
				}
			})
		}
	}
	wg.Wait()
	if r, c := revoked.Load(), conflicted.Load(); r != seats || c != seats {
		t.Fatalf("two revocations of each of %d seats: %d succeeded, %d conflicted; want %d each", seats, r, c, seats)
	}
	all, _, err := stores[0].Seats(f.ctx, ent.EntitlementID, store.Page{Limit: store.MaxLimit})
	must(t, err)
	for _, st := range all {
		if st.RevokedAt == nil {
			t.Errorf("seat %s of %s still active after its revocation", st.SeatAssignmentID, st.SubjectID)
		}
	}
	for j := range seats {
		s := stores[j%len(stores)]
		if err := s.AssignSeat(f.ctx, f.seat(ent.EntitlementID, fmt.Sprintf("after-%d", j))); err != nil {
			t.Fatalf("seat %d of %d after the revocations: %v (the counter kept revoked seats)", j+1, seats, err)
		}
	}
	if err := stores[0].AssignSeat(f.ctx, f.seat(ent.EntitlementID, "after-extra")); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a seat beyond %d: %v, want ECONFLICT (the counter lost seats)", seats, err)
	}
	types := map[string]int{}
	for _, ev := range f.eventsAfter(before) {
		types[ev.EventType]++
	}
	if got, want := types["seat.assigned"], 2*seats; got != want {
		t.Errorf("%d seat.assigned events, want %d", got, want)
	}
	if got, want := types["seat.revoked"], seats; got != want {
		t.Errorf("%d seat.revoked events, want %d", got, want)
	}
	f.verifyChain()
}

// ConcurrentLeaseChurn runs 16 writers per store of stores (instances on
// one database, or one store) taking and giving back leases of one
// entitlement of 6 seats, 4 rounds each, a subject a round: a refusal
// (every seat taken) is ECONFLICT, and the release of a lease a writer
// got always succeeds. Then no lease is active and the counter agrees
// (6 new subjects get a seat, a 7th is refused), two releases of one
// lease at once from different stores give one success and one ECONFLICT,
// and the audit chain verifies with one event per lease issued and
// released.
func ConcurrentLeaseChurn(t *testing.T, stores []store.Store) {
	const writers, rounds, seats = 16, 4, 6
	f := newFx(t, stores[0])
	tn, p := f.tenant(), f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(seats, ""))
	before := f.lastSeq()
	now := f.now
	var (
		wg                 sync.WaitGroup
		issued, released   atomic.Int64
		single, conflicted atomic.Int64
	)
	for i := range writers * len(stores) {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for r := range rounds {
				l, err := s.AcquireLease(f.ctx, f.lease(ent.EntitlementID, fmt.Sprintf("c%d-%d", i, r), now))
				if err != nil {
					if catalog.ErrorCode(err) != catalog.ECONFLICT {
						t.Errorf("writer %d round %d acquire: %v", i, r, err)
					}
					continue
				}
				issued.Add(1)
				if _, err := s.ReleaseLease(f.ctx, l.LeaseID, "", false, now); err != nil {
					t.Errorf("writer %d round %d release %s: %v", i, r, l.LeaseID, err)
					continue
				}
				released.Add(1)
			}
		})
	}
	wg.Wait()
	if issued.Load() == 0 {
		t.Fatal("no lease was issued: the test proves nothing")
	}
	wantActive(t, f, ent.EntitlementID, now, 0)
	held := make([]*catalog.Lease, seats)
	for j := range held {
		l, err := stores[0].AcquireLease(f.ctx, f.lease(ent.EntitlementID, fmt.Sprintf("h%d", j), now))
		if err != nil {
			t.Fatalf("seat %d of %d after the churn: %v (the counter kept leases that were released)", j+1, seats, err)
		}
		held[j] = l
	}
	if _, err := stores[0].AcquireLease(f.ctx, f.lease(ent.EntitlementID, "h-extra", now)); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a lease beyond %d seats after the churn: %v, want ECONFLICT (the counter lost leases)", seats, err)
	}
	for j, l := range held {
		for k := range 2 {
			s := stores[(j+k)%len(stores)]
			wg.Go(func() {
				_, err := s.ReleaseLease(f.ctx, l.LeaseID, "", false, now)
				switch {
				case err == nil:
					single.Add(1)
				case catalog.ErrorCode(err) == catalog.ECONFLICT:
					conflicted.Add(1)
				default:
					t.Errorf("release %s: %v", l.LeaseID, err)
				}
			})
		}
	}
	wg.Wait()
	if got, got2 := single.Load(), conflicted.Load(); got != seats || got2 != seats {
		t.Fatalf("two releases of each of %d leases: %d succeeded, %d conflicted; want %d each", seats, got, got2, seats)
	}
	wantActive(t, f, ent.EntitlementID, now, 0)
	types := map[string]int{}
	for _, ev := range f.eventsAfter(before) {
		types[ev.EventType]++
	}
	if got, want := types["lease.issued"], int(issued.Load())+seats; got != want {
		t.Errorf("%d lease.issued events, want %d", got, want)
	}
	if got, want := types["lease.released"], int(released.Load())+seats; got != want {
		t.Errorf("%d lease.released events, want %d", got, want)
	}
	f.verifyChain()
}

// ConcurrentIdempotency runs 16 copies of one request per store of
// stores (instances on one database, or one store) on each of 8
// Idempotency-Keys at once, as a client's retries spread over instances
// would: each reserves the key; the one that gets it creates a tenant
// under its attempt and completes the key with the answer; the others
// get the reservation or the answer, never a second reservation. Exactly
// one copy per key runs, one tenant per key exists, and every key holds
// its runner's answer.
func ConcurrentIdempotency(t *testing.T, stores []store.Store) {
	const keys, copies = 8, 16
	f := newFx(t, stores[0])
	stale := time.Now().Add(-time.Hour) // no reservation is taken over
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ran    = map[string][]string{} // key -> attempts that reserved it
		tenant = map[string]string{}   // key -> the tenant its runner created
	)
	for k := range keys {
		key := fmt.Sprintf("tok_concurrent:key-%d", k)
		hash := randHash()
		for i := range copies * len(stores) {
			s := stores[i%len(stores)]
			attempt := fmt.Sprintf("att-%d-%d", k, i)
			wg.Go(func() {
				held, err := s.ReserveIdempotency(f.ctx, key, hash, attempt, stale)
				if err != nil {
					t.Errorf("%s copy %d: reserve: %v", key, i, err)
					return
				}
				if held != nil {
					if held.RequestHash != hash || held.Attempt == attempt {
						t.Errorf("%s copy %d: held %+v, want another attempt's record of the request", key, i, held)
					}
					return
				}
				mu.Lock()
				ran[key] = append(ran[key], attempt)
				mu.Unlock()
				tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: key}
				if err := s.CreateTenant(store.WithIdempotencyAttempt(f.ctx, key, attempt), tn); err != nil {
					t.Errorf("%s copy %d: create: %v", key, i, err)
					return
				}
				mu.Lock()
				tenant[key] = tn.TenantID
				mu.Unlock()
				body := []byte(`{"tenant_id":"` + tn.TenantID + `"}`)
				if err := s.CompleteIdempotency(f.ctx, key, &store.IdempotencyRecord{RequestHash: hash, Attempt: attempt, Status: 201, Body: body}); err != nil {
					t.Errorf("%s copy %d: complete: %v", key, i, err)
				}
			})
		}
	}
	wg.Wait()
	named := map[string]int{}
	cursor := ""
	for {
		ts, next, err := f.s.Tenants(f.ctx, store.Page{Cursor: cursor, Limit: store.MaxLimit})
		must(t, err)
		for _, tn := range ts {
			named[tn.Name]++
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	for k := range keys {
		key := fmt.Sprintf("tok_concurrent:key-%d", k)
		if got := len(ran[key]); got != 1 {
			t.Errorf("%s: %d copies reserved it (%v), want 1", key, got, ran[key])
		}
		if got := named[key]; got != 1 {
			t.Errorf("%s: %d tenants created, want 1", key, got)
		}
		rec, err := f.s.Idempotency(f.ctx, key)
		must(t, err)
		if want := `{"tenant_id":"` + tenant[key] + `"}`; rec.Pending() || rec.Status != 201 || string(rec.Body) != want {
			t.Errorf("%s: record %+v, want status 201 and %s", key, rec, want)
		}
	}
}

// ConcurrentLeases runs 16 concurrent writers per store of stores
// (instances on one database, or one store) asking for leases: on an
// entitlement of 10 seats, 4 subjects each, more than there are seats,
// the same 10 subjects renewing from every writer, and on one entitlement
// per writer of its own. Exactly 10 subjects hold a seat, every other
// request is refused with ECONFLICT, renewals of a held seat all succeed,
// the counters agree with the leases, every writer's own entitlement has
// all its leases, and the audit chain verifies with one event per lease
// issued or renewed.
func ConcurrentLeases(t *testing.T, stores []store.Store) {
	const writers, each, seats = 16, 4, 10
	f := newFx(t, stores[0])
	tn, p := f.tenant(), f.product("")
	shared := f.entitlement(tn.TenantID, p.ProductID, entPolicy(seats, ""))
	n := writers * len(stores)
	own := make([]*catalog.Entitlement, n)
	for i := range own {
		own[i] = f.entitlement(tn.TenantID, f.product("").ProductID, entPolicy(each, ""))
	}
	before := f.lastSeq()
	now := f.now
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		granted, renewed int
		holders          = map[string]bool{}
	)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for j := range each {
				subject := fmt.Sprintf("m%d-%d", i, j)
				_, err := s.AcquireLease(f.ctx, f.lease(shared.EntitlementID, subject, now))
				mu.Lock()
				switch {
				case err == nil:
					granted++
					holders[subject] = true
				case catalog.ErrorCode(err) != catalog.ECONFLICT:
					t.Errorf("writer %d acquire %s: %v", i, subject, err)
				}
				mu.Unlock()
				if _, err := s.AcquireLease(f.ctx, f.lease(own[i].EntitlementID, subject, now)); err != nil {
					t.Errorf("writer %d own entitlement %s: %v", i, subject, err)
				}
			}
		})
	}
	wg.Wait()
	if granted != seats || len(holders) != seats {
		t.Fatalf("%d leases granted to %d subjects on %d seats", granted, len(holders), seats)
	}
	var subjects []string
	for s := range holders {
		subjects = append(subjects, s)
	}
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			subject := subjects[i%len(subjects)]
			_, err := s.AcquireLease(f.ctx, f.lease(shared.EntitlementID, subject, now.Add(time.Minute)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("writer %d renew %s: %v", i, subject, err)
				return
			}
			renewed++
		})
	}
	wg.Wait()
	wantActive(t, f, shared.EntitlementID, now.Add(time.Minute), seats)
	for _, e := range own {
		wantActive(t, f, e.EntitlementID, now, each)
	}
	types := map[string]int{}
	for _, ev := range f.eventsAfter(before) {
		types[ev.EventType]++
	}
	if got, want := types["lease.issued"], seats+n*each; got != want {
		t.Errorf("%d lease.issued events, want %d", got, want)
	}
	if got, want := types["lease.renewed"], renewed; got != want {
		t.Errorf("%d lease.renewed events, want %d", got, want)
	}
	f.verifyChain()
}

// ConcurrentCatalogWrites runs 16 concurrent writers per store of stores
// (instances on one database, or one store) on conflicting catalog
// writes: each round, every writer creates the same product id, then a
// release of the same product+channel+version (each its own release id),
// then a release of its own, and one writer names a missing product.
// Exactly one of each conflicting write wins, every other is refused with
// ECONFLICT and leaves nothing behind, the writes of their own all land,
// and the audit chain verifies with one event per winning write.
func ConcurrentCatalogWrites(t *testing.T, stores []store.Store) {
	const writers, rounds = 16, 3
	f := newFx(t, stores[0])
	n := writers * len(stores)
	for round := range rounds {
		before := f.lastSeq()
		productID := catalog.NewID(catalog.PrefixProduct)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := map[string]int{}
		releaseOf := map[string]string{} // own release id -> its writer's error
		for i := range n {
			s := stores[i%len(stores)]
			wg.Go(func() {
				count := func(what string, err error) {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins[what]++
					case catalog.ErrorCode(err) == catalog.ECONFLICT:
					case what == "missing" && catalog.ErrorCode(err) == catalog.ENOTFOUND:
					default:
						t.Errorf("round %d writer %d %s: %v", round, i, what, err)
					}
				}
				p := &catalog.Product{ProductID: productID, Name: fmt.Sprintf("writer %d", i)}
				count("product", s.CreateProduct(f.ctx, p))
				same := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: "stable", Version: "1.0.0"}
				count("same release", s.CreateRelease(f.ctx, same))
				own := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: "stable", Version: fmt.Sprintf("2.0.%d", i)}
				err := s.CreateRelease(f.ctx, own)
				count("own release", err)
				mu.Lock()
				releaseOf[own.ReleaseID] = fmt.Sprint(err)
				mu.Unlock()
				if i == 0 {
					missing := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: "prd_missing", Channel: "stable", Version: "1.0.0"}
					count("missing", s.CreateRelease(f.ctx, missing))
				}
			})
		}
		wg.Wait()
		want := map[string]int{"product": 1, "same release": 1, "own release": n}
		for what, w := range want {
			if got := wins[what]; got != w {
				t.Errorf("round %d: %d writers won %q, want %d", round, got, what, w)
			}
		}
		if wins["missing"] != 0 {
			t.Errorf("round %d: a release of a missing product was created", round)
		}
		for id, err := range releaseOf {
			if _, got := f.s.Release(f.ctx, id); got != nil && err == "<nil>" {
				t.Errorf("round %d: release %s was acknowledged but is missing: %v", round, id, got)
			}
		}
		rels, _, err := f.s.Releases(f.ctx, productID, store.Page{Limit: store.MaxLimit})
		must(t, err)
		if len(rels) != n+1 {
			t.Errorf("round %d: product holds %d releases, want %d", round, len(rels), n+1)
		}
		types := map[string]int{}
		for _, ev := range f.eventsAfter(before) {
			types[ev.EventType]++
		}
		if types["product.created"] != 1 || types["release.created"] != n+1 || len(types) != 2 {
			t.Errorf("round %d: audit events %v, want 1 product.created and %d release.created", round, types, n+1)
		}
	}
	f.verifyChain()
}
