package snapshot_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/testenv"
)

// The scale: one tenant, 100,000 releases of one artifact each.
const benchReleases = 100_000

// benchInput is the 100k-release catalog; made per benchmark, not kept,
// so that its 300,000 objects do not burden the GC of other benchmarks.
func benchInput() *catalog.SnapshotInput { return snapshottest.Input(10, benchReleases/10, 1) }

// report adds CPU time per op and the live heap after the last op (the
// result still held), in MB.
func report(b *testing.B, cpu0 time.Duration, keep any) {
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	runtime.KeepAlive(keep)
}

// BenchmarkBuild100k builds the in-memory view of 100,000 releases
// (what the control plane hands the TUF builder).
func BenchmarkBuild100k(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	runtime.GC()
	cpu0 := testenv.ProcessCPU()
	var m *snapshot.Manifest
	for b.Loop() {
		m = snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "snp_bench", Now: snapshottest.Now, TTL: snapshottest.TTL})
	}
	if len(m.Releases) != benchReleases {
		b.Fatalf("built %d releases", len(m.Releases))
	}
	report(b, cpu0, m)
}
