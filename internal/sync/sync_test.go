package sync_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// rig is one mirror (real bbolt, real cache) syncing from a fake control
// plane.
type rig struct {
	v     *synctest.TUFVendor
	cp    *synctest.TUFControlPlane
	st    *state.State
	cache *cache.Cache
	dir   string
	s     *sync.Syncer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	v := synctest.NewTUFVendor(t)
	r := &rig{v: v, cp: synctest.NewTUFControlPlane(t, v), dir: t.TempDir()}
	var err error
	if r.st, err = state.Open(filepath.Join(r.dir, "mirror.db"), 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.cache, err = cache.Open(r.dir); err != nil {
		t.Fatal(err)
	}
	src, err := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.s = r.syncer(src)
	return r
}

func (r *rig) syncer(src sync.Source) *sync.Syncer {
	return sync.New(src, r.st, r.cache, sync.Config{
		TUF: r.trust(), InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxElapsed: 2 * time.Second,
	})
}

// trust is the mirror's TUF trust: the tenant and its first root.
func (r *rig) trust() *sync.TUFTrust {
	return &sync.TUFTrust{TenantID: r.v.TenantID, Root: r.v.TUF.RootData}
}

// publish makes arts (named seq) the repository's next version and
// returns its snapshot version (what a mirror holding it reports).
func (r *rig) publish(t *testing.T, seq int64, arts []synctest.Art) int64 {
	t.Helper()
	return r.v.Publish(r.v.Manifest(seq, arts))
}

func (r *rig) heldSeq(t *testing.T) int64 {
	t.Helper()
	h, err := r.st.Current()
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return 0
	}
	return h.Sequence
}

func TestSyncer_Once(t *testing.T) {
	r := newRig(t)
	stable := synctest.Art{ID: "art_a", Data: synctest.Random(300 << 10)}
	beta := synctest.Art{ID: "art_b", Channel: "beta", Data: synctest.Random(1000)}
	second := synctest.Art{ID: "art_c", Data: synctest.Random(5000)}
	ctx := context.Background()

	t.Run("first sync commits the stable channel only", func(t *testing.T) {
		v := r.publish(t, 1, []synctest.Art{stable, beta})
		res, err := r.s.Once(ctx)
		if err != nil {
			t.Fatalf("Once: %v", err)
		}
		if !res.Changed || res.Sequence != v || res.Downloaded != 1 {
			t.Errorf("result = %+v, want changed seq %d with 1 download", res, v)
		}
		h, _ := r.st.Current()
		if h == nil || h.Sequence != v {
			t.Fatalf("held = %+v, want version %d", h, v)
		}
		if got := r.cache.Has(synctest.SHA(stable.Data), int64(len(stable.Data))); !got {
			t.Errorf("stable artifact cached = %v, want true", got)
		}
		if got := r.cp.Requests(synctest.SHA(beta.Data)); got != 0 {
			t.Errorf("beta artifact requests = %d, want 0", got)
		}
	})
	t.Run("nothing newer is a no-op", func(t *testing.T) {
		res, err := r.s.Once(ctx)
		if err != nil || res.Changed || res.Sequence != 1 {
			t.Fatalf("Once = %+v, %v; want unchanged at 1", res, err)
		}
		if got := r.cp.Requests(synctest.SHA(stable.Data)); got != 1 {
			t.Errorf("art_a requests = %d, want 1", got)
		}
	})
	t.Run("a newer snapshot with a revoked release", func(t *testing.T) {
		revoked := stable
		revoked.Revoked = true
		v := r.publish(t, 2, []synctest.Art{revoked, beta, second})
		res, err := r.s.Once(ctx)
		if err != nil || !res.Changed || res.Sequence != v || res.Downloaded != 1 {
			t.Fatalf("Once = %+v, %v; want seq %d, 1 download", res, err, v)
		}
		reports := r.cp.Reports()
		last := reports[len(reports)-1]
		if last["status"] != "active" || last["sequence"] != float64(v) {
			t.Errorf("last report = %v, want active at %d", last, v)
		}
	})
	t.Run("channels narrowed by config", func(t *testing.T) {
		r.cp.SetChannels([]string{"stable", "beta"})
		src, _ := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
		s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(), Channels: []string{"beta", "nightly"}})
		v := r.publish(t, 3, []synctest.Art{beta, second})
		res, err := s.Once(ctx)
		if err != nil || res.Sequence != v {
			t.Fatalf("Once = %+v, %v", res, err)
		}
		h, _ := r.st.Current()
		if got := len(state.Needed(h.Manifest, h.Channels)); got != 1 || h.Channels[0] != "beta" {
			t.Errorf("served = %d with channels %v, want 1 with [beta]", got, h.Channels)
		}
	})
}

