package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tufkeys"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// staticKeys is a Keyring over keys made in the test.
type staticKeys struct{ keys []ed25519.PrivateKey }

func (s *staticKeys) Signers() []snapshot.Signer {
	var out []snapshot.Signer
	for _, k := range s.keys {
		out = append(out, snapshot.Signer{KeyID: snapshot.KeyID(k.Public().(ed25519.PublicKey)), Key: k})
	}
	return out
}

func (s *staticKeys) PublicKeys() []controlplane.PublicKey {
	var out []controlplane.PublicKey
	for _, k := range s.keys {
		pub := k.Public().(ed25519.PublicKey)
		out = append(out, controlplane.PublicKey{KeyID: snapshot.KeyID(pub), PublicKey: pub, Status: "active"})
	}
	return out
}

type harness struct {
	t      *testing.T
	srv    *httpapi.Server
	app    *controlplane.App
	ts     *httptest.Server
	db     *bolt.DB
	blobs  blob.Store
	dir    string
	admin  string
	key    ed25519.PrivateKey
	client *http.Client
}

type harnessOpt func(*controlplane.Options)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	o := controlplane.Options{Store: db, Blobs: blobs, Keys: &staticKeys{keys: []ed25519.PrivateKey{key}}, Secrets: sealer}
	o.Config.AllowPrivateURLs = true // test servers are on loopback
	for _, opt := range opts {
		opt(&o)
	}
	app := controlplane.New(o)
	srv := &httpapi.Server{App: app}
	srv.SetReady(true)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	tok, err := app.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, app: app, ts: ts, db: db, blobs: o.Blobs, dir: dir, admin: tok.Secret, key: key,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (r resp) errCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r resp) errMessage(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["message"].(string)
	return c
}

func (h *harness) raw(method, path, token, contentType string, body io.Reader, hdr map[string]string) resp {
	h.t.Helper()
	req, err := http.NewRequest(method, h.ts.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// do sends body (a string is sent as is, anything else as JSON).
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	return h.raw(method, path, token, "application/json", rd, nil)
}

// must checks the status and returns the JSON answer.
func (h *harness) must(want int, r resp) map[string]any {
	h.t.Helper()
	if r.status != want {
		h.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(h.t)
}

func (h *harness) tenant(name string) string {
	h.t.Helper()
	return h.must(201, h.do("POST", "/v1/tenants", h.admin, map[string]any{"name": name}))["tenant_id"].(string)
}

func (h *harness) tenantToken(tenantID string) string {
	h.t.Helper()
	return h.must(201, h.do("POST", "/v1/tokens", h.admin, map[string]any{"role": "tenant", "tenant_id": tenantID}))["token"].(string)
}

func (h *harness) product(name, dist string) string {
	h.t.Helper()
	return h.must(201, h.do("POST", "/v1/products", h.admin, map[string]any{"name": name, "distribution": dist}))["product_id"].(string)
}

// upload stores bytes as a MANAGED artifact and returns its id.
func (h *harness) upload(data []byte) string {
	h.t.Helper()
	r := h.raw("POST", "/v1/artifacts", h.admin, "application/octet-stream", bytes.NewReader(data), nil)
	return h.must(201, r)["artifact_id"].(string)
}

// release creates a release with one linux/x64 artifact of data.
func (h *harness) release(productID, channel, version string, data []byte) (releaseID, artifactID string) {
	h.t.Helper()
	releaseID = h.must(201, h.do("POST", "/v1/products/"+productID+"/releases", h.admin, map[string]any{"channel": channel, "version": version}))["release_id"].(string)
	artifactID = h.upload(data)
	h.must(201, h.do("POST", "/v1/releases/"+releaseID+"/artifacts", h.admin, map[string]any{
		"artifact_id": artifactID, "platform": "linux", "arch": "x64", "installer_type": "tar.gz"}))
	return releaseID, artifactID
}

// enableTUF turns on TUF publishing with a 1-of-1 online root: the
// builds after it publish each tenant's repository (bundles need it).
func (h *harness) enableTUF() {
	h.t.Helper()
	d := tufkeys.Dir(filepath.Join(h.dir, "tuf"))
	if _, err := d.Init(1, 1, ""); err != nil {
		h.t.Fatal(err)
	}
	if err := h.app.EnableTUF(controlplane.TUFOptions{Keys: d}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) snapshot(tenantID string) map[string]any {
	h.t.Helper()
	return h.must(201, h.do("POST", "/v1/tenants/"+tenantID+"/snapshots", h.admin, nil))
}

func (h *harness) auditCount() int {
	h.t.Helper()
	n := 0
	if err := h.db.WalkAudit(context.Background(), func(*catalog.AuditEvent) error { n++; return nil }); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func newLocalServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// operator is a context acting as an administrator at the console.
func (h *harness) operator() context.Context {
	return controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
}
