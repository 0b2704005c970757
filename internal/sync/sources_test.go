package sync_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// badTimestamps are timestamps every source must refuse once the mirror
// holds the vendor's newest version: an older one (rollback), an expired
// one (freeze) and one signed by a key the root does not name.
func badTimestamps(t *testing.T, v *synctest.TUFVendor, old []byte) map[string][]byte {
	t.Helper()
	rogue := tuftest.Signer(t, 200)
	const path = "metadata/timestamp.json"
	return map[string][]byte{
		"rolled back": old,
		"expired": tuftest.Resign[metadata.TimestampType](t, v.TUF, path, func(m *metadata.Metadata[metadata.TimestampType]) {
			m.Signed.Version++
			m.Signed.Expires = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		}, v.TUF.TS),
		"wrongly signed": tuftest.Resign[metadata.TimestampType](t, v.TUF, path, func(m *metadata.Metadata[metadata.TimestampType]) {
			m.Signed.Version++
		}, rogue),
	}
}

func newMirror(t *testing.T) (*state.State, *cache.Cache) {
	t.Helper()
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

func TestSyncer_BucketSource(t *testing.T) {
	ctx := context.Background()
	store, err := s3.New(ctx, testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	v := synctest.NewTUFVendor(t)
	arts := []synctest.Art{{ID: "art_a", Data: synctest.Random(300 << 10)}, {ID: "art_b", Data: synctest.Random(10)}}
	v.Publish(v.Manifest(1, arts[:1]))
	old := v.TUF.Repo.Get("metadata/timestamp.json")
	seq := v.Publish(v.Manifest(2, arts))
	putRepo(t, store, "outpost/", v.TUF.Repo, nil)
	st, c := newMirror(t)
	s := sync.New(sync.NewBucket(store, "outpost/"), st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}})
	res, err := s.Once(ctx)
	if err != nil || res.Sequence != seq || res.Downloaded != 2 {
		t.Fatalf("Once = %+v, %v", res, err)
	}
	res, err = s.Once(ctx)
	if err != nil || res.Changed {
		t.Fatalf("second Once = %+v, %v; want unchanged", res, err)
	}
	for name, bad := range badTimestamps(t, v, old) {
		t.Run(name, func(t *testing.T) {
			if _, err := store.Put(ctx, "outpost/metadata/timestamp.json", bytes.NewReader(bad), blob.Expect{}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Once(ctx); err == nil || !strings.Contains(err.Error(), "timestamp") {
				t.Fatalf("Once error = %v, want the timestamp refused", err)
			}
			if h, _ := st.Current(); h.Sequence != seq {
				t.Errorf("held = %d, want %d", h.Sequence, seq)
			}
		})
	}
}

func TestSyncer_UpstreamSource(t *testing.T) {
	ctx := context.Background()
	// Mirror A syncs from the control plane and serves mirror B.
	a := newRig(t)
	arts := []synctest.Art{{ID: "art_a", Data: synctest.Random(200 << 10)}, {ID: "art_b", Channel: "beta", Data: synctest.Random(10)}}
	a.publish(t, 1, arts[:1])
	old := a.v.TUF.Repo.Get("metadata/timestamp.json")
	seq := a.publish(t, 2, arts)
	if _, err := a.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := mirror.NewServer(mirror.Options{State: a.st, Cache: a.cache, ClientTokens: []string{"tok"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	var bad []byte
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad != nil && r.URL.Path == "/tuf/metadata/timestamp.json" {
			w.Write(bad)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer upstream.Close()

	st, c := newMirror(t)
	src, err := sync.NewUpstream(upstream.URL, "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{TUF: a.trust(), Channels: []string{"stable"}})
	res, err := s.Once(ctx)
	if err != nil || res.Sequence != seq || res.Downloaded != 1 {
		t.Fatalf("Once from upstream = %+v, %v", res, err)
	}
	served := func(st *state.State) []byte {
		b, err := st.ServedTUFTimestamp()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(served(st), served(a.st)) {
		t.Error("downstream serves another timestamp than upstream's")
	}
	for name, b := range badTimestamps(t, a.v, old) {
		t.Run(name, func(t *testing.T) {
			bad = b
			if _, err := s.Once(ctx); err == nil || !strings.Contains(err.Error(), "timestamp") {
				t.Fatalf("Once error = %v, want the timestamp refused", err)
			}
			if h, _ := st.Current(); h.Sequence != seq {
				t.Errorf("held = %d, want %d", h.Sequence, seq)
			}
		})
	}
}

func TestHTTPSource_RedirectDropsCredential(t *testing.T) {
	data := []byte("external artifact bytes")
	var gotAuth string
	external := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.Write(data)
	}))
	defer external.Close()
	r := newRig(t)
	r.cp.Fault = func(sha string, w http.ResponseWriter, req *http.Request) bool {
		if sha == "" {
			return false
		}
		http.Redirect(w, req, external.URL+"/presigned?x=1", http.StatusFound)
		return true
	}
	r.publish(t, 1, []synctest.Art{{ID: "art_x", Data: data}})
	if _, err := r.s.Once(context.Background()); err != nil {
		t.Fatalf("Once: %v", err)
	}
	if gotAuth != "" {
		t.Errorf("the external host received Authorization %q", gotAuth)
	}
	if !r.cache.Has(synctest.SHA(data), int64(len(data))) {
		t.Error("redirected artifact not cached")
	}
}
