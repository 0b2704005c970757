package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/update"
)

// TestDeltas_EndToEnd: the control plane builds a delta when 1.1.0 is
// published, lists it in the signed snapshot and serves it to the
// mirror; the mirror, holding 1.0.0, rebuilds 1.1.0 from it and serves the
// delta; a client holding 1.0.0 downloads only the delta from the mirror.
func TestDeltas_EndToEnd(t *testing.T) {
	h := newHarness(t)
	h.enableTUF()
	ctx := context.Background()
	tenant := h.tenant("acme")
	prod := h.product("app", "open")
	_, cred, _ := h.mirror(tenant, "stable")
	v1 := make([]byte, 1<<20)
	rand.Read(v1)
	v2 := bytes.Clone(v1)
	copy(v2[4096:], "1.1.0: a one-line change")
	h.release(prod, "stable", "1.0.0", v1)
	h.snapshot(tenant)

	// The mirror syncs 1.0.0.
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sync.NewControlPlane(h.ts.URL, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, err := h.app.TUFRoot(h.operator(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	syncer := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: tenant, Root: root}})
	if _, err := syncer.Once(ctx); err != nil {
		t.Fatal(err)
	}

	rel2, _ := h.release(prod, "stable", "1.1.0", v2)
	h.snapshot(tenant)
	jobs := h.do("GET", "/v1/releases/"+rel2+"/deltas", h.admin, nil)
	if jobs.status != 200 || !bytes.Contains(jobs.body, []byte(`"state":"pending"`)) {
		t.Fatalf("deltas of the new release: %d %s, want one pending", jobs.status, jobs.body)
	}
	if ran, err := h.app.RunDeltaJob(ctx); !ran || err != nil {
		t.Fatalf("RunDeltaJob: %v, %v", ran, err)
	}
	jobs = h.do("GET", "/v1/releases/"+rel2+"/deltas", h.admin, nil)
	if !bytes.Contains(jobs.body, []byte(`"state":"done"`)) || !bytes.Contains(jobs.body, []byte(`"offered":true`)) {
		t.Fatalf("deltas after the build: %s", jobs.body)
	}

	res, err := syncer.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rebuilt != 1 || res.Bytes >= int64(len(v2))/10 {
		t.Fatalf("mirror sync: rebuilt %d, moved %d bytes; want 1 rebuilt from a small delta", res.Rebuilt, res.Bytes)
	}

	srv, err := mirror.NewServer(mirror.Options{State: st, Cache: c, ClientTokens: []string{"ct_1"}, Updates: func(m *snapshot.Manifest) (http.Handler, error) {
		e, err := update.New(m)
		if err != nil {
			return nil, err
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { update.Handle(w, r, e, time.Now()) }), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	ms := httptest.NewServer(srv.Handler())
	defer ms.Close()

	cl, err := client.New(ms.URL, client.WithToken("ct_1"), client.WithTUF(tenant, root, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(t.TempDir(), "app-1.0.0.tar.gz")
	if err := os.WriteFile(installed, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := client.InstalledFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cl.Check(ctx, client.Query{Product: prod, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0", InstalledSHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	if d.Delta == nil {
		t.Fatalf("the mirror's answer offers no delta: %+v", d)
	}
	// The control plane gives the same answer bytes for the same query.
	tok := h.tenantToken(tenant)
	q := "/v1/updates/check?product=" + prod + "&channel=stable&platform=linux&arch=x64&version=1.0.0&installed_sha256=" + sum
	cpAnswer := h.do("GET", q, tok, nil)
	req, _ := http.NewRequest("GET", ms.URL+q, nil)
	req.Header.Set("Authorization", "Bearer ct_1")
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	mb.ReadFrom(mresp.Body)
	mresp.Body.Close()
	if !bytes.Equal(cpAnswer.body, mb.Bytes()) {
		t.Errorf("answers differ:\ncontrol plane %s\nmirror        %s", cpAnswer.body, mb.Bytes())
	}

	dest := filepath.Join(t.TempDir(), "app-1.1.0.tar.gz")
	got, err := cl.DownloadFrom(ctx, d, dest, installed, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dest)
	if !got.Used || got.Transferred != d.Delta.SizeBytes || !bytes.Equal(b, v2) {
		t.Fatalf("download: used %v, %d bytes transferred (fallback %q); want the delta's %d bytes", got.Used, got.Transferred, got.Fallback, d.Delta.SizeBytes)
	}
}
