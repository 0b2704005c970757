package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/wire"
)

type rig struct {
	v     *synctest.TUFVendor
	cp    *synctest.TUFControlPlane
	st    *state.State
	cache *cache.Cache
	s     *sync.Syncer
}

func newRig(t testing.TB) *rig {
	t.Helper()
	dir := t.TempDir()
	v := synctest.NewTUFVendor(t)
	r := &rig{v: v, cp: synctest.NewTUFControlPlane(t, v)}
	var err error
	if r.st, err = state.Open(filepath.Join(dir, "mirror.db"), 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.cache, err = cache.Open(dir); err != nil {
		t.Fatal(err)
	}
	src, err := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.s = sync.New(src, r.st, r.cache, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}})
	return r
}

// importBundle publishes m as the vendor's next version and imports a
// bundle of it made for what the mirror holds.
func (r *rig) importBundle(t testing.TB, m *snapshot.Manifest) {
	t.Helper()
	var since int64
	if held, err := r.st.CurrentRecord(); err != nil {
		t.Fatal(err)
	} else if held != nil {
		since = held.Sequence
	}
	r.v.Publish(m)
	if _, err := r.s.Import(context.Background(), bytes.NewReader(r.v.Bundle(t, since)), false); err != nil {
		t.Fatalf("import: %v", err)
	}
}

func (r *rig) sync(t *testing.T, seq int64, arts []synctest.Art) []byte {
	t.Helper()
	r.v.Publish(r.v.Manifest(seq, arts))
	if _, err := r.s.Once(context.Background()); err != nil {
		t.Fatalf("sync %d: %v", seq, err)
	}
	held, err := r.st.Current()
	if err != nil || held == nil {
		t.Fatalf("held after sync %d: %v, %v", seq, held, err)
	}
	return held.Envelope
}

