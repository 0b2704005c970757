package mirror_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/update"
)

func realUpdates(m *snapshot.Manifest) (http.Handler, error) {
	e, err := update.New(m)
	if err != nil {
		return nil, err
	}
	return update.Handler{Engine: e, Now: time.Now}, nil
}

// The mirror only caches and serves its channels, so its update check
// must never offer a release of another channel: the client would be sent
// to download an artifact the mirror answers 404 for.
func TestServer_UpdateCheckOnlyServedChannels(t *testing.T) {
	r := newRig(t)
	stable := synctest.Art{ID: "art_s", Data: []byte("stable bytes")}
	beta := synctest.Art{ID: "art_b", Channel: "beta", Data: []byte("beta bytes")}
	r.sync(t, 1, []synctest.Art{stable, beta}) // allowed channels: stable
	_, hs := r.server(t, mirror.Options{Updates: realUpdates})

	tests := []struct {
		channel       string
		wantAvailable bool
		wantArtifact  string
	}{
		{"stable", true, "art_s"},
		{"beta", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			resp, body := get(t, hs.URL+"/v1/updates/check?product=prd_1&channel="+tt.channel+"&platform=linux&arch=x64&version=0.0.1", nil)
			var got struct {
				UpdateAvailable bool `json:"update_available"`
				Artifact        *struct {
					ArtifactID string `json:"artifact_id"`
				} `json:"artifact"`
			}
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
			}
			if got.UpdateAvailable != tt.wantAvailable {
				t.Fatalf("update_available = %v, want %v (%d %s)", got.UpdateAvailable, tt.wantAvailable, resp.StatusCode, body)
			}
			if got.UpdateAvailable {
				if got.Artifact == nil || got.Artifact.ArtifactID != tt.wantArtifact {
					t.Fatalf("artifact = %+v, want %s", got.Artifact, tt.wantArtifact)
				}
				if resp, _ := get(t, hs.URL+"/v1/artifacts/"+tt.wantArtifact, nil); resp.StatusCode != 200 {
					t.Errorf("offered artifact answers %d, want 200", resp.StatusCode)
				}
			}
		})
	}
}

// With client_tokens set, every /v1/ route needs a token: the built-in
// ones, the licence leases, and unknown paths (no probing). healthz, readyz and metrics
// stay open on purpose: probes and Prometheus scrapers hold no client
// token, and they reveal no tenant data (liveness, the held sequence,
// byte counters).
func TestServer_ClientTokensOnEveryRoute(t *testing.T) {
	r := newRig(t)
	r.sync(t, 1, []synctest.Art{{ID: "art_a", Data: []byte("x")}})
	// The lease routes answer 503 (no mirror id yet) once past the check.
	leases := mirror.NewLeases(r.st, "", r.v.TenantID, func() (ed25519.PrivateKey, error) { return nil, errors.New("no key") })
	_, hs := r.server(t, mirror.Options{ClientTokens: []string{"t1"}, Updates: realUpdates, Leases: leases})
	sha := synctest.SHA([]byte("x"))
	tests := []struct {
		method, path string
		open         bool
	}{
		{"GET", "/healthz", true},
		{"GET", "/readyz", true},
		{"GET", "/metrics", true},
		{"GET", "/v1/snapshot", false},
		{"GET", "/v1/snapshots/snp_000001", false},
		{"GET", "/v1/artifacts/art_a", false},
		{"GET", "/v1/artifacts/art_a/download", false},
		{"GET", "/v1/artifacts/by-sha256/" + sha, false},
		{"HEAD", "/v1/artifacts/art_a", false},
		{"GET", "/v1/status", false},
		{"GET", "/v1/updates/check?product=prd_1&channel=stable&platform=linux&arch=x64&version=0.0.1", false},
		{"PUT", "/v1/leases/alice", false},
		{"DELETE", "/v1/leases/alice", false},
		{"GET", "/v1/no-such-route", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, hs.URL+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode == http.StatusUnauthorized; got == tt.open {
				t.Errorf("without a token: status %d, want open=%v", resp.StatusCode, tt.open)
			}
			req, _ = http.NewRequest(tt.method, hs.URL+tt.path, nil)
			req.Header.Set("Authorization", "Bearer t1")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("with the token: status 401")
			}
		})
	}
}
