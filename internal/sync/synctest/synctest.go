// Package synctest is test support for the mirror: a vendor key that signs
// manifests, and a fake control plane on loopback (httptest) serving the
// /v1/mirror/… endpoints with byte accounting and fault hooks.
package synctest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// Vendor signs snapshots for one tenant.
type Vendor struct {
	Signer   snapshot.Signer
	Pub      ed25519.PublicKey
	TenantID string

	mu   sync.Mutex
	hash map[int64]string // sequence -> envelope hash, for chaining
}

// NewVendor makes a fresh vendor key for tenant "ten_test".
func NewVendor(t testing.TB) *Vendor {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Vendor{Signer: snapshot.Signer{KeyID: snapshot.KeyID(pub), Key: priv}, Pub: pub, TenantID: "ten_test"}
}

// Trust pins this vendor.
func (v *Vendor) Trust() snapshot.Trust {
	return snapshot.Trust{Keys: map[string]ed25519.PublicKey{snapshot.KeyID(v.Pub): v.Pub}, Threshold: 1, TenantID: v.TenantID}
}

// Art is one artifact in a test snapshot: a release of its own.
type Art struct {
	ID      string
	Channel string // default "stable"
	Data    []byte
	Revoked bool
	// SizeBytes overrides len(Data) in the manifest when non-zero.
	SizeBytes int64
}

// SHA is the hex sha256 of b.
func SHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Manifest builds a valid manifest at seq holding arts.
func (v *Vendor) Manifest(seq int64, arts []Art) *snapshot.Manifest {
	return manifest(v.TenantID, seq, arts)
}

// manifest is a view of tenant at seq holding arts, each a release of
// product prd_1.
func manifest(tenant string, seq int64, arts []Art) *snapshot.Manifest {
	now := time.Now().UTC().Truncate(time.Second)
	obj := json.RawMessage(`{}`)
	m := &snapshot.Manifest{
		Schema: snapshot.Schema, SnapshotID: fmt.Sprintf("snp_%06d", seq), TenantID: tenant, Sequence: seq,
		CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour),
		Tenant:   snapshot.Tenant{TenantID: tenant, Name: "Acme", Status: "active", Metadata: obj},
		Products: []snapshot.Product{{ProductID: "prd_1", Name: "Widget", Distribution: "open", Metadata: obj}},
	}
	for i, a := range arts {
		ch := a.Channel
		if ch == "" {
			ch = "stable"
		}
		size := int64(len(a.Data))
		if a.SizeBytes != 0 {
			size = a.SizeBytes
		}
		r := snapshot.Release{
			ReleaseID: "rel_" + a.ID, ProductID: "prd_1", Channel: ch, Version: fmt.Sprintf("1.0.%d", i),
			PublishedAt: now.Add(-time.Hour), Status: "ACTIVE", Metadata: obj,
			Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_" + a.ID, ArtifactID: a.ID, Platform: "linux", Arch: "x64", InstallerType: "zip"}},
		}
		if a.Revoked {
			r.Status = "REVOKED"
			t := now.Add(-time.Minute)
			r.RevokedAt = &t
		}
		m.Releases = append(m.Releases, r)
		m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: a.ID, SHA256: SHA(a.Data), SizeBytes: size, SourceType: "MANAGED"})
	}
	sort.Slice(m.Releases, func(i, j int) bool { return m.Releases[i].ReleaseID < m.Releases[j].ReleaseID })
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].ArtifactID < m.Artifacts[j].ArtifactID })
	return m
}

// Sign signs m with the vendor key. An empty Previous is set to the hash
// of the envelope this vendor last signed at m.Sequence-1, so snapshots
// chain like the control plane's.
func (v *Vendor) Sign(t testing.TB, m *snapshot.Manifest) []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.hash == nil {
		v.hash = map[int64]string{}
	}
	if m.Previous == "" {
		m.Previous = v.hash[m.Sequence-1]
	}
	env, err := snapshot.Sign(m, []snapshot.Signer{v.Signer})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	v.hash[m.Sequence] = snapshot.Hash(env)
	return env
}

// SignAs signs m with another vendor's key but this vendor's chain.
func (v *Vendor) SignAs(t testing.TB, other *Vendor, m *snapshot.Manifest) []byte {
	v.mu.Lock()
	m.Previous = v.hash[m.Sequence-1]
	v.mu.Unlock()
	return other.Sign(t, m)
}