func (r *rig) server(t *testing.T, o mirror.Options) (*mirror.Server, *httptest.Server) {
	t.Helper()
	o.State, o.Cache = r.st, r.cache
	srv, err := mirror.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestServer_Artifacts(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(200 << 10)}
	beta := synctest.Art{ID: "art_beta", Channel: "beta", Data: synctest.Random(100)}
	srv, hs := r.server(t, mirror.Options{ServeExpired: true})

	if resp, _ := get(t, hs.URL+"/readyz", nil); resp.StatusCode != 503 {
		t.Errorf("readyz before any snapshot = %d, want 503", resp.StatusCode)
	}
	// /v1/snapshot is the held record: a reference to the TUF version
	// held (a client verifies through /tuf/), by its id too.
	env := r.sync(t, 1, []synctest.Art{a, beta})
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.st.CurrentRecord()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte(`"payloadType":"`+state.TUFRefType+`"`)) {
		t.Errorf("held record %.200s is not a reference to the TUF version held", env)
	}
	sha := synctest.SHA(a.Data)
	tests := []struct {
		name       string
		path       string
		hdr        map[string]string
		wantStatus int
		wantBody   []byte
	}{
		{"by id", "/v1/artifacts/art_a", nil, 200, a.Data},
		{"download", "/v1/artifacts/art_a/download", nil, 200, a.Data},
		{"by sha", "/v1/artifacts/by-sha256/" + sha, nil, 200, a.Data},
		{"range", "/v1/artifacts/art_a", map[string]string{"Range": "bytes=1000-1999"}, 206, a.Data[1000:2000]},
		{"suffix range", "/v1/artifacts/art_a", map[string]string{"Range": "bytes=-10"}, 206, a.Data[len(a.Data)-10:]},
		{"if-none-match", "/v1/artifacts/art_a", map[string]string{"If-None-Match": `"` + sha + `"`}, 304, nil},
		{"other etag", "/v1/artifacts/art_a", map[string]string{"If-None-Match": `"abc"`}, 200, a.Data},
		{"unknown id", "/v1/artifacts/art_nope", nil, 404, nil},
		{"unknown sha", "/v1/artifacts/by-sha256/" + strings.Repeat("0", 64), nil, 404, nil},
		{"channel not served", "/v1/artifacts/art_beta", nil, 404, nil},
		{"snapshot verbatim", "/v1/snapshot", nil, 200, env},
		{"snapshot by id", "/v1/snapshots/" + rec.SnapshotID, nil, 200, env},
		{"unknown snapshot", "/v1/snapshots/snp_x", nil, 404, nil},
		{"readyz", "/readyz", nil, 200, []byte("ok\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, hs.URL+tt.path, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("body: got %d bytes, want %d", len(body), len(tt.wantBody))
			}
			if tt.wantStatus == 200 && strings.HasPrefix(tt.path, "/v1/artifacts") {
				if got := resp.Header.Get("ETag"); got != `"`+sha+`"` {
					t.Errorf("ETag = %q", got)
				}
				if got := resp.Header.Get(wire.HeaderChecksum); got != sha {
					t.Errorf("%s = %q, want %q", wire.HeaderChecksum, got, sha)
				}
				if got := resp.ContentLength; got != int64(len(a.Data)) {
					t.Errorf("Content-Length = %d, want %d", got, len(a.Data))
				}
			}
		})
	}

	t.Run("revoked release stops being served after the next commit", func(t *testing.T) {
		revoked := a
		revoked.Revoked = true
		r.sync(t, 2, []synctest.Art{revoked, beta})
		if resp, _ := get(t, hs.URL+"/v1/artifacts/art_a", nil); resp.StatusCode != 200 {
			t.Errorf("before reload: status %d, want 200 (old snapshot still held by the view)", resp.StatusCode)
		}
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
		if resp, _ := get(t, hs.URL+"/v1/artifacts/art_a", nil); resp.StatusCode != 404 {
			t.Errorf("after commit: status %d, want 404", resp.StatusCode)
		}
		if resp, _ := get(t, hs.URL+"/v1/artifacts/by-sha256/"+sha, nil); resp.StatusCode != 404 {
			t.Errorf("after commit by sha: status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("status", func(t *testing.T) {
		resp, body := get(t, hs.URL+"/v1/status", nil)
		var st mirror.Status
		if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d %s: %v", resp.StatusCode, body, err)
		}
		if st.Snapshot == nil || st.Snapshot.Sequence != 2 || st.LastSync == nil || !st.LastSync.OK || st.Cache.Blobs != 1 {
			t.Errorf("status = %s", body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		_, body := get(t, hs.URL+"/metrics", nil)
		for _, want := range []string{"outpost_mirror_snapshot_sequence 2", "outpost_mirror_served_bytes_total", "outpost_mirror_snapshot_expired 0"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func TestServer_Expired(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: []byte("bytes")}
	r.sync(t, 1, []synctest.Art{a})
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	tests := []struct {
		serveExpired bool
		wantReady    int
		wantArtifact int
	}{
		{true, 200, 200},
		{false, 503, 503},
	}
	for _, tt := range tests {
		_, hs := r.server(t, mirror.Options{ServeExpired: tt.serveExpired, Now: later})
		resp, body := get(t, hs.URL+"/readyz", nil)
		if resp.StatusCode != tt.wantReady || !strings.Contains(string(body), "expired") {
			t.Errorf("serve_expired=%v: readyz = %d %q, want %d mentioning expired", tt.serveExpired, resp.StatusCode, body, tt.wantReady)
		}
		if resp, _ := get(t, hs.URL+"/v1/artifacts/art_a", nil); resp.StatusCode != tt.wantArtifact {
			t.Errorf("serve_expired=%v: artifact = %d, want %d", tt.serveExpired, resp.StatusCode, tt.wantArtifact)
		}
		_, body = get(t, hs.URL+"/v1/status", nil)
		if !strings.Contains(string(body), `"expired":true`) {
			t.Errorf("status does not say expired: %s", body)
		}
		_, body = get(t, hs.URL+"/metrics", nil)
		if !strings.Contains(string(body), "outpost_mirror_snapshot_expired 1") {
			t.Errorf("metrics do not say expired")
		}
	}
}

func TestServer_ClientTokens(t *testing.T) {
	r := newRig(t)
	r.sync(t, 1, []synctest.Art{{ID: "art_a", Data: []byte("x")}})
	_, hs := r.server(t, mirror.Options{ClientTokens: []string{"t1", "t2"}})
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"none", nil, 401},
		{"wrong", map[string]string{"Authorization": "Bearer t3"}, 401},
		{"right", map[string]string{"Authorization": "Bearer t2"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, _ := get(t, hs.URL+"/v1/artifacts/art_a", tt.hdr); resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if resp, _ := get(t, hs.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("healthz needs no token: got %d", resp.StatusCode)
	}
}
