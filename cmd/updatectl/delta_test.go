package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/client"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/snapshot"
)

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestUpdatectl_DownloadInstalled: download --installed fetches only the
// signed delta and rebuilds the artifact; a corrupted delta falls back to
// the whole artifact.
func TestUpdatectl_DownloadInstalled(t *testing.T) {
	f := newFixture(t)
	base := bytes.Clone(f.payload)
	copy(base[777:], "the version installed now")
	var dl bytes.Buffer
	if _, err := delta.Build(context.Background(), &dl, delta.Source{R: bytes.NewReader(base), Size: int64(len(base))},
		delta.Source{R: bytes.NewReader(f.payload), Size: int64(len(f.payload))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	good := dl.Bytes()
	baseArt := catalog.NewID(catalog.PrefixArtifact)
	deltaID := catalog.NewID(catalog.PrefixDelta)
	to := f.m.Artifacts[0]
	f.m.Artifacts = append(f.m.Artifacts, snapshot.Artifact{ArtifactID: baseArt, SHA256: hexSum(base), SizeBytes: int64(len(base)), SourceType: "MANAGED"})
	// The base is an older release's artifact: the metadata lists a
	// delta only between artifacts it lists.
	older := f.m.Releases[0]
	older.ReleaseID, older.Version = catalog.NewID(catalog.PrefixRelease), "1.5.0"
	older.Artifacts = []snapshot.ReleaseArtifact{{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ArtifactID: baseArt, Platform: "linux", Arch: "x64", InstallerType: "zip"}}
	f.m.Releases = append(f.m.Releases, older)
	f.m.Deltas = []snapshot.Delta{{DeltaID: deltaID, FromArtifactID: baseArt, ToArtifactID: to.ArtifactID, FromSHA256: hexSum(base),
		ToSHA256: to.SHA256, SHA256: hexSum(good), SizeBytes: int64(len(good))}}
	f.decision.Delta = &client.DeltaOffer{DeltaID: deltaID, FromSHA256: hexSum(base), ToSHA256: to.SHA256, SHA256: hexSum(good),
		SizeBytes: int64(len(good)), URL: "/v1/deltas/" + deltaID + "/download"}
	f.publish(t)
	served := good
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("GET /v1/deltas/{id}/download", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b := served
		f.mu.Unlock()
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
	installed := filepath.Join(t.TempDir(), "installed.zip")
	if err := os.WriteFile(installed, base, 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 1
	cases := []struct {
		name     string
		served   []byte
		used     bool
		transfer int64
		stderr   string
	}{
		{"the signed delta", good, true, int64(len(good)), ""},
		{"a corrupted delta falls back to the whole artifact (both transfers counted)", corrupt, false, int64(len(corrupt) + len(f.payload)), "delta not used"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.mu.Lock()
			served = c.served
			f.mu.Unlock()
			out := filepath.Join(t.TempDir(), "new.zip")
			code, stdout, stderr := run_(t, nil, "download", "--server", f.srv.URL, "--out", out, "-o", "json",
				"--tuf-root", f.rootFile, "--tenant", f.tenantID,
				"--product", f.prdID, "--platform", "linux", "--arch", "x64", "--version", "1.0.0", "--installed", installed)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, stdout, stderr)
			}
			var got struct {
				Used        bool  `json:"delta_used"`
				Transferred int64 `json:"transferred_bytes"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout %q: %v", stdout, err)
			}
			if got.Used != c.used || got.Transferred != c.transfer {
				t.Errorf("got used=%v transferred=%d, want %v %d (stderr %s)", got.Used, got.Transferred, c.used, c.transfer, stderr)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q, want %q", stderr, c.stderr)
			}
			if b, _ := os.ReadFile(out); !bytes.Equal(b, f.payload) {
				t.Errorf("%s does not hold the new artifact", out)
			}
		})
	}
}
