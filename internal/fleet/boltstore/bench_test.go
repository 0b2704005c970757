package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

// peak samples the heap in use and the process's peak RSS (VmHWM).
type peak struct{ heap uint64 }

func (p *peak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.heap = max(p.heap, ms.HeapInuse)
}

func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkAggregator_Ingest ingests events in batches through the
// aggregator on a bbolt file (each batch one fsynced transaction), over
// 50 releases, with the default window of 100,000 events, so a long run
// also trims. One op is one event.
//
//	go test -run '^$' -bench Aggregator_Ingest -benchtime 300000x ./internal/fleet/boltstore/
func BenchmarkAggregator_Ingest(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s := open(b, filepath.Join(b.TempDir(), "fleet.db"))
			a, err := fleet.NewAggregator(ctx, s, fleet.Options{})
			if err != nil {
				b.Fatal(err)
			}
			evs := make([]fleet.Event, batch)
			for i := range evs {
				typ := fleet.TypeInstallOK
				if i%10 == 0 {
					typ = fleet.TypeInstallFailed
				}
				evs[i] = fleet.Event{Type: typ, ClientID: fmt.Sprintf("client-%08d", i), ProductID: "prd_01jdk0000000000000000000aa",
					ReleaseID: fmt.Sprintf("rel_01jdk00000000000000000%04d", i%50), ToVersion: "1.2.3", FromVersion: "1.2.2", DurationMS: 1234, Time: time.Now()}
				if typ == fleet.TypeInstallFailed {
					evs[i].ErrorCode = "E_DISK_FULL"
				}
			}
			var p peak
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for n, k := b.N, 0; n > 0; n, k = n-batch, k+1 {
				if _, _, err := a.Ingest(ctx, evs[:min(batch, n)]); err != nil {
					b.Fatal(err)
				}
				if k%100 == 0 {
					p.sample()
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(p.heap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(vmHWM(), "peak-rss-MiB")
			if fi, err := os.Stat(s.Path()); err == nil {
				b.ReportMetric(float64(fi.Size())/(1<<20), "db-MiB")
			}
		})
	}
}

func open(tb testing.TB, path string) fleetStore {
	tb.Helper()
	s, err := openStore(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
