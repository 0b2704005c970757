package synctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
	"github.com/outpost/outpost/internal/wire"
)

// TUFVendor is one tenant's TUF repository for mirror tests: it builds
// views of Art as Vendor does and publishes each as the repository's
// next version, with the artifacts' bytes under their target paths.
type TUFVendor struct {
	TUF      *tuftest.Vendor
	TenantID string

	mu   sync.Mutex
	data map[string][]byte // sha256 -> bytes of every Art seen
}

// NewTUFVendor makes a vendor of a new tenant (a real tenant id) that
// has published its first root (TUF.RootData).
func NewTUFVendor(t testing.TB) *TUFVendor {
	v := tuftest.NewVendor(t, catalog.NewID(catalog.PrefixTenant), 0)
	return &TUFVendor{TUF: v, TenantID: v.TenantID, data: map[string][]byte{}}
}

// Manifest builds a valid view holding arts (seq names it; the published
// version is the repository's next snapshot version).
func (v *TUFVendor) Manifest(seq int64, arts []Art) *snapshot.Manifest {
	v.mu.Lock()
	for _, a := range arts {
		v.data[SHA(a.Data)] = a.Data
	}
	v.mu.Unlock()
	return manifest(v.TenantID, seq, arts)
}

// AddBlob makes b (a delta's bytes) publishable by its sha256.
func (v *TUFVendor) AddBlob(b []byte) {
	v.mu.Lock()
	v.data[SHA(b)] = b
	v.mu.Unlock()
}

// Publish signs m as the repository's next version, puts the bytes of
// its artifacts (and of its deltas given to AddBlob) under their target
// paths, and returns the snapshot version (what a mirror holding it
// reports as its sequence).
func (v *TUFVendor) Publish(m *snapshot.Manifest) int64 {
	v.TUF.T.Helper()
	v.TUF.Now = time.Now().UTC().Truncate(time.Second)
	v.TUF.Build(m)
	v.mu.Lock()
	v.TUF.PublishArtifacts(m, v.data)
	product := map[string]string{}
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			product[ra.ArtifactID] = r.ProductID
		}
	}
	for _, d := range m.Deltas {
		if b, ok := v.data[d.SHA256]; ok {
			v.TUF.Repo.Set(tuf.TargetPath(tuf.DeltaTarget(product[d.ToArtifactID], d.FromSHA256, d.ToSHA256), d.SHA256), b)
		}
	}
	v.mu.Unlock()
	_, snap, _ := v.TUF.State.Versions()
	return snap
}

