package fleet_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

// BenchmarkReport_Stream writes a return file of n events to disk, then
// reads and verifies it, sampling the heap every 50,000 records:
// peak-heap-MiB is the same for 100k and 1M events (flat memory).
//
//	go test -run '^$' -bench Report_Stream -benchtime 1x ./internal/fleet/
func BenchmarkReport_Stream(b *testing.B) {
	pub, priv := keys(b)
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "report.jsonl")
			var peak uint64
			sample := func() {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			var size int64
			for b.Loop() {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				w, err := fleet.NewReportWriter(f, fleet.ReportHeader{MirrorID: mirA, StoreID: fleet.NewStoreID(), CreatedAt: now}, priv)
				if err != nil {
					b.Fatal(err)
				}
				r := fleet.Record{ReceivedAt: now, Event: fleet.Event{Type: fleet.TypeInstallFailed, ClientID: "client-0001", ProductID: prdA,
					ReleaseID: relA, ArtifactID: artA, FromVersion: "1.0.0", ToVersion: "1.1.0", ErrorCode: "E_DISK_FULL", DurationMS: 1234, Time: now.Add(-time.Minute)}}
				for i := 1; i <= n; i++ {
					r.Seq = uint64(i)
					if err := w.WriteEvent(&r); err != nil {
						b.Fatal(err)
					}
					if i%50_000 == 0 {
						sample()
					}
				}
				if _, err := w.Close(uint64(n)); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				f, err = os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				fi, _ := f.Stat()
				size = fi.Size()
				rr, err := fleet.NewReportReader(f, pub, fleet.ReadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for {
					_, err := rr.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if got++; got%50_000 == 0 {
						sample()
					}
				}
				f.Close()
				if got != n {
					b.Fatalf("read %d events, want %d", got, n)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		})
	}
}
