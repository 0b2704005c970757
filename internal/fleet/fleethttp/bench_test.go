package fleethttp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/boltstore"
	"github.com/outpost/outpost/internal/fleet/fleethttp"
)

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

// BenchmarkEvents_HTTP posts batches of events over loopback HTTP to the
// handler on an aggregator over bbolt (each batch one fsynced commit). One
// op is one event. peak-rss-MiB is the whole test process (client, server
// and bbolt's map).
//
//	go test -run '^$' -bench Events_HTTP -benchtime 300000x ./internal/fleet/fleethttp/
func BenchmarkEvents_HTTP(b *testing.B) {
	for _, batch := range []int{100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "mirror.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			a, err := fleet.NewAggregator(ctx, s, fleet.Options{})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(&fleethttp.Handler{Agg: a})
			defer srv.Close()
			var body bytes.Buffer
			body.WriteString(`{"events":[`)
			for i := range batch {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"type":"install_ok","client_id":"client-%08d","product_id":"prd_01jdk0000000000000000000aa","release_id":"rel_01jdk00000000000000000%04d","from_version":"1.2.2","to_version":"1.2.3","duration_ms":1234,"time":%q}`,
					i, i%50, time.Now().UTC().Format(time.RFC3339))
			}
			body.WriteString(`]}`)
			payload := body.Bytes()
			var peakHeap uint64
			b.ResetTimer()
			start := time.Now()
			for n, k := b.N, 0; n > 0; n, k = n-batch, k+1 {
				resp, err := http.Post(srv.URL+"/v1/events", "application/json", bytes.NewReader(payload))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				if k%100 == 0 {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					peakHeap = max(peakHeap, ms.HeapInuse)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(vmHWM(), "peak-rss-MiB")
		})
	}
}
