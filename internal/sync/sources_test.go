package sync_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// badEnvelopes are the snapshots every source must refuse once the mirror
// holds sequence 2 of arts.
func badEnvelopes(t *testing.T, v *synctest.Vendor, arts []synctest.Art) map[string]struct {
	env  []byte
	want error
} {
	other := synctest.NewVendor(t)
	expired := v.Manifest(3, arts)
	expired.CreatedAt, expired.ExpiresAt = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	foreign := v.Manifest(3, arts)
	foreign.TenantID, foreign.Tenant.TenantID = "ten_other", "ten_other"
	return map[string]struct {
		env  []byte
		want error
	}{
		"rolled back":    {v.Sign(t, v.Manifest(1, arts)), snapshot.ErrRollback},
		"expired":        {v.Sign(t, expired), snapshot.ErrExpired},
		"foreign tenant": {v.Sign(t, foreign), snapshot.ErrTenant},
		"wrongly signed": {v.SignAs(t, other, v.Manifest(3, arts)), snapshot.ErrUntrustedKey},
	}
}

func newMirror(t *testing.T, v *synctest.Vendor) (*state.State, *cache.Cache) {
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
	v := synctest.NewVendor(t)
	arts := []synctest.Art{{ID: "art_a", Data: synctest.Random(300 << 10)}, {ID: "art_b", Data: synctest.Random(10)}}
	for _, a := range arts {
		if _, err := store.Put(ctx, "outpost/artifacts/"+synctest.SHA(a.Data), bytes.NewReader(a.Data), blob.Expect{}); err != nil {
			t.Fatal(err)
		}
	}
	putEnv := func(env []byte) {
		if _, err := store.Put(ctx, "outpost/"+sync.DefaultSnapshotKey, bytes.NewReader(env), blob.Expect{}); err != nil {
			t.Fatal(err)
		}
	}
	st, c := newMirror(t, v)
	s := sync.New(sync.NewBucket(store, "outpost/", "", 0), st, c, sync.Config{Trust: v.Trust()})
	v.Sign(t, v.Manifest(1, arts))
	putEnv(v.Sign(t, v.Manifest(2, arts)))
	res, err := s.Once(ctx)
	if err != nil || res.Sequence != 2 || res.Downloaded != 2 {
		t.Fatalf("Once = %+v, %v", res, err)
	}
	res, err = s.Once(ctx)
	if err != nil || res.Changed {
		t.Fatalf("second Once = %+v, %v; want unchanged", res, err)
	}
	for name, bad := range badEnvelopes(t, v, arts) {
		t.Run(name, func(t *testing.T) {
			putEnv(bad.env)
			if _, err := s.Once(ctx); !errors.Is(err, bad.want) {
				t.Fatalf("Once error = %v, want %v", err, bad.want)
			}
			if h, _ := st.Current(); h.Sequence != 2 {
				t.Errorf("held = %d, want 2", h.Sequence)
			}
		})
	}
}

func TestSyncer_UpstreamSource(t *testing.T) {
	ctx := context.Background()
	// Mirror A syncs from the control plane and serves mirror B.
	a := newRig(t)
	arts := []synctest.Art{{ID: "art_a", Data: synctest.Random(200 << 10)}, {ID: "art_b", Channel: "beta", Data: synctest.Random(10)}}
	a.publish(t, 1, arts)
	a.publish(t, 2, arts)
	if _, err := a.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := mirror.NewServer(mirror.Options{State: a.st, Cache: a.cache, ClientTokens: []string{"tok"}})
	if err != nil {
		t.Fatal(err)
	}
	var bad []byte
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad != nil && r.URL.Path == "/v1/snapshot" {
			w.Write(bad)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer upstream.Close()

	st, c := newMirror(t, a.v)
	src, err := sync.NewUpstream(upstream.URL, "tok", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{Trust: a.v.Trust(), Channels: []string{"stable"}})
	res, err := s.Once(ctx)
	if err != nil || res.Sequence != 2 || res.Downloaded != 1 {
		t.Fatalf("Once from upstream = %+v, %v", res, err)
	}
	held, _ := st.Current()
	upHeld, _ := a.st.Current()
	if !bytes.Equal(held.Envelope, upHeld.Envelope) {
		t.Error("downstream envelope differs from upstream's")
	}
	for name, b := range badEnvelopes(t, a.v, arts) {
		t.Run(name, func(t *testing.T) {
			bad = b.env
			if _, err := s.Once(ctx); !errors.Is(err, b.want) {
				t.Fatalf("Once error = %v, want %v", err, b.want)
			}
			if h, _ := st.Current(); h.Sequence != 2 {
				t.Errorf("held = %d, want 2", h.Sequence)
			}
		})
	}
	t.Run("bundle", func(t *testing.T) {
		for name, b := range badEnvelopes(t, a.v, arts) {
			var buf bytes.Buffer
			w := bundle.NewWriter(&buf)
			w.WriteSnapshot(b.env)
			w.Close()
			if _, err := s.Import(ctx, &buf, false); !errors.Is(err, b.want) {
				t.Errorf("%s: Import error = %v, want %v", name, err, b.want)
			}
			if h, _ := st.Current(); h.Sequence != 2 {
				t.Errorf("%s: held = %d, want 2", name, h.Sequence)
			}
		}
	})
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
	r.cp.Fault = func(id string, w http.ResponseWriter, req *http.Request) bool {
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
