package controlplane_test

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/controlplane"
)

// procKiB reads a "Vm…:" line of /proc/self/status in KiB (0 when absent).
func procKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// resetPeak resets the process's peak RSS (VmHWM) to its current RSS.
func resetPeak() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

// BenchmarkFirstChecks: after each snapshot build of a big tenant, the
// first update checks: one alone, then 16 at once (after another build).
// Reported: the wall time of each, their ratio (goal ≤ 2), and the growth
// of the process's peak RSS over its RSS before (VmHWM, reset before each
// phase), alone and for 16 (goal: ≤ 2× alone, i.e. one view).
//
//	go test -run '^$' -bench FirstChecks -benchtime 3x ./internal/controlplane
func BenchmarkFirstChecks(b *testing.B) {
	for _, c := range []struct {
		name     string
		releases int
	}{{"10k", 10_000}, {"100k", 100_000}} {
		b.Run(c.name, func(b *testing.B) {
			st := &herdStore{big: c.releases}
			a := newHerdApp(b, st, controlplane.Config{})
			op := operator()
			ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "big"})
			if err != nil {
				b.Fatal(err)
			}
			tc := tenantCtx(b, a, op, ten.TenantID)
			// phase builds a snapshot, then times n concurrent first
			// checks and measures the RSS they add at their peak.
			phase := func(n int) (time.Duration, int64) {
				if _, err := a.BuildSnapshot(op, ten.TenantID); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				debug.FreeOSMemory()
				if !resetPeak() {
					b.Skip("cannot reset the peak RSS here (/proc/self/clear_refs)")
				}
				base := procKiB("VmRSS")
				start := time.Now()
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := range n {
					wg.Go(func() { _, errs[i] = a.UpdateEngine(tc) })
				}
				wg.Wait()
				d := time.Since(start)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				return d, procKiB("VmHWM") - base
			}
			var one, herd time.Duration
			var oneKiB, herdKiB int64
			views0 := a.Stats().ViewAssemblies
			b.ResetTimer()
			for range b.N {
				d, kib := phase(1)
				one += d
				oneKiB = max(oneKiB, kib)
				d, kib = phase(16)
				herd += d
				herdKiB = max(herdKiB, kib)
			}
			b.StopTimer()
			if got, want := a.Stats().ViewAssemblies-views0, int64(2*b.N); got != want {
				b.Errorf("view assemblies = %d, want %d (one per build)", got, want)
			}
			n := float64(b.N)
			b.ReportMetric(one.Seconds()/n*1000, "ms/first-check")
			b.ReportMetric(herd.Seconds()/n*1000, "ms/16-first-checks")
			b.ReportMetric(float64(herd)/float64(one), "time-ratio")
			b.ReportMetric(float64(oneKiB)/1024, "MiB-rss-added-1")
			b.ReportMetric(float64(herdKiB)/1024, "MiB-rss-added-16")
			if oneKiB > 0 {
				b.ReportMetric(float64(herdKiB)/float64(oneKiB), "rss-ratio")
			}
		})
	}
}
