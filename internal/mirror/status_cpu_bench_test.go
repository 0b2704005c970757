package mirror_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// BenchmarkServer_Status100k: GET /v1/status on a mirror holding a
// 100,000-release tenant (TUF, 10 products × 10,000 releases, as its sync
// stored it; channels narrowed so that no artifact is fetched: the held
// metadata is what is measured). cpu-ms/op is the process's CPU per
// request (goal ≤ 10 ms: the status answers from stored summaries, never
// decoding the signed metadata).
//
//	go test -run '^$' -bench Server_Status100k -benchtime 200x ./internal/mirror
func BenchmarkServer_Status100k(b *testing.B) {
	v := tuftest.NewVendor(b, "", 0)
	v.Build(tuftest.View(10, 10_000, 1))
	up := httptest.NewServer(tufhttp.New(v.Repo, tufhttp.Options{}))
	defer up.Close()
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
	src, err := sync.NewUpstream(up.URL, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.RootData}, Channels: []string{"none"}})
	if _, err := s.Once(context.Background()); err != nil {
		b.Fatal(err)
	}
	srv, err := mirror.NewServer(mirror.Options{State: st, Cache: c})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	first := httptest.NewRecorder()
	h.ServeHTTP(first, httptest.NewRequest("GET", "/v1/status", nil))
	var got mirror.Status
	if err := json.Unmarshal(first.Body.Bytes(), &got); err != nil || got.Snapshot == nil {
		b.Fatalf("status after the sync = %d %s (%v), want one holding a snapshot", first.Code, first.Body, err)
	}
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
		if rec.Code != 200 {
			b.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
