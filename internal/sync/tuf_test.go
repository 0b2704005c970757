package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// tufRig is a mirror (real bbolt, real cache) in TUF mode and a vendor
// repository served by tufhttp on 127.0.0.1.
type tufRig struct {
	v     *tuftest.Vendor
	m     *snapshot.Manifest
	blobs map[string][]byte
	srv   *httptest.Server
	st    *state.State
	cache *cache.Cache
	dir   string
	s     *sync.Syncer
	// requests by path, and the Accept-Encoding seen
	mu   gosync.Mutex
	reqs map[string]int
	gzip atomic.Int64
	// skew shifts the mirror's clock (freeze tests).
	skew atomic.Int64
	// deltas are served at /v1/mirror/deltas/{id} (control plane mode).
	deltas map[string][]byte
}

func newTUFRig(t *testing.T, controlPlane bool) *tufRig {
	t.Helper()
	r := &tufRig{v: tuftest.NewVendor(t, "", 0), m: tuftest.View(2, 3, 1), dir: t.TempDir(), reqs: map[string]int{}}
	r.blobs = tuftest.WithBytes(r.m)
	r.v.Build(r.m)
	r.v.PublishArtifacts(r.m, r.blobs)
	prefix := "/tuf/"
	if controlPlane {
		prefix = "/v1/mirror/tuf/"
	}
	h := tufhttp.New(r.v.Repo, tufhttp.Options{Prefix: prefix})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if controlPlane && req.Header.Get("Authorization") != "Bearer cred" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		r.reqs[req.URL.Path]++
		r.mu.Unlock()
		if strings.Contains(req.Header.Get("Accept-Encoding"), "gzip") {
			r.gzip.Add(1)
		}
		switch req.URL.Path {
		case "/v1/mirror/self":
			_ = json.NewEncoder(w).Encode(sync.Self{MirrorID: "mir_1", TenantID: r.v.TenantID, AllowedChannels: []string{"stable", "beta"}, Status: "ACTIVE"})
		case "/v1/mirror/status":
			w.WriteHeader(http.StatusNoContent)
		case "/v1/mirror/deltas/" + strings.TrimPrefix(req.URL.Path, "/v1/mirror/deltas/"):
			r.mu.Lock()
			b, ok := r.deltas[strings.TrimPrefix(req.URL.Path, "/v1/mirror/deltas/")]
			r.mu.Unlock()
			if !ok {
				http.NotFound(w, req)
				return
			}
			http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
		default:
			h.ServeHTTP(w, req)
		}
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	var err error
	if r.st, err = state.Open(filepath.Join(r.dir, "mirror.db"), 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.cache, err = cache.Open(r.dir); err != nil {
		t.Fatal(err)
	}
	var src sync.Source
	if controlPlane {
		src, err = sync.NewControlPlane(r.srv.URL, "cred", nil)
	} else {
		src, err = sync.NewUpstream(r.srv.URL, "", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.s = r.syncer(src)
	return r
}

func (r *tufRig) syncer(src sync.Source) *sync.Syncer {
	return sync.New(src, r.st, r.cache, sync.Config{
		TUF:            &sync.TUFTrust{TenantID: r.v.TenantID, Root: r.v.RootData},
		Now:            func() time.Time { return time.Now().Add(time.Duration(r.skew.Load())) },
		InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxElapsed: 2 * time.Second,
	})
}

func (r *tufRig) requests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = map[string]int{}
	return out
}

func (r *tufRig) served(t *testing.T) []byte {
	t.Helper()
	b, err := r.st.ServedTUFTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTUFSync_Workflow(t *testing.T) {
	for _, cp := range []bool{false, true} {
		name := "upstream"
		if cp {
			name = "control plane"
		}
		t.Run(name, func(t *testing.T) {
			r := newTUFRig(t, cp)
			ctx := context.Background()

			res, err := r.s.Once(ctx)
			if err != nil {
				t.Fatalf("first sync: %v", err)
			}
			if !res.Changed || res.Downloaded != len(r.blobs) {
				t.Errorf("first sync: changed %v downloaded %d, want true %d", res.Changed, res.Downloaded, len(r.blobs))
			}
			h, err := r.st.Current()
			if err != nil || h == nil {
				t.Fatalf("held: %v %v", h, err)
			}
			if h.Format != state.FormatTUF || len(h.Manifest.Releases) != len(r.m.Releases) {
				t.Errorf("held: format %q releases %d, want tuf %d", h.Format, len(h.Manifest.Releases), len(r.m.Releases))
			}
			for sum, data := range r.blobs {
				if !r.cache.Has(sum, int64(len(data))) {
					t.Errorf("artifact %s not cached", sum[:8])
				}
			}
			if got, want := r.served(t), r.v.Repo.Get("metadata/timestamp.json"); !bytes.Equal(got, want) {
				t.Error("served timestamp is not the vendor's")
			}
			if r.gzip.Load() == 0 {
				t.Error("no request accepted gzip")
			}
			r.requests()

			t.Run("idle sync is one timestamp fetch", func(t *testing.T) {
				res, err := r.s.Once(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.Changed || res.Downloaded != 0 {
					t.Errorf("changed %v downloaded %d, want false 0", res.Changed, res.Downloaded)
				}
				got := r.requests()
				delete(got, "/v1/mirror/self")
				delete(got, "/v1/mirror/status")
				want := map[string]int{"/v1/mirror/tuf/metadata/timestamp.json": 1}
				if !cp {
					want = map[string]int{"/tuf/metadata/timestamp.json": 1}
				}
				if len(got) != 1 || got[firstKey(want)] != 1 {
					t.Errorf("requests: got %v, want %v", got, want)
				}
			})

			t.Run("one release ships its roles and its artifact only", func(t *testing.T) {
				r.v.Now = r.v.Now.Add(time.Second)
				_, data := tuftest.AddRelease(r.m, 0, 1, "9.0.1")
				r.v.Build(r.m)
				r.v.PublishArtifacts(r.m, map[string][]byte{r.m.Artifacts[len(r.m.Artifacts)-1].SHA256: data})
				res, err := r.s.Once(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Changed || res.Downloaded != 1 {
					t.Errorf("changed %v downloaded %d, want true 1", res.Changed, res.Downloaded)
				}
				for p := range r.requests() {
					if strings.Contains(p, "/targets/") && !strings.Contains(p, "ra_new001") && !strings.Contains(p, "/docs/") && !strings.HasSuffix(p, "product.json") {
						t.Errorf("fetched an unchanged target %s", p)
					}
				}
			})

			t.Run("a freshness-only refresh serves the new timestamp", func(t *testing.T) {
				held := heldSeqOf(t, r.st)
				r.v.Now = r.v.Now.Add(time.Minute)
				r.v.Refresh()
				res, err := r.s.Once(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.Changed || heldSeqOf(t, r.st) != held {
					t.Errorf("changed %v held %d, want false %d", res.Changed, heldSeqOf(t, r.st), held)
				}
				if got, want := r.served(t), r.v.Repo.Get("metadata/timestamp.json"); !bytes.Equal(got, want) {
					t.Error("served timestamp is not the refreshed one")
				}
			})
		})
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

func heldSeqOf(t *testing.T, st *state.State) int64 {
	t.Helper()
	h, err := st.Current()
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return 0
	}
	return h.Sequence
}

// Nothing is served until every needed artifact is cached: the trusted
// metadata may move ahead, the served timestamp and held version do not.
func TestTUFSync_CommitWaitsForArtifacts(t *testing.T) {
	r := newTUFRig(t, false)
	ctx := context.Background()
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	before, seq := r.served(t), heldSeqOf(t, r.st)
	r.v.Now = r.v.Now.Add(time.Second)
	_, data := tuftest.AddRelease(r.m, 1, 2, "9.0.2")
	r.v.Build(r.m)
	if _, err := r.s.Once(ctx); err == nil {
		t.Fatal("sync with a missing artifact: got nil error")
	}
	if got := r.served(t); !bytes.Equal(got, before) || heldSeqOf(t, r.st) != seq {
		t.Fatal("a repository version was served before its artifacts were cached")
	}
	r.v.PublishArtifacts(r.m, map[string][]byte{r.m.Artifacts[len(r.m.Artifacts)-1].SHA256: data})
	res, err := r.s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || heldSeqOf(t, r.st) <= seq {
		t.Errorf("changed %v held %d, want a version after %d", res.Changed, heldSeqOf(t, r.st), seq)
	}
}

// A wrong artifact (bytes not matching the signed hash) is never cached
// nor committed.
func TestTUFSync_ArtifactMismatch(t *testing.T) {
	r := newTUFRig(t, false)
	// Corrupt one published artifact.
	var corrupted string
	rel := r.m.Releases[0]
	ra := rel.Artifacts[0]
	for _, a := range r.m.Artifacts {
		if a.ArtifactID == ra.ArtifactID {
			corrupted = tuf.TargetPath(tuf.ArtifactTarget(rel.ProductID, ra.ReleaseArtifactID), a.SHA256)
		}
	}
	r.v.Repo.Set(corrupted, []byte("evil bytes"))
	if _, err := r.s.Once(context.Background()); err == nil {
		t.Fatal("got nil error")
	}
	if h, _ := r.st.Current(); h != nil {
		t.Errorf("held %d after a mismatching artifact, want nothing", h.Sequence)
	}
}

func TestTUFSync_Bucket(t *testing.T) {
	r := newTUFRig(t, false)
	store, err := disk.New(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func() {
		for _, p := range r.v.Repo.Paths() {
			if _, err := store.Put(ctx, "site1/"+p, bytes.NewReader(r.v.Repo.Get(p)), blob.Expect{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish()
	s := r.syncer(sync.NewBucket(store, "site1/"))
	res, err := s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Downloaded != len(r.blobs) {
		t.Errorf("changed %v downloaded %d, want true %d", res.Changed, res.Downloaded, len(r.blobs))
	}
	res, err = s.Once(ctx)
	if err != nil || res.Changed {
		t.Errorf("idle: changed %v err %v", res.Changed, err)
	}
}

// An idle sync re-fetches, at most every RepairInterval, an artifact of
// the held version that went missing from the cache.
func TestTUFSync_RepairsMissingArtifact(t *testing.T) {
	r := newTUFRig(t, false)
	ctx := context.Background()
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	var sum string
	for s := range r.blobs {
		sum = s
		break
	}
	if err := os.Remove(r.cache.Path(sum)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if r.cache.Has(sum, int64(len(r.blobs[sum]))) {
		t.Fatal("repaired before RepairInterval: the idle sync did more than one timestamp fetch")
	}
	r.skew.Store(int64(sync.RepairInterval + time.Minute))
	res, err := r.s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.cache.Has(sum, int64(len(r.blobs[sum]))) || res.Downloaded != 1 {
		t.Errorf("after RepairInterval: cached %v, downloaded %d, want true 1", r.cache.Has(sum, int64(len(r.blobs[sum]))), res.Downloaded)
	}
}

// Bundles do not carry TUF metadata yet: a TUF-mode mirror refuses one
// plainly, and holds nothing.

// TestTUFSync_RestartServesCommittedVersion: a commit holds a reference
// to the version, not its manifest. After a crash between writing a new
// version's files and its commit, the restarted mirror holds and serves
// the committed version, its manifest assembled again from mirror.db,
// and the next sync commits the new one.
func TestTUFSync_RestartServesCommittedVersion(t *testing.T) {
	r := newTUFRig(t, false)
	ctx := context.Background()
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := r.st.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Envelope) > 4<<10 {
		t.Errorf("held envelope %d B, want a reference", len(h.Envelope))
	}
	committed, err := json.Marshal(h.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	before := r.served(t)

	// The new version's files reach mirror.db; its artifact is missing,
	// so it is not committed. Then the process stops.
	r.v.Now = r.v.Now.Add(time.Second)
	rel, data := tuftest.AddRelease(r.m, 1, 2, "9.0.2")
	r.v.Build(r.m)
	if _, err := r.s.Once(ctx); err == nil {
		t.Fatal("sync with a missing artifact: got nil error")
	}
	if err := r.st.Close(); err != nil {
		t.Fatal(err)
	}
	if r.st, err = state.Open(filepath.Join(r.dir, "mirror.db"), 3); err != nil {
		t.Fatal(err)
	}

	t.Run("the restarted mirror holds the committed version", func(t *testing.T) {
		h, err := r.st.Current()
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(h.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Fatalf("held manifest after a restart differs from the committed one:\ngot  %.300s\nwant %.300s", got, committed)
		}
		if !bytes.Equal(r.served(t), before) {
			t.Error("served timestamp changed across the restart")
		}
	})
	t.Run("the next sync commits the new version", func(t *testing.T) {
		r.v.PublishArtifacts(r.m, map[string][]byte{r.m.Artifacts[len(r.m.Artifacts)-1].SHA256: data})
		src, err := sync.NewUpstream(r.srv.URL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.s = r.syncer(src)
		res, err := r.s.Once(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.st.Current()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rl := range h.Manifest.Releases {
			found = found || rl.ReleaseID == rel.ReleaseID
		}
		if !res.Changed || !found {
			t.Errorf("changed %v, release %s held %v; want the new version committed", res.Changed, rel.ReleaseID, found)
		}
	})
}
