package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// vendor is a test vendor: a tenant's TUF repository holding one release
// whose artifact is payload, and the vendor's lease signing key.
type vendor struct {
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	tenantID string
	m        *snapshot.Manifest
	tv       *tuftest.Vendor
	payload  []byte
	// target is the artifact's consistent target path (under /tuf/).
	target string

	mirrorID  string
	mirrorKey ed25519.PrivateKey
	entID     string
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func newVendor(t testing.TB, size int) *vendor {
	t.Helper()
	pub, priv := newKey(t)
	mpub, mpriv := newKey(t)
	payload := make([]byte, size)
	rand.Read(payload)
	sum := sha256.Sum256(payload)
	now := time.Now().UTC().Truncate(time.Second)
	v := &vendor{
		key: priv, pub: pub, tenantID: catalog.NewID(catalog.PrefixTenant), payload: payload,
		mirrorID: catalog.NewID(catalog.PrefixMirror), mirrorKey: mpriv, entID: catalog.NewID(catalog.PrefixEntitlement),
	}
	prd := catalog.NewID(catalog.PrefixProduct)
	art := catalog.NewID(catalog.PrefixArtifact)
	policy := fmt.Sprintf(`{"max_seats":5,"lease_ttl":"24h","features":["pro"],"mirror_seats":{%q:2}}`, v.mirrorID)
	v.m = &snapshot.Manifest{
		Schema:     snapshot.Schema,
		SnapshotID: catalog.NewID(catalog.PrefixSnapshot),
		TenantID:   v.tenantID,
		Sequence:   3,
		CreatedAt:  now.Add(-time.Hour),
		ExpiresAt:  now.Add(30 * 24 * time.Hour),
		Tenant:     snapshot.Tenant{TenantID: v.tenantID, Name: "Acme", Status: "active", Metadata: json.RawMessage(`{}`)},
		Products:   []snapshot.Product{{ProductID: prd, Name: "App", Distribution: "licensed", Metadata: json.RawMessage(`{}`)}},
		Releases: []snapshot.Release{{
			ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: prd, Channel: "stable", Version: "1.2.0",
			PublishedAt: now.Add(-2 * time.Hour), Status: "ACTIVE", Metadata: json.RawMessage(`{}`),
			Artifacts: []snapshot.ReleaseArtifact{{
				ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ArtifactID: art,
				Platform: "linux", Arch: "x64", InstallerType: "zip",
			}},
		}},
		Artifacts:       []snapshot.Artifact{{ArtifactID: art, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(size), SourceType: "MANAGED"}},
		Policies:        []snapshot.Policy{},
		BlockedVersions: []snapshot.BlockedVersion{},
		Rollouts:        []snapshot.Rollout{},
		Entitlements: []snapshot.Entitlement{{
			EntitlementID: v.entID, ProductID: prd, Policy: json.RawMessage(policy), StartsAt: now.Add(-24 * time.Hour),
		}},
		SeatAssignments: []snapshot.SeatAssignment{},
		MirrorKeys:      []snapshot.MirrorKey{{MirrorID: v.mirrorID, PublicKey: base64.StdEncoding.EncodeToString(mpub)}},
	}
	v.tv = tuftest.NewVendor(t, v.tenantID, 0)
	v.publish(t, v.m)
	return v
}

// publish signs m as the repository's next version.
func (v *vendor) publish(t testing.TB, m *snapshot.Manifest) {
	t.Helper()
	v.tv.Now = time.Now().UTC().Truncate(time.Second)
	v.tv.Build(m)
	r, a := m.Releases[0], m.Artifacts[0]
	v.target = tuf.TargetPath(tuf.ArtifactTarget(r.ProductID, r.Artifacts[0].ReleaseArtifactID), a.SHA256)
}

// clone deep-copies the manifest through JSON.
func (v *vendor) clone(t testing.TB) *snapshot.Manifest {
	t.Helper()
	b, err := json.Marshal(v.m)
	if err != nil {
		t.Fatal(err)
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// decision is the honest answer for the vendor's snapshot.
func (v *vendor) decision() Decision {
	r, a := v.m.Releases[0], v.m.Artifacts[0]
	return Decision{
		UpdateAvailable: true, Action: ActionDownload,
		Release: &Release{ReleaseID: r.ReleaseID, ProductID: r.ProductID, Channel: r.Channel, Version: r.Version, PublishedAt: r.PublishedAt},
		Artifact: &Artifact{ArtifactID: a.ArtifactID, SHA256: a.SHA256, SizeBytes: a.SizeBytes, URL: "/v1/artifacts/" + a.ArtifactID + "/download", InstallerType: "zip",
			Target: tuf.ArtifactTarget(r.ProductID, r.Artifacts[0].ReleaseArtifactID)},
		Snapshot: &SnapshotRef{SnapshotID: v.m.SnapshotID, Sequence: v.m.Sequence},
	}
}

func (v *vendor) keys() map[string]ed25519.PublicKey {
	return map[string]ed25519.PublicKey{KeyID(v.pub): v.pub}
}

// options for a client that trusts the vendor (its root, a fresh state
// directory, its lease key), with fast retries.
func (v *vendor) options(t testing.TB) []Option {
	return []Option{WithTUF(v.tenantID, v.tv.RootData, t.TempDir()), WithTrustedKeys(v.keys()), WithTenant(v.tenantID), WithRetries(0, time.Millisecond)}
}

// server is a mirror under the test's control: honest by default, each
// field a way to lie.
type server struct {
	t        testing.TB
	mu       sync.Mutex
	decision Decision
	// repo is the TUF repository served at /tuf/metadata/.
	repo http.Handler
	body []byte
	// dropAfter > 0: the next artifact response ends after this many bytes.
	dropAfter int64
	// endless: the artifact response streams bytes forever.
	endless bool
	// chunked: the artifact response announces no length.
	chunked bool
	ranges  []string
	auth    []string
	queries []string
	// sent counts artifact bytes written (endless mode).
	sent int64
	srv  *httptest.Server
}

func newServer(t testing.TB, v *vendor) *server {
	s := &server{t: t, decision: v.decision(), repo: tufhttp.New(v.tv.Repo, tufhttp.Options{Prefix: "/tuf/"}), body: v.payload}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/updates/check", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		d := s.decision
		s.mu.Unlock()
		writeJSONT(w, 200, d)
	})
	// Metadata and documents from the repository; every artifact target
	// is the artifact's body (each way to lie included).
	mux.HandleFunc("GET /tuf/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tuf/targets/") && !strings.HasSuffix(r.URL.Path, ".json") {
			s.serveArtifact(w, r)
			return
		}
		s.mu.Lock()
		repo := s.repo
		s.mu.Unlock()
		repo.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	body, drop, endless, chunked := s.body, s.dropAfter, s.endless, s.chunked
	s.dropAfter = 0
	s.mu.Unlock()
	if chunked {
		w.(http.Flusher).Flush() // chunked, no Content-Length
		w.Write(body)
		return
	}
	if endless {
		buf := make([]byte, 32<<10)
		for {
			n, err := w.Write(buf)
			s.mu.Lock()
			s.sent += int64(n)
			s.mu.Unlock()
			if err != nil || r.Context().Err() != nil {
				return
			}
		}
	}
	if drop > 0 {
		// Announce everything, send part, then return: net/http closes the
		// connection because the body is short.
		start := int64(0)
		if rg := r.Header.Get("Range"); rg != "" {
			start, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)-int(start)))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(200)
		}
		w.Write(body[start : start+drop])
		w.(http.Flusher).Flush()
		if hj, ok := w.(http.Hijacker); ok {
			c, _, err := hj.Hijack()
			if err == nil {
				c.Close()
			}
		}
		return
	}
	w.Header().Set("ETag", `"`+hex.EncodeToString(sha256Sum(body))+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func writeJSONT(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *server) set(f func(s *server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}
