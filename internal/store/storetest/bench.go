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
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
	now := time.Now().UTC()
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "bench", Status: catalog.TenantActive}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	if err := s.CreateTenant(ctx, tn); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateProduct(ctx, p); err != nil {
		b.Fatal(err)
	}
	e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: entPolicy(1_000_000, ""), StartsAt: now.Add(-time.Hour)}
	if err := s.CreateEntitlement(ctx, e); err != nil {
		b.Fatal(err)
	}
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

// BenchCatalogWrites measures catalog writes: writers concurrent clients on
// each store of stores (instances sharing one database; one store is one
// instance), each call creating a new release of one product, with its
// audit event. It reports writes/s over all of them.
func BenchCatalogWrites(b *testing.B, stores []store.Store, writers int) {
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	if err := stores[0].CreateProduct(ctx, p); err != nil {
		b.Fatal(err)
	}
	var seq, done atomic.Int64
	n := int64(b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range writers * len(stores) {
		s := stores[i%len(stores)]
		wg.Go(func() {
			for {
				v := seq.Add(1)
				if v > n {
					return
				}
				r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID,
					Channel: "stable", Version: fmt.Sprintf("1.0.%d", v)}
				if err := s.CreateRelease(ctx, r); err != nil {
					b.Error(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if done.Load() != n {
		b.Fatalf("%d of %d writes done", done.Load(), n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