func TestSyncer_Resume(t *testing.T) {
	r := newRig(t)
	big := synctest.Art{ID: "art_big", Data: synctest.Random(1 << 20)}
	r.publish(t, 1, []synctest.Art{big})
	down := true
	r.cp.Fault = func(sha string, w http.ResponseWriter, req *http.Request) bool {
		if sha == "" {
			return false // metadata
		}
		if synctest.RangeStart(req) == 0 {
			// Send half, then the control plane goes away.
			w.Header().Set("Content-Length", "1048576")
			w.Write(big.Data[:512<<10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	src, _ := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
	s := sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(), InitialBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 100 * time.Millisecond})
	_, err := s.Once(context.Background())
	if err == nil {
		t.Fatal("Once while the control plane is down: want an error")
	}
	if got := r.heldSeq(t); got != 0 {
		t.Fatalf("held sequence = %d, want 0 (nothing committed)", got)
	}
	if got := r.cache.PartialSize(synctest.SHA(big.Data)); got != 512<<10 {
		t.Fatalf("partial size = %d, want %d", got, 512<<10)
	}
	down = false
	res, err := s.Once(context.Background())
	if err != nil || res.Sequence != 1 {
		t.Fatalf("Once after recovery = %+v, %v", res, err)
	}
	if got, want := r.cp.Served(synctest.SHA(big.Data)), int64(1<<20); got != want {
		t.Errorf("bytes served = %d, want %d (no byte downloaded twice)", got, want)
	}
	// (res.Bytes counts the timestamp too: a few hundred bytes)
	if got := res.Bytes; got < 512<<10 || got > 512<<10+4<<10 {
		t.Errorf("bytes downloaded by the second sync = %d, want %d plus the timestamp", got, 512<<10)
	}
}

func TestSyncer_BadArtifact(t *testing.T) {
	tests := []struct {
		name  string
		serve func(data []byte) []byte
		want  error
	}{
		{"wrong bytes", func(b []byte) []byte { x := append([]byte(nil), b...); x[10] ^= 1; return x }, cache.ErrMismatch},
		{"more than size_bytes", func(b []byte) []byte { return append(append([]byte(nil), b...), make([]byte, 64<<10)...) }, cache.ErrTooLarge},
		{"short", func(b []byte) []byte { return b[:len(b)-1] }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			good := synctest.Art{ID: "art_good", Data: synctest.Random(100 << 10)}
			bad := synctest.Art{ID: "art_bad", Data: synctest.Random(100 << 10)}
			r.publish(t, 1, []synctest.Art{good, bad})
			served := tt.serve(bad.Data)
			r.cp.Fault = func(sha string, w http.ResponseWriter, req *http.Request) bool {
				if sha != synctest.SHA(bad.Data) {
					return false
				}
				http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(served))
				return true
			}
			res, err := r.s.Once(context.Background())
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Once error = %v, want %v", err, tt.want)
			}
			if len(res.Missing) != 1 || res.Missing[0] != "art_bad" || res.OK {
				t.Errorf("result = %+v, want art_bad missing", res)
			}
			if r.cache.Has(synctest.SHA(bad.Data), int64(len(bad.Data))) {
				t.Error("bad artifact is in the cache")
			}
			// A short download is kept to resume; bad bytes are deleted.
			wantPart := int64(0)
			if tt.want == nil {
				wantPart = int64(len(bad.Data)) - 1
			}
			if got := r.cache.PartialSize(synctest.SHA(bad.Data)); got != wantPart {
				t.Errorf("partial left behind: %d bytes, want %d", got, wantPart)
			}
			if got := r.heldSeq(t); got != 0 {
				t.Errorf("held sequence = %d, want 0", got)
			}
			last, _, _ := r.st.LastSync()
			if last.OK || last.Error == "" {
				t.Errorf("last sync = %+v, want the error recorded", last)
			}
			reports := r.cp.Reports()
			if len(reports) == 0 || reports[len(reports)-1]["status"] != "error" {
				t.Errorf("reports = %v, want a final error report", reports)
			}
		})
	}
}

// What a source may send that is refused (rollback, freeze, another
// tenant, untrusted keys, endless data, mix-and-match) is mounted in
// tuf_attack_test.go.

func TestSyncer_GC(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var arts []synctest.Art
	for seq := int64(1); seq <= 5; seq++ {
		a := synctest.Art{ID: "art_" + string(rune('a'+seq)), Data: synctest.Random(100)}
		arts = append(arts, a)
		r.publish(t, seq, []synctest.Art{a})
		if _, err := r.s.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := r.s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 2 || rep.Kept != 3 {
		t.Errorf("gc = %+v, want 2 removed, 3 kept (retain 3)", rep)
	}
	for i, a := range arts {
		if got, want := r.cache.Has(synctest.SHA(a.Data), 100), i >= 2; got != want {
			t.Errorf("snapshot %d's blob cached = %v, want %v", i+1, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(r.dir, "mirror.db")); err != nil {
		t.Fatal(err)
	}
}
