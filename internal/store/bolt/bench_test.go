package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/storetest"
	"github.com/outpost/outpost/internal/testenv"
)

// bulkLoad writes n releases of one product, each with one verified
// artifact, in a single transaction (bypassing the audit log: this is
// fixture data for benchmarks).
func bulkLoad(b *testing.B, db *DB, tenantID string, n int) {
	b.Helper()
	now := time.Now().UTC()
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Big", Distribution: catalog.DistributionOpen, Metadata: []byte(`{}`), CreatedAt: now}
	err := db.bdb.Update(func(tx *bbolt.Tx) error {
		if err := putJSON(tx, bTenants, []byte(tenantID), &catalog.Tenant{TenantID: tenantID, Name: "T", Status: catalog.TenantActive, Metadata: []byte(`{}`), CreatedAt: now}); err != nil {
			return err
		}
		if err := putJSON(tx, bProducts, []byte(p.ProductID), p); err != nil {
			return err
		}
		for i := range n {
			r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: fmt.Sprintf("1.%d.%d", i/1000, i%1000), PublishedAt: now, Status: catalog.ReleaseActive, Metadata: []byte(`{"notes":"x"}`)}
			vt := now
			a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: fmt.Sprintf("%064x", i), SizeBytes: int64(1000 + i), StoragePath: "blobs/x", Status: catalog.ArtifactVerified, VerifiedAt: &vt, CreatedAt: now}
			ra := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: a.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}
			for _, put := range []struct {
				bucket []byte
				key    string
				v      any
			}{{bReleases, r.ReleaseID, r}, {bArtifacts, a.ArtifactID, a}, {bRelArts, ra.ReleaseArtifactID, ra}} {
				if err := putJSON(tx, put.bucket, []byte(put.key), put.v); err != nil {
					return err
				}
			}
			if err := putIdx(tx, iReleasePCV, key(r.ProductID, r.Channel, r.Version), r.ReleaseID); err != nil {
				return err
			}
			if err := putIdx(tx, iReleaseProduct, key(r.ProductID, r.ReleaseID), ""); err != nil {
				return err
			}
			if err := putIdx(tx, iRelArtRelease, key(r.ReleaseID, ra.ReleaseArtifactID), ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreateSnapshot_100k measures gathering the input of a tenant
// that sees 100,000 releases (one artifact each) and storing a snapshot;
// the build itself (sign, encode) is the snapshot package's and is left
// out. cold decodes the vendor-wide catalog; warm reuses it, as every
// tenant's build after the first does until the catalog changes.
func BenchmarkCreateSnapshot_100k(b *testing.B) {
	db, _ := openTemp(b)
	defer db.Close()
	tenantID := catalog.NewID(catalog.PrefixTenant)
	bulkLoad(b, db, tenantID, 100_000)
	ctx := context.Background()
	build := func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if len(in.Releases) != 100_000 || len(in.Artifacts) != 100_000 || len(in.ReleaseArtifacts) != 100_000 {
			return nil, fmt.Errorf("gathered %d releases, %d artifacts, %d release artifacts", len(in.Releases), len(in.Artifacts), len(in.ReleaseArtifacts))
		}
		return &catalog.Snapshot{SnapshotID: catalog.NewID(catalog.PrefixSnapshot), TenantID: in.Tenant.TenantID, Sequence: in.Sequence, Envelope: []byte(`{}`)}, nil
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		start := testenv.ProcessCPU()
		defer func() { b.ReportMetric(float64((testenv.ProcessCPU()-start).Milliseconds())/float64(b.N), "cpu-ms/op") }()
		for b.Loop() {
			db.DropCache() // as in a fresh process
			if _, err := db.CreateSnapshot(ctx, tenantID, build); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		start := testenv.ProcessCPU()
		defer func() { b.ReportMetric(float64((testenv.ProcessCPU()-start).Milliseconds())/float64(b.N), "cpu-ms/op") }()
		for b.Loop() {
			if _, err := db.CreateSnapshot(ctx, tenantID, build); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAcquireLease: online lease issuance, 32 concurrent clients,
// fsync on, with 0 and 100,000 active leases on the entitlement (the rate
// must not depend on them):
//
//	go test -run '^$' -bench AcquireLease -benchtime 3000x ./internal/store/bolt
func BenchmarkAcquireLease(b *testing.B) {
	for _, active := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("active=%d", active), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "outpost.db"), Options{NoWarm: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.BenchAcquireLease(b, db, active, db.LoadLeases)
		})
	}
}

// BenchmarkLeaseChurn: leases issued and released at once, 32 clients,
// one entitlement, fsync on:
//
//	go test -run '^$' -bench LeaseChurn -benchtime 3000x ./internal/store/bolt
func BenchmarkLeaseChurn(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "outpost.db"), Options{NoWarm: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchLeaseChurn(b, []store.Store{db})
}

// BenchmarkRawPutFsync is the reference for BenchmarkAcquireLease: bare
// bbolt, 32 concurrent clients, each call one transaction putting one
// 200-byte value (fsync on):
//
//	go test -run '^$' -bench RawPutFsync -benchtime 3000x ./internal/store/bolt
func BenchmarkRawPutFsync(b *testing.B) {
	bdb, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("raw")); return err }); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	val := make([]byte, 200)
	b.SetParallelism((storetest.BenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := binary.BigEndian.AppendUint64(nil, uint64(seq.Add(1)))
			if err := bdb.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("raw")).Put(k, val) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkCatalogWrites: catalog writes (a new release with its audit
// event, fsync on) from 1 and from 16 concurrent writers; they share
// commits (group commit), so 16 writers should beat one by far:
//
//	go test -run '^$' -bench CatalogWrites -benchtime 2000x ./internal/store/bolt
func BenchmarkCatalogWrites(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "outpost.db"), Options{NoWarm: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.BenchCatalogWrites(b, []store.Store{db}, writers)
		})
	}
}
