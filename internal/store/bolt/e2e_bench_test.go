package bolt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/update"
)

// BenchmarkSnapshotPath_100k is issue 3's performance target end to end:
// a store holding 100,000 releases of one artifact each (full-length
// catalog ids) → CreateSnapshot with snapshot.Build and the record's
// encoding inside → the record decoded → update.New (the control plane's
// own update view; sites verify the TUF repository instead). Each phase reports its wall time, its CPU
// time (the machine is shared: CPU time shows the work even when wall time
// is inflated by other load) and its peak RSS (VmHWM, reset before the
// phase where the kernel allows it). "cold" is the first build after the
// process started with the catalog cache dropped, "warm" a build after a
// catalog write, which updates the cache in place.
func BenchmarkSnapshotPath_100k(b *testing.B) {
	db, _ := openTemp(b)
	defer db.Close()
	tenantID := catalog.NewID(catalog.PrefixTenant)
	bulkLoad(b, db, tenantID, 100_000)
	db.DropCache() // bulkLoad bypasses the cache: start as a fresh process would
	ctx := context.Background()
	// Inside CreateSnapshot: gather (until build is called), build,
	// encode, then store (from build's return to CreateSnapshot's).
	var p phases
	var mark time.Time
	var markCPU time.Duration
	split := func(name string) {
		p.add(name, time.Since(mark), testenv.ProcessCPU()-markCPU)
		mark, markCPU = time.Now(), testenv.ProcessCPU()
	}
	build := func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		split("gather")
		id := catalog.NewID(catalog.PrefixSnapshot)
		m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: id, Now: time.Now(), TTL: 24 * time.Hour})
		split("build")
		env, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		split("encode")
		return &catalog.Snapshot{SnapshotID: id, TenantID: in.Tenant.TenantID, Sequence: in.Sequence, Envelope: env}, nil
	}
	create := func(name string) *catalog.Snapshot {
		var s *catalog.Snapshot
		p.run(name, func() {
			mark, markCPU = time.Now(), testenv.ProcessCPU()
			var err error
			if s, err = db.CreateSnapshot(ctx, tenantID, build); err != nil {
				b.Fatal(err)
			}
			split(name + "-store")
		})
		return s
	}
	for b.Loop() {
		b.StopTimer()
		db.DropCache()
		runtime.GC()
		b.StartTimer()
		create("create-cold")
		// A catalog write between builds, as in production.
		b.StopTimer()
		if err := db.CreateProduct(ctx, &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Other", Metadata: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		s := create("create-warm")
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		var m *snapshot.Manifest
		p.run("decode", func() {
			m = new(snapshot.Manifest)
			if err := json.Unmarshal(s.Envelope, m); err != nil {
				b.Fatal(err)
			}
		})
		p.run("index", func() {
			if _, err := update.New(m); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(float64(len(s.Envelope))/(1<<20), "record-MiB")
		if len(m.Releases) != 100_000 || len(m.Artifacts) != 100_000 {
			b.Fatalf("manifest has %d releases and %d artifacts, want 100000 each", len(m.Releases), len(m.Artifacts))
		}
	}
	p.report(b)
}

// phases accumulates per-phase wall time, CPU time and peak RSS.
type phases struct {
	names []string
	wall  map[string]time.Duration
	cpu   map[string]time.Duration
	peak  map[string]int64
	n     map[string]int
}

func (p *phases) run(name string, fn func()) {
	resetPeakRSS()
	c0, w0 := testenv.ProcessCPU(), time.Now()
	fn()
	p.add(name, time.Since(w0), testenv.ProcessCPU()-c0)
	p.peak[name] = max(p.peak[name], peakRSS())
}

// add records one timing of a phase; gather, build and encode are timed
// inside both CreateSnapshot phases and so add up over them.
func (p *phases) add(name string, wall, cpu time.Duration) {
	if p.wall == nil {
		p.wall, p.cpu, p.peak, p.n = map[string]time.Duration{}, map[string]time.Duration{}, map[string]int64{}, map[string]int{}
	}
	if _, ok := p.n[name]; !ok {
		p.names = append(p.names, name)
	}
	p.wall[name] += wall
	p.cpu[name] += cpu
	p.n[name]++
}

func (p *phases) report(b *testing.B) {
	for _, name := range p.names {
		n := float64(p.n[name])
		b.ReportMetric(float64(p.wall[name].Milliseconds())/n, name+"-ms")
		b.ReportMetric(float64(p.cpu[name].Milliseconds())/n, name+"-cpu-ms")
		if peak, ok := p.peak[name]; ok {
			b.ReportMetric(float64(peak)/(1<<20), name+"-peakRSS-MB")
		}
	}
}

// resetPeakRSS resets the kernel's peak RSS counter (VmHWM) to the
// current RSS; without permission, peaks are since the process started.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns VmHWM in bytes, or 0 when it cannot be read.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, _ := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("kB")))), 10, 64)
			return kb << 10
		}
	}
	return 0
}
