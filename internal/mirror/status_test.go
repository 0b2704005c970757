package mirror_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/sync/synctest"
)

func readStatus(t testing.TB, h http.Handler) mirror.Status {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /v1/status = %d %s", rec.Code, rec.Body)
	}
	var st mirror.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestServer_StatusFromSummaries checks that /v1/status answers from the
// summary kept on commit and GC, not from a walk of the cache per
// request: a blob removed behind the mirror's back shows only once the
// next GC refreshes the summary, and a commit updates it at once.
func TestServer_StatusFromSummaries(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(4 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(8 << 10)}
	r.sync(t, 1, []synctest.Art{a})
	srv, _ := r.server(t, mirror.Options{})
	h := srv.Handler()

	t.Run("after a commit", func(t *testing.T) {
		st := readStatus(t, h)
		if got, want := st.Cache, (mirror.StatusCache{Blobs: 1, Bytes: 4 << 10, At: st.Cache.At}); got != want || st.Cache.At.IsZero() {
			t.Errorf("cache = %+v, want %+v with a time", got, want)
		}
		if st.Snapshot == nil || st.Snapshot.Sequence != 1 || st.Snapshot.Artifacts != 1 {
			t.Errorf("snapshot = %+v, want sequence 1 with 1 artifact", st.Snapshot)
		}
	})
	t.Run("no walk per request", func(t *testing.T) {
		if err := os.Remove(r.cache.Path(synctest.SHA(a.Data))); err != nil {
			t.Fatal(err)
		}
		if got := readStatus(t, h).Cache; got.Blobs != 1 || got.Missing != 0 {
			t.Errorf("cache = %+v right after the removal, want the stored summary (1 blob, 0 missing)", got)
		}
		if _, err := r.s.GC(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := readStatus(t, h).Cache; got.Blobs != 0 || got.Missing != 1 {
			t.Errorf("cache = %+v after GC, want 0 blobs, 1 missing", got)
		}
	})
	t.Run("a commit refreshes it", func(t *testing.T) {
		r.sync(t, 2, []synctest.Art{a, b})
		srv.Reload()
		st := readStatus(t, h)
		if got := st.Cache; got.Blobs != 2 || got.Bytes != 12<<10 || got.Missing != 0 {
			t.Errorf("cache = %+v after commit 2, want 2 blobs, %d bytes, 0 missing", got, 12<<10)
		}
		if st.Snapshot.Sequence != 2 || st.Snapshot.Artifacts != 2 {
			t.Errorf("snapshot = %+v, want sequence 2 with 2 artifacts", st.Snapshot)
		}
	})
}

// BenchmarkServer_Status answers GET /v1/status for a held snapshot of a
// large catalog (20,000 artifacts, all cached) and a full event table
// (10,000 aggregates) through the handler: one
// op is one request, CPU bound (no network). "live" is the old way (walk
// the cache, decode the held snapshot, stat every artifact) for
// comparison.
//
//	go test -run '^$' -bench Server_Status -benchtime 2s ./internal/mirror/
func BenchmarkServer_Status(b *testing.B) {
	const n = 20_000
	r := newRig(b)
	arts := make([]synctest.Art, n)
	for i := range arts {
		arts[i] = synctest.Art{ID: fmt.Sprintf("art_%06d", i), Data: synctest.Random(64)}
	}
	r.importBundle(b, r.v.Manifest(1, arts))
	// A full event table: 10,000 aggregates (the default cap), each
	// release with an error code.
	fs, err := r.st.FleetStore()
	if err != nil {
		b.Fatal(err)
	}
	summary, err := mirror.NewEventSummary(context.Background(), fs)
	if err != nil {
		b.Fatal(err)
	}
	agg, err := fleet.NewAggregator(context.Background(), summary, fleet.Options{})
	if err != nil {
		b.Fatal(err)
	}
	events := make([]fleet.Event, 0, 10_000)
	for range 10_000 {
		events = append(events, fleet.Event{Type: fleet.TypeInstallFailed, ClientID: "c-0123456789", ReleaseID: catalog.NewID(catalog.PrefixRelease),
			ToVersion: "1.0.0", ErrorCode: "E_DISK_FULL", Time: time.Now()})
	}
	if _, _, err := agg.Ingest(context.Background(), events); err != nil {
		b.Fatal(err)
	}
	srv, err := mirror.NewServer(mirror.Options{State: r.st, Cache: r.cache, Events: agg, EventSummary: summary})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	if st := readStatus(b, h); st.Cache.Blobs != n {
		b.Fatalf("cache holds %d blobs, want %d", st.Cache.Blobs, n)
	}
	b.Run("summaries", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
		}
	})
	b.Run("live", func(b *testing.B) {
		if testing.Short() {
			b.Skip("seconds per op")
		}
		for b.Loop() {
			if _, err := mirror.BuildStatus(context.Background(), r.st, r.cache, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServer_RetainedSnapshot serves a retained (not the held)
// snapshot of 20,000 artifacts through the handler: "envelope" is what
// GET /v1/snapshots/{id} does (the stored bytes, nothing decoded),
// "decoded" the old way (decode the envelope and its manifest on every
// request) for comparison.
//
//	go test -run '^$' -bench Server_RetainedSnapshot -benchmem ./internal/mirror/
func BenchmarkServer_RetainedSnapshot(b *testing.B) {
	const n = 20_000
	r := newRig(b)
	arts := make([]synctest.Art, n)
	for i := range arts {
		arts[i] = synctest.Art{ID: fmt.Sprintf("art_%06d", i), Data: synctest.Random(64)}
	}
	r.importBundle(b, r.v.Manifest(1, arts))
	r.importBundle(b, r.v.Manifest(2, append(arts, synctest.Art{ID: "art_new", Data: synctest.Random(64)})))
	srv, err := mirror.NewServer(mirror.Options{State: r.st, Cache: r.cache})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/snapshots/tuf-1", nil))
	if rec.Code != 200 || rec.Body.Len() == 0 {
		b.Fatalf("GET the retained snapshot = %d", rec.Code)
	}
	b.SetBytes(int64(rec.Body.Len()))
	b.Run("envelope", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/snapshots/tuf-1", nil))
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.st.BySnapshotID("tuf-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
