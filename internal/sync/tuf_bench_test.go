package sync_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// BenchmarkTUFSync_Idle: a mirror holding a 100,000-release tenant (10
// products × 10,000 releases) syncs from an upstream that has nothing
// new: one timestamp request (a 304 with If-None-Match). cpu-ms/op is
// the process's user+system CPU per sync, the serving side included.
// The first sync narrows the channels to one no release is in, so no
// artifact is fetched (the metadata is what is measured).
//
//	go test -run XXX -bench TUFSync_Idle -benchtime 200x ./internal/sync
func BenchmarkTUFSync_Idle(b *testing.B) {
	v := tuftest.NewVendor(b, "", 0)
	m := tuftest.View(10, 10_000, 1)
	v.Build(m)
	srv := httptest.NewServer(tufhttp.New(v.Repo, tufhttp.Options{}))
	defer srv.Close()
	dir := b.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := cache.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	src, err := sync.NewUpstream(srv.URL, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.RootData}, Channels: []string{"none"}})
	ctx := context.Background()
	start := time.Now()
	res, err := s.Once(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("first sync: %s, %d bytes of metadata and documents", time.Since(start).Round(time.Millisecond), res.Bytes)
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	for b.Loop() {
		res, err := s.Once(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if res.Changed {
			b.Fatal("idle sync changed something")
		}
	}
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkTUFSync_OneRelease: the same mirror after one new release in
// the 100,000-release tenant (its artifact not needed: metadata only):
// the incremental sync, assembling the manifest and committing it.
//
//	go test -run XXX -bench TUFSync_OneRelease -benchtime 3x ./internal/sync
func BenchmarkTUFSync_OneRelease(b *testing.B) {
	v := tuftest.NewVendor(b, "", 0)
	m := tuftest.View(10, 10_000, 1)
	v.Build(m)
	srv := httptest.NewServer(tufhttp.New(v.Repo, tufhttp.Options{}))
	defer srv.Close()
	dir := b.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := cache.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	src, err := sync.NewUpstream(srv.URL, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.RootData}, Channels: []string{"none"}})
	ctx := context.Background()
	if _, err := s.Once(ctx); err != nil {
		b.Fatal(err)
	}
	var bytes int64
	b.ResetTimer()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		v.Now = v.Now.Add(time.Second)
		tuftest.AddRelease(m, n%10, n, "9.0."+strconv.Itoa(n))
		v.Build(m)
		b.StartTimer()
		res, err := s.Once(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Changed {
			b.Fatal("the release was not committed")
		}
		bytes += res.Bytes
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/op")
}

// BenchmarkTUFBundle_OneRelease: the bundle that carries one new release
// of the 100,000-release tenant to an air-gapped mirror holding the
// previous version, TUF (--format tuf --since) against schema 1 (the
// whole envelope, and the one artifact in both), raw and gzip-compressed;
// then the import of the TUF bundle into a mirror holding the previous
// version (its artifact not needed: the channel matches no release).
//
//	go test -run XXX -bench TUFBundle_OneRelease -benchtime 1x ./internal/sync
func BenchmarkTUFBundle_OneRelease(b *testing.B) {
	v := tuftest.NewVendor(b, "", 0)
	m := tuftest.View(10, 10_000, 1)
	v.Build(m)
	full := tufBundle(b, v, 0)
	dir := b.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := cache.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	s := sync.New(nil, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.RootData}, Channels: []string{"none"}})
	ctx := context.Background()
	start := time.Now()
	if _, err := s.Import(ctx, bytes.NewReader(full), false); err != nil {
		b.Fatal(err)
	}
	b.Logf("full TUF bundle: %d B (gzip %d B), imported in %s", len(full), gzipLen(full), time.Since(start).Round(time.Millisecond))
	_, snapV, _ := v.State.Versions()

	v.Now = v.Now.Add(time.Second)
	_, data := tuftest.AddRelease(m, 0, 1, "9.0.1")
	v.Build(m)
	v.PublishArtifacts(m, map[string][]byte{m.Artifacts[len(m.Artifacts)-1].SHA256: data})
	inc := tufBundle(b, v, snapV)
	b.Logf("one release: TUF bundle %d B (gzip %d B), of which the artifact %d B", len(inc), gzipLen(inc), len(data))
	b.ReportMetric(float64(len(inc)), "tuf-B")
	b.ResetTimer()
	for b.Loop() {
		// Rounds after the first find the version held (use -benchtime 1x
		// for the import's time).
		rep, err := s.Import(ctx, bytes.NewReader(inc), false)
		if err != nil {
			b.Fatal(err)
		}
		if b.N == 1 && !rep.Changed {
			b.Fatal("the one-release bundle changed nothing")
		}
	}
}

func gzipLen(p []byte) int {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(p)
	zw.Close()
	return buf.Len()
}
