package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// lyingMirror serves the vendor's TUF repository at /tuf/ and whatever
// update answer it is told to give.
type lyingMirror struct {
	mu     gosync.Mutex
	answer []byte
}

func (l *lyingMirror) offer(t *testing.T, m *snapshot.Manifest, r *snapshot.Release) {
	t.Helper()
	ra := r.Artifacts[0]
	var a snapshot.Artifact
	for _, x := range m.Artifacts {
		if x.ArtifactID == ra.ArtifactID {
			a = x
		}
	}
	b, err := json.Marshal(map[string]any{
		"update_available": true, "action": "DOWNLOAD",
		"release": map[string]any{"release_id": r.ReleaseID, "product_id": r.ProductID, "channel": r.Channel, "version": r.Version, "published_at": r.PublishedAt},
		"artifact": map[string]any{"artifact_id": a.ArtifactID, "sha256": a.SHA256, "size_bytes": a.SizeBytes,
			"url": "/v1/artifacts/" + a.ArtifactID + "/download", "installer_type": ra.InstallerType, "requires_admin": false,
			"target": tuf.ArtifactTarget(r.ProductID, ra.ReleaseArtifactID)},
		"snapshot": map[string]any{"snapshot_id": "tuf-1", "sequence": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.answer = b
	l.mu.Unlock()
}

// TestUpdatectl_TUFLyingMirror: updatectl in TUF mode (--tuf-root)
// refuses, across runs that keep their trusted metadata in the state
// directory, a mirror offering another product's installer, an older
// version, a release revoked since, and replayed old metadata; each
// refusal is exit 3 with the field named, and nothing is written.
func TestUpdatectl_TUFLyingMirror(t *testing.T) {
	v := tuftest.NewVendor(t, "", 40)
	m := tuftest.View(2, 3, 1)
	blobs := tuftest.WithBytes(m)
	own, ownBytes := tuftest.AddRelease(m, 0, 1, "9.0.1")
	other, otherBytes := tuftest.AddRelease(m, 1, 2, "9.0.2")
	blobs[m.Artifacts[len(m.Artifacts)-2].SHA256] = ownBytes
	blobs[m.Artifacts[len(m.Artifacts)-1].SHA256] = otherBytes
	v.Build(m)
	v.PublishArtifacts(m, blobs)
	oldTimestamp := v.Repo.Get("metadata/timestamp.json")

	lm := &lyingMirror{}
	tufh := tufhttp.New(v.Repo, tufhttp.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tuf/") {
			tufh.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/v1/updates/check" {
			lm.mu.Lock()
			defer lm.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Write(lm.answer)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootFile, v.RootData, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	out := filepath.Join(dir, "out.bin")
	download := func(version string) (int, string) {
		t.Helper()
		os.Remove(out)
		code, _, stderr := run_(t, nil, "download", "--server", srv.URL, "--tenant", v.TenantID, "--tuf-root", rootFile,
			"--state-dir", state, "--no-report", "--product", own.ProductID, "--channel", "stable", "--platform", "linux", "--arch", "x64",
			"--version", version, "--out", out)
		return code, stderr
	}
	refused := func(t *testing.T, code int, stderr, field string) {
		t.Helper()
		if code != exitVerification {
			t.Fatalf("exit %d, want %d (verification); stderr: %s", code, exitVerification, stderr)
		}
		t.Logf("refused: %s", strings.TrimSpace(stderr))
		if !strings.Contains(stderr, field) {
			t.Errorf("stderr does not name %q: %s", field, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("something was written at --out after a refusal (%v)", err)
		}
		if _, err := os.Stat(out + ".part"); !os.IsNotExist(err) {
			t.Errorf("a partial file was left after a refusal (%v)", err)
		}
	}

	t.Run("honest", func(t *testing.T) {
		lm.offer(t, m, own)
		if code, stderr := download("1.0.0"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got, err := os.ReadFile(out)
		if err != nil || string(got) != string(ownBytes) {
			t.Fatalf("downloaded %d bytes (%v), want the release's %d", len(got), err, len(ownBytes))
		}
		fi, err := os.Stat(filepath.Join(state, "tuf", v.TenantID, "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("trusted timestamp mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("another product's installer", func(t *testing.T) {
		lm.offer(t, m, other)
		code, stderr := download("1.0.0")
		refused(t, code, stderr, "product")
	})
	t.Run("older version", func(t *testing.T) {
		lm.offer(t, m, own)
		code, stderr := download("9.5.0")
		refused(t, code, stderr, "release.version")
	})
	t.Run("revoked since", func(t *testing.T) {
		m.Releases[len(m.Releases)-2].Status = "REVOKED"
		v.Now = v.Now.Add(time.Second)
		v.Build(m)
		lm.offer(t, m, own)
		code, stderr := download("1.0.0")
		refused(t, code, stderr, "release.status")
	})
	t.Run("replayed old metadata", func(t *testing.T) {
		// The mirror replays the timestamp of when the release was
		// ACTIVE: the state kept by the previous run refuses it.
		v.Repo.Set("metadata/timestamp.json", oldTimestamp)
		m.Releases[len(m.Releases)-2].Status = "ACTIVE"
		lm.offer(t, m, own)
		code, stderr := download("1.0.0")
		refused(t, code, stderr, "timestamp")
	})
}
