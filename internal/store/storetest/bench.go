package storetest

import (
	"context"
	"fmt"
	"runtime"
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
