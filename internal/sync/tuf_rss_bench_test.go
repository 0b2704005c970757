package sync_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/outpost/outpost/internal/update"
)

// Environment of TestHelper_TUFFirstSyncProcess, set by
// BenchmarkTUFSync_FirstSyncRSS.
const (
	envSyncURL    = "OUTPOST_TUF_SYNC_URL"
	envSyncTenant = "OUTPOST_TUF_SYNC_TENANT"
	envSyncRoot   = "OUTPOST_TUF_SYNC_ROOT"
	// envSyncDir is the mirror's data directory, kept between the two
	// processes; envSyncRestart makes the second one read it back.
	envSyncDir     = "OUTPOST_TUF_SYNC_DIR"
	envSyncRestart = "OUTPOST_TUF_SYNC_RESTART"
)

// TestHelper_TUFFirstSyncProcess is the process
// BenchmarkTUFSync_FirstSyncRSS measures: a mirror's first sync of the
// tenant (a Syncer on mirror.db and a cache, from an upstream), then the
// held version read as the server reads it and the update engine built
// from it; or (envSyncRestart) the same mirror.db opened again, as by a
// restarted mirror, the held version read back and the engine built. It
// is skipped unless the benchmark runs it.
func TestHelper_TUFFirstSyncProcess(t *testing.T) {
	url := os.Getenv(envSyncURL)
	if url == "" {
		t.Skip("run by BenchmarkTUFSync_FirstSyncRSS")
	}
	root, err := os.ReadFile(os.Getenv(envSyncRoot))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv(envSyncDir)
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if os.Getenv(envSyncRestart) != "" {
		// A restart: the held version read back as the server does at
		// start, and the update engine built from it.
		start := time.Now()
		h, err := st.Current()
		if err != nil || h == nil {
			t.Fatalf("held after a restart: %v, %v", h, err)
		}
		e, err := update.New(state.Served(h.Manifest, nil))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("restart-ms %d\n", time.Since(start).Milliseconds())
		printPeak("restart")
		runtime.KeepAlive(e)
		return
	}
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sync.NewUpstream(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: os.Getenv(envSyncTenant), Root: root}, Channels: []string{"none"}})
	start := time.Now()
	res, err := s.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("first-sync-ms %d\nfirst-sync-bytes %d\n", time.Since(start).Milliseconds(), res.Bytes)
	printPeak("sync")
	h, err := st.Current()
	if err != nil {
		t.Fatal(err)
	}
	e, err := update.New(state.Served(h.Manifest, nil))
	if err != nil {
		t.Fatal(err)
	}
	printPeak("engine")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("held-heap-bytes %d\n", ms.HeapInuse)
	runtime.KeepAlive(e)
	runtime.KeepAlive(s)
}

// printPeak prints this process's peak RSS since its exec.
func printPeak(label string) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("peak-rss-kib-%s %s\n", label, strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

// BenchmarkTUFSync_FirstSyncRSS: a mirror's first sync of the
// 100,000-release tenant (10 products × 10,000 releases; metadata only:
// the channel matches no release), in a separate process so that its
// peak RSS is the mirror's alone: after the sync, and once the update
// engine is built from the held version as the server does; then a
// restart of that mirror (another process): the held version assembled
// again from mirror.db and the engine built.
//
//	go test -run XXX -bench TUFSync_FirstSyncRSS -benchtime 1x ./internal/sync
func BenchmarkTUFSync_FirstSyncRSS(b *testing.B) {
	v := tuftest.NewVendor(b, "", 0)
	v.Build(tuftest.View(10, 10_000, 1))
	srv := httptest.NewServer(tufhttp.New(v.Repo, tufhttp.Options{}))
	defer srv.Close()
	rootFile := filepath.Join(b.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, v.RootData, 0o600); err != nil {
		b.Fatal(err)
	}
	var ms, syncRSS, engineRSS, held, restartMS, restartRSS []float64
	var bytes int64
	for b.Loop() {
		dir := b.TempDir()
		run := func(restart bool) string {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelper_TUFFirstSyncProcess$", "-test.v")
			cmd.Env = append(os.Environ(), envSyncURL+"="+srv.URL, envSyncTenant+"="+v.TenantID, envSyncRoot+"="+rootFile, envSyncDir+"="+dir)
			if restart {
				cmd.Env = append(cmd.Env, envSyncRestart+"=1")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("first sync (restart %v): %v\n%s", restart, err, out)
			}
			return string(out)
		}
		var t, h, rt int64
		var ks, ke, kr int64 = -1, -1, -1
		for line := range strings.Lines(run(false) + run(true)) {
			_, _ = fmt.Sscanf(line, "first-sync-ms %d", &t)
			_, _ = fmt.Sscanf(line, "first-sync-bytes %d", &bytes)
			_, _ = fmt.Sscanf(line, "peak-rss-kib-sync %d", &ks)
			_, _ = fmt.Sscanf(line, "peak-rss-kib-engine %d", &ke)
			_, _ = fmt.Sscanf(line, "held-heap-bytes %d", &h)
			_, _ = fmt.Sscanf(line, "restart-ms %d", &rt)
			_, _ = fmt.Sscanf(line, "peak-rss-kib-restart %d", &kr)
		}
		if ks < 0 {
			b.Skip("no /proc/self/status VmHWM on this system")
		}
		ms, syncRSS, engineRSS = append(ms, float64(t)), append(syncRSS, float64(ks)/1024), append(engineRSS, float64(ke)/1024)
		held = append(held, float64(h)/(1<<20))
		restartMS, restartRSS = append(restartMS, float64(rt)), append(restartRSS, float64(kr)/1024)
	}
	b.ReportMetric(slices.Min(ms), "first-sync-min-ms")
	b.ReportMetric(slices.Max(ms), "first-sync-max-ms")
	b.ReportMetric(float64(bytes), "bytes")
	b.ReportMetric(slices.Max(syncRSS), "peak-rss-sync-MiB")
	b.ReportMetric(slices.Max(engineRSS), "peak-rss-with-engine-MiB")
	b.ReportMetric(slices.Max(held), "held-heap-MiB")
	b.ReportMetric(slices.Max(restartMS), "restart-max-ms")
	b.ReportMetric(slices.Max(restartRSS), "peak-rss-restart-MiB")
}
