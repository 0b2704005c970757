package tuf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// TestInterop_GoTUFUpdater has the unmodified go-tuf v2 updater,
// initialised with the tenant's root, refresh from a loopback server
// serving the generated repository (consistent snapshots) and download
// and verify an artifact and a document, across a root rotation and a
// new release.
func TestInterop_GoTUFUpdater(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 30, 1)
	// Give one artifact real bytes.
	installer := bytes.Repeat([]byte("outpost installer "), 1000)
	sum := sha256.Sum256(installer)
	rel := &m.Releases[len(m.Releases)-1]
	ra := rel.Artifacts[0]
	for i := range m.Artifacts {
		if m.Artifacts[i].ArtifactID == ra.ArtifactID {
			m.Artifacts[i].SHA256, m.Artifacts[i].SizeBytes = hex.EncodeToString(sum[:]), int64(len(installer))
		}
	}
	target := ArtifactTarget(rel.ProductID, ra.ReleaseArtifactID)
	f.build(m)
	f.repo.set(TargetPath(target, hex.EncodeToString(sum[:])), installer)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := f.repo.get(strings.TrimPrefix(r.URL.Path, "/"))
		if b == nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("server on %s, want loopback", srv.URL)
	}
	dir := t.TempDir()
	initialRoot := f.rootData

	refresh := func(t *testing.T) *updater.Updater {
		t.Helper()
		cfg, err := config.New(srv.URL+"/metadata", initialRoot)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RemoteTargetsURL = srv.URL + "/targets"
		cfg.LocalMetadataDir = filepath.Join(dir, "metadata")
		cfg.LocalTargetsDir = filepath.Join(dir, "targets")
		u, err := updater.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		u.UnsafeSetRefTime(f.now)
		if err := u.Refresh(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return u
	}
	download := func(t *testing.T, u *updater.Updater, path string) []byte {
		t.Helper()
		info, err := u.GetTargetInfo(path)
		if err != nil {
			t.Fatalf("target info %s: %v", path, err)
		}
		_, data, err := u.DownloadTarget(info, filepath.Join(dir, "dl-"+strings.ReplaceAll(path, "/", "_")), "")
		if err != nil {
			t.Fatalf("download %s: %v", path, err)
		}
		return data
	}

	t.Run("artifact and document", func(t *testing.T) {
		u := refresh(t)
		if got := download(t, u, target); !bytes.Equal(got, installer) {
			t.Fatalf("artifact: got %d bytes, want the installer", len(got))
		}
		if got := download(t, u, DocPolicies); !bytes.Contains(got, []byte(m.Policies[0].PolicyID)) {
			t.Fatalf("policies document: got %.100s", got)
		}
	})
	t.Run("after a root rotation and a new release", func(t *testing.T) {
		ts := testSigner(t, 77)
		next, err := NextRoot(f.root, f.rootSpec(ts))
		if err != nil {
			t.Fatal(err)
		}
		f.publishRoot(next, f.root, f.rootKeys[1], f.rootKeys[2])
		f.builder.Keys.Timestamp = []Signer{ts}
		addRelease(m, 0, 1)
		f.build(m)
		u := refresh(t)
		if v := u.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
			t.Fatalf("root version %d, want 2", v)
		}
		info, err := u.GetTargetInfo(ArtifactTarget(m.Products[0].ProductID, "ra_new001"))
		if err != nil {
			t.Fatalf("new release's target: %v", err)
		}
		if info.Length != 42 {
			t.Fatalf("new target length %d, want 42", info.Length)
		}
		if got := download(t, u, target); !bytes.Equal(got, installer) {
			t.Fatal("artifact changed")
		}
	})
	t.Run("tampered artifact refused", func(t *testing.T) {
		evil := bytes.Clone(installer)
		evil[0] ^= 1
		f.repo.set(TargetPath(target, hex.EncodeToString(sum[:])), evil)
		defer f.repo.set(TargetPath(target, hex.EncodeToString(sum[:])), installer)
		u := refresh(t)
		info, err := u.GetTargetInfo(target)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.DownloadTarget(info, filepath.Join(dir, "evil"), ""); err == nil {
			t.Fatal("go-tuf accepted tampered artifact bytes")
		}
	})
}
