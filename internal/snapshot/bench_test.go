package snapshot_test

import (
	"encoding/json"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// The scale: one tenant, 100,000 releases of one artifact each.
const benchReleases = 100_000

var bench struct {
	envOnce sync.Once
	env     []byte
}

// benchInput is the 100k-release catalog; made per benchmark, not kept,
// so that its 300,000 objects do not burden the GC of other benchmarks.
func benchInput() *catalog.SnapshotInput { return snapshottest.Input(10, benchReleases/10, 1) }

func benchEnvelope(b *testing.B) []byte {
	bench.envOnce.Do(func() {
		m := snapshot.Build(benchInput(), snapshot.BuildOptions{SnapshotID: "snp_bench", Now: snapshottest.Now, TTL: snapshottest.TTL})
		env, err := snapshot.Sign(m, []snapshot.Signer{keyA})
		if err != nil {
			b.Fatal(err)
		}
		bench.env = env
	})
	return bench.env
}

// cpuTime is the process's user+system CPU time: on a shared machine it
// shows the work done even when wall time is inflated by other load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds CPU time per op and the live heap after the last op (the
// result still held), in MB.
func report(b *testing.B, cpu0 time.Duration, keep any) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	runtime.KeepAlive(keep)
}

func BenchmarkBuildSign100k(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	runtime.GC()
	cpu0 := cpuTime()
	var env []byte
	for b.Loop() {
		m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "snp_bench", Now: snapshottest.Now, TTL: snapshottest.TTL})
		var err error
		env, err = snapshot.Sign(m, []snapshot.Signer{keyA})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(env))/(1<<20), "envelope-MiB")
	report(b, cpu0, env)
}

func BenchmarkVerify100k(b *testing.B) {
	env := benchEnvelope(b)
	trust := snapshottest.Trust(1, keyA)
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	runtime.GC()
	cpu0 := cpuTime()
	var m *snapshot.Manifest
	for b.Loop() {
		var err error
		m, err = snapshot.Verify(env, trust, nil, now)
		if err != nil {
			b.Fatal(err)
		}
	}
	report(b, cpu0, m)
}

// BenchmarkVerify100kEncodingJSON is the comparison that justifies the
// hand-written decoder: encoding/json alone on the same envelope and
// payload, without any signature or trust check.
func BenchmarkVerify100kEncodingJSON(b *testing.B) {
	env := benchEnvelope(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	for b.Loop() {
		var e snapshot.Envelope
		if err := json.Unmarshal(env, &e); err != nil {
			b.Fatal(err)
		}
		var m snapshot.Manifest
		if err := json.Unmarshal(e.Payload, &m); err != nil {
			b.Fatal(err)
		}
	}
}
