package storetest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// LeaseLoader stores leases as active ones without admission or audit
// (kv.Store.LoadLeases): the fixture of BenchAcquireLease.
type LeaseLoader func(ctx context.Context, leases []*catalog.Lease) error

// BenchClients is the number of concurrent clients BenchAcquireLease runs.
const BenchClients = 32

// BenchAcquireLease measures online lease issuance on s: BenchClients
// concurrent clients, each call a new subject taking a seat of one
// entitlement that already holds active leases (written by load first).
// It reports leases/s. The issuance cost must not depend on active.
func BenchAcquireLease(b *testing.B, s store.Store, active int, load LeaseLoader) {
	ctx := benchCtx()
	now := time.Now().UTC()
	e := benchEntitlement(b, s)
	if active > 0 {
		leases := make([]*catalog.Lease, active)
		for i := range leases {
			leases[i] = &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID,
				SubjectType: catalog.SubjectMachine, SubjectID: fmt.Sprintf("loaded-%d", i),
				IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour), TokenHash: randHash()}
		}
		if err := load(ctx, leases); err != nil {
			b.Fatal(err)
		}
		if n, err := s.ActiveLeaseCount(ctx, e.EntitlementID, time.Now()); err != nil || n != active {
			b.Fatalf("ActiveLeaseCount after the load = %d, %v; want %d", n, err, active)
		}
	}
	var seq atomic.Int64
	b.SetParallelism((BenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l := &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID,
				SubjectType: catalog.SubjectMachine, SubjectID: fmt.Sprintf("bench-%d", seq.Add(1)),
				IssuedAt: time.Now().UTC(), TokenHash: randHash()}
			if _, err := s.AcquireLease(ctx, l); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
}

// benchEntitlement creates a tenant, a product and an entitlement of
// 1,000,000 seats on s, started an hour ago.
func benchEntitlement(b *testing.B, s store.Store) *catalog.Entitlement {
	ctx := benchCtx()
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "bench", Status: catalog.TenantActive}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	if err := s.CreateTenant(ctx, tn); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateProduct(ctx, p); err != nil {
		b.Fatal(err)
	}
	e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: entPolicy(1_000_000, ""), StartsAt: time.Now().UTC().Add(-time.Hour)}
	if err := s.CreateEntitlement(ctx, e); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchKeyedLeases is BenchAcquireLease with no active leases, each
// request as the HTTP API runs one that carries an Idempotency-Key: the
// key reserved, the lease issued under the reservation's attempt, the
// answer stored. The clients are spread over stores (instances sharing
// one database; one store is one instance). It reports leases/s.
func BenchKeyedLeases(b *testing.B, stores []store.Store) {
	now := time.Now().UTC()
	benchLeaseClients(b, stores, func(ctx context.Context, s store.Store, e *catalog.Entitlement, n int64) error {
		key, hash, attempt := fmt.Sprintf("tok_bench:lease-%d", n), randHash(), fmt.Sprintf("att-%d", n)
		if held, err := s.ReserveIdempotency(ctx, key, hash, attempt, now.Add(-time.Hour)); err != nil || held != nil {
			return fmt.Errorf("reserve %s: %+v, %v", key, held, err)
		}
		l := &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID,
			SubjectType: catalog.SubjectMachine, SubjectID: fmt.Sprintf("bench-%d", n),
			IssuedAt: time.Now().UTC(), TokenHash: randHash()}
		if _, err := s.AcquireLease(store.WithIdempotencyAttempt(ctx, key, attempt), l); err != nil {
			return err
		}
		rec := &store.IdempotencyRecord{RequestHash: hash, Attempt: attempt, Status: 201, Body: []byte(`{"lease_id":"` + l.LeaseID + `"}`)}
		return s.CompleteIdempotency(ctx, key, rec)
	})
}

// BenchLeaseChurn measures leases taken and given back: BenchClients
// concurrent clients spread over stores (instances sharing one database),
// each call a new subject's lease on one entitlement, then its release,
// so that the entitlement's lease counter is written by issues and
// releases alike. It reports leases/s (each one issued and released).
func BenchLeaseChurn(b *testing.B, stores []store.Store) {
	e := benchLeaseClients(b, stores, func(ctx context.Context, s store.Store, e *catalog.Entitlement, n int64) error {
		hash := randHash()
		l := &catalog.Lease{LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID,
			SubjectType: catalog.SubjectMachine, SubjectID: fmt.Sprintf("churn-%d", n),
			IssuedAt: time.Now().UTC(), TokenHash: hash}
		got, err := s.AcquireLease(ctx, l)
		if err != nil {
			return err
		}
		if _, err := s.ReleaseLease(ctx, got.LeaseID, hash, false, time.Time{}); err != nil {
			return fmt.Errorf("release %s: %w", got.LeaseID, err)
		}
		return nil
	})
	if n, err := stores[0].ActiveLeaseCount(benchCtx(), e.EntitlementID, time.Now()); err != nil || n != 0 {
		b.Fatalf("ActiveLeaseCount after the churn = %d, %v; want 0", n, err)
	}
}

// benchLeaseClients runs b.N calls of call from BenchClients concurrent
// clients on a new entitlement, call n on stores[n%len(stores)], and
// reports leases/s; it returns the entitlement.
func benchLeaseClients(b *testing.B, stores []store.Store, call func(ctx context.Context, s store.Store, e *catalog.Entitlement, n int64) error) *catalog.Entitlement {
	ctx := benchCtx()
	e := benchEntitlement(b, stores[0])
	var seq atomic.Int64
	b.SetParallelism((BenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			if err := call(ctx, stores[int(n)%len(stores)], e, n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leases/s")
	return e
}

// BenchCatalogWrites measures catalog writes: writers concurrent clients on
// each store of stores (instances sharing one database; one store is one
// instance), each call creating a new release of one product, with its
// audit event. It reports writes/s over all of them.
func BenchCatalogWrites(b *testing.B, stores []store.Store, writers int) {
	productID, err := BenchProduct(stores[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := WriteReleases(stores, productID, "1.0.", Upto(int64(b.N)), writers); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchProduct creates the product that WriteReleases writes releases of.
func BenchProduct(s store.Store) (string, error) {
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	return p.ProductID, s.CreateProduct(benchCtx(), p)
}

func benchCtx() context.Context {
	return catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
}

// Upto hands out 1 to n, once each, to concurrent callers: the work of
// WriteReleases.
func Upto(n int64) func() (int64, bool) {
	var seq atomic.Int64
	return func() (int64, bool) {
		v := seq.Add(1)
		return v, v <= n
	}
}

// WriteReleases creates releases of productID, versions prefix+v for each
// v that next hands out until it says no more, from writers concurrent
// clients on each store of stores (another process writing beside it uses
// another prefix). It returns the first error, after every client has
// stopped.
func WriteReleases(stores []store.Store, productID, prefix string, next func() (int64, bool), writers int) error {
	ctx := benchCtx()
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range writers * len(stores) {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for !stop.Load() {
				v, ok := next()
				if !ok {
					return
				}
				r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID,
					Channel: "stable", Version: fmt.Sprintf("%s%d", prefix, v)}
				if err := s.CreateRelease(ctx, r); err != nil {
					once.Do(func() { first = fmt.Errorf("release %s%d: %w", prefix, v, err) })
					stop.Store(true) // the others stop too
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