// ControlPlane is a fake control plane for mirror tests.
type ControlPlane struct {
	*httptest.Server
	Credential string

	mu       sync.Mutex
	env      []byte
	seq      int64
	blobs    map[string][]byte // artifact id -> bytes served
	channels []string
	served   map[string]int64
	requests map[string]int
	reports  []map[string]any
	// Fault, when set, may answer an artifact request itself (return true).
	Fault func(id string, w http.ResponseWriter, r *http.Request) bool
	// ChunkDelay slows artifact bodies: a pause after every 32 KiB.
	ChunkDelay time.Duration
}

// NewControlPlane starts a fake control plane with allowed channel
// "stable".
func NewControlPlane(t testing.TB) *ControlPlane {
	c := &ControlPlane{Credential: "mc_secret", blobs: map[string][]byte{}, channels: []string{"stable"},
		served: map[string]int64{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/mirror/snapshot", c.snapshot)
	mux.HandleFunc("GET /v1/mirror/artifacts/{id}", c.artifact)
	// Deltas are blobs too, published under their delta id.
	mux.HandleFunc("GET /v1/mirror/deltas/{id}", c.artifact)
	mux.HandleFunc("GET /v1/mirror/self", c.self)
	mux.HandleFunc("POST /v1/mirror/status", c.status)
	c.Server = httptest.NewServer(mux)
	t.Cleanup(c.Close)
	return c
}

// Publish makes env (at seq) the newest snapshot and adds blobs by id.
func (c *ControlPlane) Publish(env []byte, seq int64, blobs map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.env, c.seq = env, seq
	for id, b := range blobs {
		c.blobs[id] = b
	}
}

// SetChannels sets the mirror's allowed channels.
func (c *ControlPlane) SetChannels(ch []string) {
	c.mu.Lock()
	c.channels = ch
	c.mu.Unlock()
}

// Served is how many artifact body bytes were written for id.
func (c *ControlPlane) Served(id string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.served[id]
}

// Requests is how many requests were made for artifact id.
func (c *ControlPlane) Requests(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[id]
}

// Reports returns the status reports received.
func (c *ControlPlane) Reports() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.reports...)
}

func (c *ControlPlane) authed(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+c.Credential {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.EUNAUTHORIZED, "bad credential"))
		return false
	}
	return true
}

func (c *ControlPlane) snapshot(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	c.mu.Lock()
	env, seq := c.env, c.seq
	c.mu.Unlock()
	if env == nil {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.ENOTFOUND, "no snapshot"))
		return
	}
	if seq <= after {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(env)
}

func (c *ControlPlane) self(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"mirror_id": "mir_1", "tenant_id": "ten_test", "allowed_channels": c.channels, "status": "active"})
}

func (c *ControlPlane) status(w http.ResponseWriter, r *http.Request) {
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

// StallArtifact makes the artifact id stall: its answer announces 1 MiB,
// sends 1 KiB and then nothing until the request goes away. The channel
// gets a value each time a request reaches the stall.
func (c *ControlPlane) StallArtifact(id string) <-chan struct{} {
	stalled := make(chan struct{}, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Fault = func(got string, w http.ResponseWriter, r *http.Request) bool {
		if got != id {
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

func (c *ControlPlane) artifact(w http.ResponseWriter, r *http.Request) {
	if !c.authed(w, r) {
		return
	}
	id := r.PathValue("id")
	c.mu.Lock()
	c.requests[id]++
	b, ok := c.blobs[id]
	fault := c.Fault
	c.mu.Unlock()
	if fault != nil && fault(id, &Counter{ResponseWriter: w, cp: c, id: id}, r) {
		return
	}
	if !ok {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.ENOTFOUND, "no such artifact"))
		return
	}
	var body io.ReadSeeker = bytes.NewReader(b)
	if c.ChunkDelay > 0 {
		body = &slowReader{ReadSeeker: body, delay: c.ChunkDelay}
	}
	http.ServeContent(&Counter{ResponseWriter: w, cp: c, id: id}, r, "", time.Time{}, body)
}

// Counter counts body bytes written for an artifact.
type Counter struct {
	http.ResponseWriter
	cp *ControlPlane
	id string
}

func (c *Counter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.cp.mu.Lock()
	c.cp.served[c.id] += int64(n)
	c.cp.mu.Unlock()
	return n, err
}

// Flush flushes the underlying writer.
func (c *Counter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type slowReader struct {
	io.ReadSeeker
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	time.Sleep(s.delay)
	return s.ReadSeeker.Read(p)
}

// RangeStart parses "bytes=N-" (0 when absent).
func RangeStart(r *http.Request) int64 {
	v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
	return n
}

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
