package tuf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// Environment of TestHelper_FirstLoadProcess, set by
// BenchmarkClient_FirstLoadRSS.
const (
	envRSSRepo     = "OUTPOST_TUF_RSS_REPO"
	envRSSManifest = "OUTPOST_TUF_RSS_MANIFEST"
)

// TestHelper_FirstLoadProcess is the process BenchmarkClient_FirstLoadRSS
// measures: a client's first full sync from a published directory into a
// directory store, as a mirror does it, and nothing else. It is skipped
// unless the benchmark runs it.
func TestHelper_FirstLoadProcess(t *testing.T) {
	dir := os.Getenv(envRSSRepo)
	if dir == "" {
		t.Skip("run by BenchmarkClient_FirstLoadRSS")
	}
	ctx := context.Background()
	root, err := os.ReadFile(filepath.Join(dir, MetadataPath("root", 1)))
	if err != nil {
		t.Fatal(err)
	}
	s := DirStore{Dir: t.TempDir()}
	if err := Init(ctx, s, snapshottest.TenantID, root); err != nil {
		t.Fatal(err)
	}
	c := NewClient(snapshottest.TenantID, FSFetcher{FS: os.DirFS(dir)}, s, ClientOptions{Now: func() time.Time { return snapshottest.Now }})
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	var m any
	if os.Getenv(envRSSManifest) != "" {
		if m, err = c.Repository().Manifest(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("held-heap-bytes %d\n", ms.HeapInuse)
	// The peak RSS of this process since its exec (the rusage a parent
	// reads also counts the parent's pages shared until the exec).
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				fmt.Printf("peak-rss-kib %s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(m)
}

// BenchmarkClient_FirstLoadRSS writes the 100,000-release tenant to a
// directory and measures the peak RSS of a separate process running a
// client's first full sync from it (TestHelper_FirstLoadProcess), without
// and with the assembled manifest the update engine consumes.
//
//	go test -run XXX -bench FirstLoadRSS -benchtime 1x ./internal/tuf
func BenchmarkClient_FirstLoadRSS(b *testing.B) {
	f := newFixture(b, snapshottest.TenantID, ProductOptions{})
	f.build(bigView())
	dir := b.TempDir()
	if keep := os.Getenv("OUTPOST_TUF_RSS_KEEP"); keep != "" {
		dir = keep // kept for profiling the helper by hand
	}
	f.repo.mu.Lock()
	for p, data := range f.repo.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	f.repo.mu.Unlock()
	measure := func(manifest bool) (rss, held float64) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelper_FirstLoadProcess$", "-test.v")
		cmd.Env = append(os.Environ(), envRSSRepo+"="+dir)
		if manifest {
			cmd.Env = append(cmd.Env, envRSSManifest+"=1")
		}
		if os.Getenv("OUTPOST_TUF_RSS_TRACE") != "" {
			cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
		}
		out, err := cmd.CombinedOutput()
		if os.Getenv("OUTPOST_TUF_RSS_TRACE") != "" {
			_ = os.WriteFile(os.Getenv("OUTPOST_TUF_RSS_TRACE"), out, 0o644)
		}
		if err != nil {
			b.Fatalf("first load: %v\n%s", err, out)
		}
		var h, kib int64 = 0, -1
		for line := range strings.Lines(string(out)) {
			_, _ = fmt.Sscanf(line, "held-heap-bytes %d", &h)
			_, _ = fmt.Sscanf(line, "peak-rss-kib %d", &kib)
		}
		if kib < 0 {
			b.Skip("no /proc/self/status VmHWM on this system")
		}
		return float64(kib) / 1024, float64(h) / (1 << 20)
	}
	var rss, held, rssM, heldM []float64
	for b.Loop() {
		r, h := measure(false)
		rss, held = append(rss, r), append(held, h)
		r, h = measure(true)
		rssM, heldM = append(rssM, r), append(heldM, h)
	}
	// The peak moves with how fast the GC keeps up on a shared machine:
	// report the range over the runs (-benchtime Nx).
	b.ReportMetric(slices.Min(rss), "peak-rss-min-MiB")
	b.ReportMetric(slices.Max(rss), "peak-rss-max-MiB")
	b.ReportMetric(slices.Max(held), "held-heap-MiB")
	b.ReportMetric(slices.Min(rssM), "peak-rss-with-manifest-min-MiB")
	b.ReportMetric(slices.Max(rssM), "peak-rss-with-manifest-max-MiB")
	b.ReportMetric(slices.Max(heldM), "held-heap-with-manifest-MiB")
}
