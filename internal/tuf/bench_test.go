package tuf

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// The benchmark tenant: 10 products x 10,000 releases x 1 artifact.
const benchProducts, benchReleases = 10, 10_000

var (
	benchOnce sync.Once
	benchView *snapshot.Manifest
)

func bigView() *snapshot.Manifest {
	benchOnce.Do(func() { benchView = view(benchProducts, benchReleases, 1) })
	return cloneView(benchView)
}

func cloneView(m *snapshot.Manifest) *snapshot.Manifest {
	c := *m
	c.Releases = append([]snapshot.Release(nil), m.Releases...)
	c.Artifacts = append([]snapshot.Artifact(nil), m.Artifacts...)
	c.Products = append([]snapshot.Product(nil), m.Products...)
	return &c
}

func size(files []File) (raw, gz int) {
	for _, f := range files {
		raw += len(f.Data)
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(f.Data)
		_ = w.Close()
		gz += b.Len()
	}
	return raw, gz
}

func rawSize(files []File) (n int) {
	for _, f := range files {
		n += len(f.Data)
	}
	return n
}

// BenchmarkBuild_Full builds the 100,000-release tenant from nothing.
func BenchmarkBuild_Full(b *testing.B) {
	m := bigView()
	for b.Loop() {
		f := newFixture(b, snapshottest.TenantID, ProductOptions{})
		files := f.build(m)
		raw, gz := size(files)
		b.ReportMetric(float64(raw)/(1<<20), "MiB")
		b.ReportMetric(float64(gz)/(1<<20), "gzip-MiB")
		b.ReportMetric(float64(len(files)), "files")
	}
}

// BenchmarkBuild_OneRelease adds one release to the 100,000-release
// tenant: Build (every product diffed) and the control plane's path
// (ProductSet.Update of the one product, then BuildTenant).
func BenchmarkBuild_OneRelease(b *testing.B) {
	for _, mode := range []string{"Build", "ProductThenTenant"} {
		b.Run(mode, func(b *testing.B) {
			m := bigView()
			f := newFixture(b, snapshottest.TenantID, ProductOptions{})
			f.build(m)
			arts := map[string]*snapshot.Artifact{}
			n := 0
			var raw, gz int
			for b.Loop() {
				n++
				f.now = f.now.Add(time.Second)
				addRelease(m, 3, n)
				var files []File
				if mode == "Build" {
					files = f.build(m)
				} else {
					p := m.Products[3]
					var rels []snapshot.Release
					for _, r := range m.Releases {
						if r.ProductID == p.ProductID {
							rels = append(rels, r)
						}
					}
					for i := range m.Artifacts {
						arts[m.Artifacts[i].ArtifactID] = &m.Artifacts[i]
					}
					pf, err := f.products.Update(context.Background(), p, rels, arts, f.now)
					if err != nil {
						b.Fatal(err)
					}
					st, tf, err := f.builder.BuildTenant(context.Background(), f.state, m, f.now)
					if err != nil {
						b.Fatal(err)
					}
					f.state, files = st, append(pf, tf...)
				}
				raw, gz = size(files)
			}
			b.ReportMetric(float64(raw), "changed-B")
			b.ReportMetric(float64(gz), "changed-gzip-B")
		})
	}
}

// BenchmarkBuild_Refresh is a freshness-only refresh of the
// 100,000-release tenant.
func BenchmarkBuild_Refresh(b *testing.B) {
	f := newFixture(b, snapshottest.TenantID, ProductOptions{})
	f.build(bigView())
	var raw int
	for b.Loop() {
		f.now = f.now.Add(time.Minute)
		raw, _ = size(f.refresh())
	}
	b.ReportMetric(float64(raw), "changed-B")
}

