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
)

// vendor is a test vendor: a signing key, a tenant and a signed snapshot
// with one release whose artifact is payload.
type vendor struct {
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	tenantID string
	m        *snapshot.Manifest
	env      []byte
	payload  []byte

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
	v.env = v.sign(t, v.m, priv)
	return v
}

// sign signs m with key.
func (v *vendor) sign(t testing.TB, m *snapshot.Manifest, key ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := snapshot.Sign(m, []snapshot.Signer{{Key: key}})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return env
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
		Release:  &Release{ReleaseID: r.ReleaseID, ProductID: r.ProductID, Channel: r.Channel, Version: r.Version, PublishedAt: r.PublishedAt},
		Artifact: &Artifact{ArtifactID: a.ArtifactID, SHA256: a.SHA256, SizeBytes: a.SizeBytes, URL: "/v1/artifacts/" + a.ArtifactID + "/download", InstallerType: "zip"},
		Snapshot: &SnapshotRef{SnapshotID: v.m.SnapshotID, Sequence: v.m.Sequence},
	}
}

func (v *vendor) keys() map[string]ed25519.PublicKey {
	return map[string]ed25519.PublicKey{KeyID(v.pub): v.pub}
}

// options for a client that trusts the vendor, with fast retries.
func (v *vendor) options() []Option {
	return []Option{WithTrustedKeys(v.keys()), WithTenant(v.tenantID), WithRetries(0, time.Millisecond)}
}

// server is a mirror under the test's control: honest by default, each
// field a way to lie.
type server struct {
	t        testing.TB
	mu       sync.Mutex
	decision Decision
	envelope []byte
	body     []byte
	// dropAfter > 0: the next artifact response ends after this many bytes.
	dropAfter int64
	// endless: the artifact response streams bytes forever.
	endless bool
	ranges  []string
	auth    []string
	queries []string
	// sent counts artifact bytes written (endless mode).
	sent int64
	srv  *httptest.Server
}

func newServer(t testing.TB, v *vendor) *server {
	s := &server{t: t, decision: v.decision(), envelope: v.env, body: v.payload}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/updates/check", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		d := s.decision
		s.mu.Unlock()
		writeJSONT(w, 200, d)
	})
	mux.HandleFunc("GET /v1/snapshots/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		env := s.envelope
		s.mu.Unlock()
		w.Write(env)
	})
	mux.HandleFunc("GET /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		env := s.envelope
		s.mu.Unlock()
		w.Write(env)
	})
	mux.HandleFunc("GET /v1/artifacts/{id}/download", s.serveArtifact)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	body, drop, endless := s.body, s.dropAfter, s.endless
	s.dropAfter = 0
	s.mu.Unlock()
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
