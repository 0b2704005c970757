package state

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clients is the concurrency of the performance target.
const clients = 32

// runClients spreads b.N calls of fn over 32 goroutines and reports
// leases/s. Each call is a distinct subject, so every one takes a seat.
func runClients(b *testing.B, fn func(i int64) error) {
	b.Helper()
	var (
		next int64 = -1
		wg   sync.WaitGroup
		errs atomic.Int64
		once sync.Once
	)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(b.N) {
					return
				}
				if err := fn(i); err != nil {
					errs.Add(1)
					once.Do(func() { b.Errorf("call %d: %v", i, err) })
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "leases/s")
}

// BenchmarkLedgerAcquire: durable (fsynced) issuance with seat
// enforcement, 32 concurrent clients, on a real bbolt file.
func BenchmarkLedgerAcquire(b *testing.B) {
	l, _, _ := newTestLedger(b)
	m := testManifest(b)
	ctx := context.Background()
	runClients(b, func(i int64) error {
		_, _, err := l.Acquire(ctx, m, entBig, "machine", fmt.Sprintf("host-%d", i), "", t0)
		return err
	})
}