// BenchmarkBuild_SharedProduct1000Tenants: one new release in a
// 10,000-release product visible to 1,000 tenants: the product re-signed
// once, then every tenant's snapshot and timestamp.
func BenchmarkBuild_SharedProduct1000Tenants(b *testing.B) {
	ctx := context.Background()
	const tenants = 1000
	m := view(1, benchReleases, 1)
	f := newFixture(b, snapshottest.TenantID, ProductOptions{})
	f.build(m)
	type tenant struct {
		b  *Builder
		st *State
		m  *snapshot.Manifest
	}
	ts := make([]tenant, tenants)
	for i := range ts {
		id := fmt.Sprintf("ten_%06d", i)
		v := *m
		v.TenantID, v.Tenant.TenantID, v.Releases, v.Artifacts = id, id, nil, nil
		bl := &Builder{TenantID: id, Products: f.products, Keys: f.builder.Keys}
		st, _, err := bl.BuildTenant(ctx, nil, &v, f.now)
		if err != nil {
			b.Fatal(err)
		}
		ts[i] = tenant{bl, st, &v}
	}
	arts := map[string]*snapshot.Artifact{}
	n := 0
	var total int
	for b.Loop() {
		n++
		f.now = f.now.Add(time.Second)
		addRelease(m, 0, n)
		for i := range m.Artifacts {
			arts[m.Artifacts[i].ArtifactID] = &m.Artifacts[i]
		}
		files, err := f.products.Update(ctx, m.Products[0], m.Releases, arts, f.now)
		if err != nil {
			b.Fatal(err)
		}
		total = rawSize(files)
		for i := range ts {
			st, tf, err := ts[i].b.BuildTenant(ctx, ts[i].st, ts[i].m, f.now)
			if err != nil {
				b.Fatal(err)
			}
			ts[i].st = st
			total += rawSize(tf)
		}
	}
	b.ReportMetric(float64(total)/tenants, "B/tenant")
}

// rootOnlyStore holds the root and drops everything else, so that a
// benchmark measures the client's memory, not an in-memory store's.
type rootOnlyStore struct {
	root []byte
	put  atomic.Int64
}

func (s *rootOnlyStore) Get(_ context.Context, name string) ([]byte, error) {
	if name == storeRoot && s.root != nil {
		return s.root, nil
	}
	return nil, ErrNotFound
}

func (s *rootOnlyStore) Put(_ context.Context, name string, data []byte) error {
	if name == storeRoot {
		s.root = data
	}
	s.put.Add(int64(len(data)))
	return nil
}

// BenchmarkClient_FirstLoad is a client's first full sync of the
// 100,000-release tenant. peak-heap-MiB is the heap in use at its peak
// while the update runs, above what the process held before (the
// vendor's side of the benchmark).
func BenchmarkClient_FirstLoad(b *testing.B) {
	f := newFixture(b, snapshottest.TenantID, ProductOptions{})
	f.build(bigView())
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
		s := &rootOnlyStore{}
		c := f.client(s, f.rootData)
		ch, err := c.Update(context.Background())
		close(done)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(peak.Load()-base.HeapInuse)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(after.HeapInuse-base.HeapInuse)/(1<<20), "held-heap-MiB")
		b.ReportMetric(float64(ch.BytesFetched)/(1<<20), "fetched-MiB")
		runtime.KeepAlive(c)
	}
}

// BenchmarkClient_Incremental: the vendor adds one release to the
// 100,000-release tenant, a synced client updates.
func BenchmarkClient_Incremental(b *testing.B) {
	ctx := context.Background()
	m := bigView()
	f := newFixture(b, snapshottest.TenantID, ProductOptions{})
	f.build(m)
	c := f.client(NewMemStore(), f.rootData)
	if _, err := c.Update(ctx); err != nil {
		b.Fatal(err)
	}
	n := 0
	var fetched int64
	for b.Loop() {
		b.StopTimer()
		n++
		f.now = f.now.Add(time.Second)
		addRelease(m, 5, n)
		f.build(m)
		b.StartTimer()
		ch, err := c.Update(ctx)
		if err != nil {
			b.Fatal(err)
		}
		fetched = ch.BytesFetched
		if len(ch.Targets) != 1 {
			b.Fatalf("changed targets %d, want 1", len(ch.Targets))
		}
	}
	b.ReportMetric(float64(fetched), "fetched-B")
}