// WriteRoot writes the tenant's first root.json into dir and returns its
// path (a mirror config's root_file).
func (v *TUFVendor) WriteRoot(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "root.json")
	if err := os.WriteFile(p, v.TUF.RootData, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bundle exports the newest published version as a TUF bundle for a
// mirror holding snapshot version since (0: none), carrying every active
// artifact whose bytes are published.
func (v *TUFVendor) Bundle(t testing.TB, since int64) []byte {
	t.Helper()
	return v.bundle(t, since, v.published, nil, nil)
}

// published picks the active artifacts whose bytes are published.
func (v *TUFVendor) published(ts []tuf.Target) []tuf.Target {
	var out []tuf.Target
	seen := map[string]bool{}
	for _, tg := range ts {
		if v.TUF.Repo.Get(tuf.TargetPath(tg.Path, tg.SHA256)) != nil && !seen[tg.SHA256] && tg.Custom.Status == "ACTIVE" {
			seen[tg.SHA256] = true
			out = append(out, tg)
		}
	}
	return out
}

// BundleCarrying is Bundle carrying what pick returns from the artifact
// targets the export found added (a delta as a pseudo-target of
// tuf.DeltaTarget path is allowed), each as the bytes open returns for it
// (nil open: the published bytes of its path and sha256).
func (v *TUFVendor) BundleCarrying(t testing.TB, since int64, pick func(added []tuf.Target) []tuf.Target, open func(tuf.Target) []byte) []byte {
	t.Helper()
	return v.bundle(t, since, pick, open, nil)
}

// BundleAck is Bundle carrying ack as its return-file acknowledgement
// (returnfile.SignAckBy's envelope).
func (v *TUFVendor) BundleAck(t testing.TB, since int64, ack []byte) []byte {
	t.Helper()
	return v.bundle(t, since, v.published, nil, ack)
}

func (v *TUFVendor) bundle(t testing.TB, since int64, pick func(added []tuf.Target) []tuf.Target, open func(tuf.Target) []byte, ack []byte) []byte {
	t.Helper()
	ctx := context.Background()
	repo := v.TUF.Repo
	read := func(_ context.Context, path string) ([]byte, error) {
		if b := repo.Get(path); b != nil {
			return b, nil
		}
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	held, err := tuf.NewReceiverStore(ctx, read, since)
	if err != nil {
		t.Fatal(err)
	}
	if open == nil {
		open = func(tg tuf.Target) []byte { return repo.Get(tuf.TargetPath(tg.Path, tg.SHA256)) }
	}
	var buf bytes.Buffer
	_, err = bundle.ExportTUF(ctx, &buf, bundle.TUFExport{
		TenantID: v.TenantID, Since: since, Repo: tuftest.Fetcher{Repo: repo}, Held: held, Ack: ack,
		Select: func(_ context.Context, ts []tuf.Target, _ *tuf.Repository) ([]tuf.Target, error) {
			return pick(ts), nil
		},
		Open: func(_ context.Context, tg tuf.Target) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(open(tg))), nil
		},
		Now: time.Now, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// TUFControlPlane is a fake control plane serving a TUFVendor's
// repository at /v1/mirror/tuf/ (with the mirror credential), the mirror
// record and status, and deltas, counting the target bytes served per
// artifact sha256.
type TUFControlPlane struct {
	*httptest.Server
	Credential string

	v        *TUFVendor
	h        http.Handler
	mu       sync.Mutex
	channels []string
	served   map[string]int64 // sha256 -> target body bytes served
	requests map[string]int   // sha256 -> target requests
	deltas   map[string][]byte
	reports  []map[string]any
	// Fault, when set, may answer a target request itself (return true);
	// sha is the target's sha256 ("" for metadata).
	Fault func(sha string, w http.ResponseWriter, r *http.Request) bool
	// ChunkDelay slows target bodies: a pause before every 32 KiB.
	ChunkDelay time.Duration
}

// NewTUFControlPlane serves v's repository with allowed channel "stable".
func NewTUFControlPlane(t testing.TB, v *TUFVendor) *TUFControlPlane {
	c := &TUFControlPlane{Credential: "mc_secret", v: v, channels: []string{"stable"}, served: map[string]int64{}, requests: map[string]int{}, deltas: map[string][]byte{}}
	c.h = tufhttp.New(v.TUF.Repo, tufhttp.Options{Prefix: "/v1/mirror/tuf/"})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/mirror/tuf/", c.tuf)
	mux.HandleFunc("GET /v1/mirror/deltas/{id}", c.delta)
	mux.HandleFunc("GET /v1/mirror/self", c.self)
	mux.HandleFunc("POST /v1/mirror/status", c.status)
	c.Server = httptest.NewServer(mux)
	t.Cleanup(c.Close)
	return c
}

// SetChannels sets the mirror's allowed channels.
func (c *TUFControlPlane) SetChannels(ch []string) {
	c.mu.Lock()
	c.channels = ch
	c.mu.Unlock()
}

// AddDelta serves a delta's bytes at /v1/mirror/deltas/{id}.
func (c *TUFControlPlane) AddDelta(id string, b []byte) {
	c.mu.Lock()
	c.deltas[id] = b
	c.mu.Unlock()
}

// Served is how many target body bytes were written for the artifact
// with this sha256.
func (c *TUFControlPlane) Served(sha string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served[sha]
}

// Requests is how many requests were made for the target with this
// sha256.
func (c *TUFControlPlane) Requests(sha string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[sha]
}

// StallTarget makes the target with this sha256 stall: its answer
// announces 1 MiB, sends 1 KiB and then nothing until the request goes
// away. The channel gets a value each time a request reaches the stall.
func (c *TUFControlPlane) StallTarget(sha string) <-chan struct{} {
	stalled := make(chan struct{}, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Fault = func(got string, w http.ResponseWriter, r *http.Request) bool {
		if got != sha {
			return false
		}
		w.Header().Set("Content-Length", "1048576")
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		select {
		case stalled <- struct{}{}:
		default:
		}
		<-r.Context().Done()
		return true
	}
	return stalled
}

// Reports returns the status reports received.
func (c *TUFControlPlane) Reports() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.reports...)
}

func (c *TUFControlPlane) authed(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+c.Credential {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.EUNAUTHORIZED, "bad credential"))
		return false
	}
	return true
}

// targetSHA is the sha256 of an artifact's consistent target path
// (targets/<dir>/<sha256>.<name>), or "" (metadata and documents).
func targetSHA(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/mirror/tuf/targets/")
	if !ok || strings.HasPrefix(rest, "docs/") { // documents count as metadata
		return ""
	}
	base := rest[strings.LastIndexByte(rest, '/')+1:]
	if strings.HasSuffix(base, ".product.json") {
		return "" // the product document
	}
	if i := strings.IndexByte(base, '.'); i == 64 {
		return base[:i]
	}
	return ""
}

func (c *TUFControlPlane) tuf(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	sha := targetSHA(r.URL.Path)
	c.mu.Lock()
	fault, delay := c.Fault, c.ChunkDelay
	if sha != "" {
		c.requests[sha]++
	}
	c.mu.Unlock()
	if sha == "" {
		if fault != nil && fault("", w, r) {
			return
		}
		c.h.ServeHTTP(w, r)
		return
	}
	cw := &tufCounter{ResponseWriter: w, cp: c, sha: sha, delay: delay}
	if fault != nil && fault(sha, cw, r) {
		return
	}
	c.h.ServeHTTP(cw, r)
}

func (c *TUFControlPlane) delta(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	c.mu.Lock()
	b, ok := c.deltas[r.PathValue("id")]
	c.mu.Unlock()
	if !ok {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.ENOTFOUND, "no such delta"))
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (c *TUFControlPlane) self(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"mirror_id": "mir_1", "tenant_id": c.v.TenantID, "allowed_channels": c.channels, "status": "active"})
}

func (c *TUFControlPlane) status(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	c.mu.Lock()
	c.reports = append(c.reports, m)
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// tufCounter counts body bytes written for a target.
type tufCounter struct {
	http.ResponseWriter
	cp    *TUFControlPlane
	sha   string
	delay time.Duration
}

func (c *tufCounter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		chunk := p
		if c.delay > 0 {
			chunk = p[:min(len(p), 32<<10)]
			time.Sleep(c.delay)
		}
		m, err := c.ResponseWriter.Write(chunk)
		n += m
		c.cp.mu.Lock()
		c.cp.served[c.sha] += int64(m)
		c.cp.mu.Unlock()
		if err != nil {
			return n, err
		}
		p = p[len(chunk):]
	}
	return n, nil
}

// Flush flushes the underlying writer.
func (c *tufCounter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
