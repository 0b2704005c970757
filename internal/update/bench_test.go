package update

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/update/updatetest"
)

var (
	benchOnce     sync.Once
	benchManifest *snapshot.Manifest
	benchEngine   *Engine
)

// benchSetup builds the issue-5 manifest (50 products x 1,000 releases x 6
// artifacts, 20 policies, rollouts, blocked versions) once per process.
func benchSetup(b *testing.B) (*snapshot.Manifest, *Engine) {
	benchOnce.Do(func() {
		benchManifest = updatetest.Manifest(updatetest.Default)
		var err error
		if benchEngine, err = New(benchManifest); err != nil {
			panic(err)
		}
	})
	return benchManifest, benchEngine
}

func benchQueries(b *testing.B, e *Engine) []Query {
	var qs []Query
	for _, raw := range updatetest.Queries(updatetest.Default, 4096, 5) {
		var q Query
		if ParseRawQuery(raw, &q) == nil {
			qs = append(qs, q)
		}
	}
	return qs
}

func BenchmarkNew(b *testing.B) {
	m, _ := benchSetup(b)
	benchNew(b, m)
}

// benchNew measures New on m, reporting the process's CPU time per op
// besides wall time (the machine is shared).
func benchNew(b *testing.B, m *snapshot.Manifest) {
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		if _, err := New(m); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
	}
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkCheck is Engine.Check plus encoding the answer.
func BenchmarkCheck(b *testing.B) {
	_, e := benchSetup(b)
	qs := benchQueries(b, e)
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := &qs[i%len(qs)]
		i++
		d, err := e.Check(q, now)
		if err == nil {
			buf = d.AppendJSON(buf[:0])
		}
	}
}

// BenchmarkHandle is the whole handler on a recorder: raw query parsing,
// check, encoding, headers.
func BenchmarkHandle(b *testing.B) {
	_, e := benchSetup(b)
	raws := updatetest.Queries(updatetest.Default, 4096, 5)
	reqs := make([]*http.Request, len(raws))
	for i, raw := range raws {
		reqs[i] = httptest.NewRequest("GET", "/v1/updates/check?"+raw, nil)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Handle(w, reqs[i%len(reqs)], e, now)
		i++
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

var (
	bench100kOnce     sync.Once
	bench100kManifest *snapshot.Manifest
)

// BenchmarkNew100k indexes issue 3's performance shape: one product with
// 100,000 releases of one artifact each.
func BenchmarkNew100k(b *testing.B) {
	bench100kOnce.Do(func() { bench100kManifest = snapshottest.Manifest(1, 100_000, 1) })
	benchNew(b, bench100kManifest)
}
