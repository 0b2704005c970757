package kv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// lockWaiting is a shared backend on bbolt whose first shared
// transaction with hot keys, once armed, waits before it begins (as one
// waits for the advisory locks another instance holds) until the test
// lets it go. It records the hot keys of every shared transaction and,
// of each one that committed, how many leases the store then held.
type lockWaiting struct {
	Backend
	mu       sync.Mutex
	armed    bool
	waiting  chan struct{} // closed when the armed transaction waits
	release  chan struct{} // closed by the test to let it go
	hots     [][]BucketKey
	afterTxs []int
}

func (b *lockWaiting) UpdateShared(ctx context.Context, hot []BucketKey, fn func(Tx) error) error {
	b.mu.Lock()
	b.hots = append(b.hots, hot)
	wait := b.armed && len(hot) > 0
	if wait {
		b.armed = false
	}
	b.mu.Unlock()
	if wait {
		close(b.waiting)
		<-b.release
	}
	if err := b.Backend.Update(ctx, fn); err != nil {
		return err
	}
	n := 0
	if err := b.Backend.View(ctx, func(tx Tx) error {
		n = countKeys(tx.Bucket(bLeases))
		return nil
	}); err != nil {
		return err
	}
	b.mu.Lock()
	b.afterTxs = append(b.afterTxs, n)
	b.mu.Unlock()
	return nil
}

func (b *lockWaiting) TryUpdateSolo(ctx context.Context, fn func(Tx) error) (bool, error) {
	return true, b.Backend.Update(ctx, fn)
}

// TestSharedWrites_JoinWhileWaiting: shared calls that queue while a
// batch waits for its hot keys' locks join it when it begins, if it holds
// the locks they need (here: leases of its entitlement); others (leases
// of another entitlement) wait for a batch of their own. And a lease
// issued by this store names its entitlement's counter as a hot key when
// it is released; one issued by another store on the same database
// cannot, and names none.
func TestSharedWrites_JoinWhileWaiting(t *testing.T) {
	b := &lockWaiting{Backend: Bolt(openBuckets(t))}
	db := New(b, Options{})
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	now := time.Now().UTC().Truncate(time.Second)
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme", Status: catalog.TenantActive}
	if err := db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	ents := make([]*catalog.Entitlement, 2)
	for i := range ents {
		p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: fmt.Sprintf("p%d", i)}
		if err := db.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		ents[i] = &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
			Policy: []byte(`{"max_seats":100}`), StartsAt: now.Add(-time.Hour)}
		if err := db.CreateEntitlement(ctx, ents[i]); err != nil {
			t.Fatal(err)
		}
	}
	lease := func(ent *catalog.Entitlement, subject string) *catalog.Lease {
		return &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: ent.EntitlementID, SubjectType: catalog.SubjectMachine,
			SubjectID: subject, IssuedAt: now, ExpiresAt: now.Add(time.Hour), TokenHash: "0000000000000000000000000000000000000000000000000000000000000000"}
	}
	counter := func(ent *catalog.Entitlement) []BucketKey {
		return []BucketKey{{bLeaseCounts, []byte(ent.EntitlementID)}}
	}

	b.mu.Lock()
	b.armed, b.waiting, b.release = true, make(chan struct{}), make(chan struct{})
	b.hots, b.afterTxs = nil, nil
	b.mu.Unlock()
	const same, other = 6, 3
	var wg sync.WaitGroup
	errs := make(chan error, 1+same+other)
	acquire := func(l *catalog.Lease) {
		wg.Go(func() {
			_, err := db.AcquireLease(ctx, l)
			errs <- err
		})
	}
	acquire(lease(ents[0], "first"))
	<-b.waiting // the first batch waits for its locks; the rest queue
	for i := range same {
		acquire(lease(ents[0], fmt.Sprintf("same%d", i)))
	}
	for i := range other {
		acquire(lease(ents[1], fmt.Sprintf("other%d", i)))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := db.sharedGroup.Queued()
		if n == same+other {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", n, same+other)
		}
		time.Sleep(time.Millisecond)
	}
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	hots, after := b.hots, b.afterTxs
	b.mu.Unlock()
	if got, want := after[0], 1+same; got != want {
		t.Errorf("got %d leases after the first transaction, want %d (the leases of its entitlement joined it)", got, want)
	}
	if got, want := after[len(after)-1], 1+same+other; got != want {
		t.Errorf("got %d leases in the end, want %d", got, want)
	}
	for i, hot := range hots[1:] {
		if covers(hot, counter(ents[0])) {
			t.Errorf("transaction %d has hot keys %q: a lease of the first entitlement did not join the first", i+1, hot)
		}
	}

	// releaseHot issues a lease of the second entitlement from s and
	// releases it from db: the hot keys of the release's transaction.
	releaseHot := func(t *testing.T, s *Store, subject string) []BucketKey {
		t.Helper()
		l, err := s.AcquireLease(ctx, lease(ents[1], subject))
		if err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		b.hots = nil
		b.mu.Unlock()
		if _, err := db.ReleaseLease(ctx, l.LeaseID, "", true, now); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.hots[0]
	}
	t.Run("release", func(t *testing.T) {
		hot := releaseHot(t, db, "released-here")
		if want := counter(ents[1]); len(hot) != 1 || !covers(hot, want) {
			t.Errorf("release of a lease issued here: got hot keys %q, want %q", hot, want)
		}
	})
	t.Run("release elsewhere", func(t *testing.T) {
		other := New(b, Options{}) // another instance on the same database
		defer other.Close()
		if hot := releaseHot(t, other, "released-there"); len(hot) != 0 {
			t.Errorf("release of a lease issued by another instance: got hot keys %q, want none", hot)
		}
	})
}

// TestLeaseEnts_Bounded: the memory of issued leases keeps at most two
// generations, forgets the oldest first, and forgets a released lease.
func TestLeaseEnts_Bounded(t *testing.T) {
	var m leaseEnts
	id := func(i int) string { return fmt.Sprintf("lea_%026d", i) }
	const n = 3 * leaseEntsMax
	for i := range n {
		m.put(id(i), fmt.Sprintf("ent_%d", i%7))
	}
	if got, limit := len(m.cur)+len(m.old), 2*leaseEntsMax; got > limit {
		t.Errorf("got %d leases remembered, want at most %d", got, limit)
	}
	if ent, ok := m.get(id(n - 1)); !ok || ent != fmt.Sprintf("ent_%d", (n-1)%7) {
		t.Errorf("newest lease: got %q, %v; want its entitlement", ent, ok)
	}
	if _, ok := m.get(id(0)); ok {
		t.Error("oldest lease still remembered past two generations")
	}
	if got := len(m.ents); got != 7 {
		t.Errorf("got %d entitlement ids kept, want 7 (shared)", got)
	}
	m.drop(id(n - 1))
	if _, ok := m.get(id(n - 1)); ok {
		t.Error("released lease still remembered")
	}
}
