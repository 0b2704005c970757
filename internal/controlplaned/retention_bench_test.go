package controlplaned_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/store/postgres"
)

// releaseLoader is the stores' fixture loader (kv.Store.LoadReleases).
type releaseLoader interface {
	store.Store
	Backend() kv.Backend
	LoadReleases(ctx context.Context, rels []*catalog.Release, arts []*catalog.Artifact, ras []*catalog.ReleaseArtifact) error
}

// sizedStore is a store and the bytes its data occupies.
type sizedStore struct {
	releaseLoader
	size func(ctx context.Context) (int64, error)
}

func boltSized(b *testing.B) sizedStore {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	// Pages in use: the file keeps its high-water mark and later writes
	// reuse its free pages.
	return sizedStore{db, func(context.Context) (int64, error) {
		s, err := db.Size()
		return s.InUse, err
	}}
}

func postgresSized(b *testing.B) sizedStore {
	url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		b.Skip("OUTPOST_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()
	var r [6]byte
	rand.Read(r[:])
	schema := "outpost_bench_" + hex.EncodeToString(r[:])
	db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		db.Close()
		conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		conn.Close(ctx)
	})
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	// The table with its TOAST table and indexes, after a VACUUM (what
	// autovacuum does between builds) made the pruned rows' space
	// reusable.
	return sizedStore{db, func(ctx context.Context) (int64, error) {
		if _, err := conn.Exec(ctx, "VACUUM outpost_kv"); err != nil {
			return 0, err
		}
		var n int64
		err := conn.QueryRow(ctx, "SELECT pg_total_relation_size('outpost_kv')").Scan(&n)
		return n, err
	}}
}

// releases makes n releases of product, each with one verified artifact,
// versions 1.<from+i>.0.
func releases(productID string, from, n int) ([]*catalog.Release, []*catalog.Artifact, []*catalog.ReleaseArtifact) {
	now := time.Now().UTC()
	rels := make([]*catalog.Release, n)
	arts := make([]*catalog.Artifact, n)
	ras := make([]*catalog.ReleaseArtifact, n)
	for i := range n {
		v := from + i
		rels[i] = &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: "stable",
			Version: fmt.Sprintf("1.%d.0", v), Status: catalog.ReleaseActive, Metadata: []byte(`{"notes":"x"}`)}
		arts[i] = &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged,
			SHA256: fmt.Sprintf("%064x", v), SizeBytes: int64(1000 + v), StoragePath: "blobs/x", Status: catalog.ArtifactVerified, VerifiedAt: &now}
		ras[i] = &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: rels[i].ReleaseID,
			ArtifactID: arts[i].ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}
	}
	return rels, arts, ras
}

// BenchmarkRetention_DatabaseSize: a tenant that sees a catalog of N
// releases (BENCH_RETENTION_RELEASES, default 100,000; one verified
// artifact each) is built 20 times, one new release before each build
// after the first, with retention applied after each build as
// housekeeping does: the default Keep (10), and Keep 2. Reported: the store's size after the
// first build and after the 20th, and their ratio (goal ≤ 1.5), and the
// bytes of the schema 1 envelopes kept after the 20th. bbolt:
// pages in use; PostgreSQL: pg_total_relation_size of the table after a
// VACUUM.
//
//	BENCH_RETENTION_RELEASES=10000 go test -run '^$' -bench Retention_DatabaseSize -benchtime 1x ./internal/controlplaned
func BenchmarkRetention_DatabaseSize(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RETENTION_RELEASES")); err == nil && v > 0 {
		n = v
	}
	const builds = 20
	type tc struct {
		name string
		open func(*testing.B) sizedStore
		keep int
	}
	var cases []tc
	for _, keep := range []int{10, 2} {
		cases = append(cases, tc{"bolt", boltSized, keep}, tc{"postgres", postgresSized, keep})
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/keep=%d", c.name, c.keep), func(b *testing.B) {
			st := c.open(b)
			dir := b.TempDir()
			keys := filepath.Join(dir, "keys")
			if _, err := keyring.Generate(keys); err != nil {
				b.Fatal(err)
			}
			if _, err := controlplaned.TUFDir(keys).Init(1, 1, ""); err != nil {
				b.Fatal(err)
			}
			blobs, err := disk.New(filepath.Join(dir, "blobs"))
			if err != nil {
				b.Fatal(err)
			}
			dek := make([]byte, 32)
			rand.Read(dek)
			sealer, err := controlplane.NewSealer(dek)
			if err != nil {
				b.Fatal(err)
			}
			app := controlplane.New(controlplane.Options{Store: st.releaseLoader, Blobs: blobs, Keys: controlplaned.DirKeyring(keys), Secrets: sealer,
				Config: controlplane.Config{Retention: controlplane.Retention{Keep: c.keep}}})
			b.Cleanup(app.Drain)
			if err := controlplaned.EnableTUF(app, keys); err != nil {
				b.Fatal(err)
			}
			op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "bench"})
			prod, err := app.CreateProduct(op, controlplane.ProductInput{Name: "big", Distribution: catalog.DistributionOpen})
			if err != nil {
				b.Fatal(err)
			}
			load := func(from, k int) error {
				rels, arts, ras := releases(prod.ProductID, from, k)
				return st.LoadReleases(op, rels, arts, ras)
			}
			if err := load(0, n); err != nil {
				b.Fatal(err)
			}
			ten, err := app.CreateTenant(op, controlplane.TenantInput{Name: "big"})
			if err != nil {
				b.Fatal(err)
			}
			var first, last int64
			var took time.Duration
			b.ResetTimer()
			for range b.N {
				for i := range builds {
					if i > 0 {
						if err := load(n+i, 1); err != nil {
							b.Fatal(err)
						}
					}
					start := time.Now()
					if _, err := app.BuildSnapshot(op, ten.TenantID); err != nil {
						b.Fatal(err)
					}
					took += time.Since(start)
					if _, err := app.Prune(op); err != nil {
						b.Fatal(err)
					}
					size, err := st.size(op)
					if err != nil {
						b.Fatal(err)
					}
					switch i {
					case 0:
						first = size
					case builds - 1:
						last = size
					}
				}
			}
			b.StopTimer()
			env, err := bucketBytes(op, st.Backend(), "snapshot_envelopes")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(env)/(1<<20), "MiB-envelopes-after-20")
			b.ReportMetric(float64(first)/(1<<20), "MiB-after-1")
			b.ReportMetric(float64(last)/(1<<20), "MiB-after-20")
			b.ReportMetric(float64(last)/float64(first), "size-ratio")
			b.ReportMetric(took.Seconds()/float64(builds*b.N), "s/build")
		})
	}
}

// bucketBytes sums the keys and values of one of the store's buckets
// (uncompressed, whatever the backend does with them).
func bucketBytes(ctx context.Context, be kv.Backend, bucket string) (int64, error) {
	var n int64
	err := be.View(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			n += int64(len(k) + len(v))
			return nil
		})
	})
	return n, err
}
