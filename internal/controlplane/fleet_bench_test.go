package controlplane_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fleet"
)

// BenchmarkImportReport imports a return file of n events into the
// control plane on bbolt (verify pass, then ingest in transactions of
// 1,000 records), sampling the heap every 10 ms: peak-heap-MiB stays flat
// from 100k to 300k events.
//
//	go test -run '^$' -bench ImportReport -benchtime 1x ./internal/controlplane/
func BenchmarkImportReport(b *testing.B) {
	for _, n := range []int{100_000, 300_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			a := newApp(b)
			op := operator()
			ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
			if err != nil {
				b.Fatal(err)
			}
			pub, key, _ := ed25519.GenerateKey(rand.Reader)
			m, err := a.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(b.TempDir(), "report.jsonl")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC()
			w, err := fleet.NewReportWriter(f, fleet.ReportHeader{MirrorID: m.MirrorID, TenantID: ten.TenantID, StoreID: fleet.NewStoreID(), CreatedAt: now}, key)
			if err != nil {
				b.Fatal(err)
			}
			r := fleet.Record{ReceivedAt: now, Event: fleet.Event{Type: fleet.TypeInstallFailed, ClientID: "client-0001",
				ReleaseID: catalog.NewID(catalog.PrefixRelease), FromVersion: "1.0.0", ToVersion: "1.1.0", ErrorCode: "E_DISK_FULL", DurationMS: 1234, Time: now.Add(-time.Minute)}}
			for i := 1; i <= n; i++ {
				r.Seq = uint64(i)
				if err := w.WriteEvent(&r); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Close(uint64(n)); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			var peak uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				for {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
			}()
			start := time.Now()
			for b.Loop() {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				res, err := a.ImportReport(op, f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				if res.Events != int64(n) {
					b.Fatalf("imported %d events, want %d", res.Events, n)
				}
			}
			secs := time.Since(start).Seconds()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(n)*float64(b.N)/secs, "events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
