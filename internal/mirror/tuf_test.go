package mirror_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// tufSite is a vendor repository served by tufhttp on 127.0.0.1 and a
// real Mirror in TUF mode syncing from it (as an upstream /tuf/).
type tufSite struct {
	v     *tuftest.Vendor
	m     *snapshot.Manifest
	up    *httptest.Server
	mir   *mirror.Mirror
	base  string
	dir   string
	close func()
}

func newTUFSite(t *testing.T) *tufSite {
	t.Helper()
	s := &tufSite{dir: t.TempDir()}
	s.v, s.m = publishedView(t, 2, 3, 1)
	s.up = httptest.NewServer(tufhttp.New(s.v.Repo, tufhttp.Options{}))
	t.Cleanup(s.up.Close)
	s.start(t)
	return s
}

// start opens and runs the Mirror on its data directory (again after a
// stop: a restart).
func (s *tufSite) start(t *testing.T) {
	t.Helper()
	src, err := sync.NewUpstream(s.up.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.mir, err = mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(s.dir, "mirror.db"), DataDir: s.dir, Listen: "127.0.0.1:0",
		Source: src, Sync: sync.Config{TUF: &sync.TUFTrust{TenantID: s.v.TenantID, Root: s.v.RootData}, MaxElapsed: time.Second},
		SyncInterval: time.Hour, ShutdownTimeout: time.Second, Updates: realUpdates, TenantID: s.v.TenantID,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.mir.Run(ctx) }()
	s.base = "http://" + s.mir.Addr().String()
	stopped := false
	s.close = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = s.mir.Close(context.Background())
	}
	t.Cleanup(s.close)
	waitFor(t, "the first sync", func() bool {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (s *tufSite) sync(t *testing.T) {
	t.Helper()
	if _, err := s.mir.Syncer().Once(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// check asks the mirror's update check and returns the answer's target.
func (s *tufSite) check(t *testing.T, product, version string) (target string, sha string) {
	t.Helper()
	resp, err := http.Get(s.base + "/v1/updates/check?product=" + product + "&channel=stable&platform=linux&arch=x64&version=" + version)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a struct {
		UpdateAvailable bool `json:"update_available"`
		Artifact        struct {
			SHA256 string `json:"sha256"`
			Target string `json:"target"`
		} `json:"artifact"`
	}
	if err := json.Unmarshal(body, &a); err != nil || !a.UpdateAvailable || a.Artifact.Target == "" {
		t.Fatalf("update check: %s (%v)", body, err)
	}
	return a.Artifact.Target, a.Artifact.SHA256
}

// goTUF refreshes the unmodified go-tuf v2 updater through the mirror,
// keeping its state in dir, and downloads target.
func goTUF(t *testing.T, s *tufSite, dir, target string) ([]byte, error) {
	t.Helper()
	cfg, err := config.New(s.base+"/tuf/metadata", s.v.RootData)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = s.base + "/tuf/targets"
	cfg.LocalMetadataDir = filepath.Join(dir, "metadata")
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	u, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := u.Refresh(); err != nil {
		return nil, err
	}
	info, err := u.GetTargetInfo(target)
	if err != nil {
		return nil, err
	}
	_, data, err := u.DownloadTarget(info, filepath.Join(dir, "dl-"+strings.ReplaceAll(target, "/", "_")), "")
	return data, err
}

// tufJS runs the unmodified tuf-js updater (interop/tufjs) through the
// mirror; it skips without node or the module, except under CI=true.
func tufJS(t *testing.T, s *tufSite, dir, target string) ([]byte, error) {
	t.Helper()
	js, err := filepath.Abs(filepath.Join("..", "..", "interop", "tufjs"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(js, "node_modules", "tuf-js", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tuf-js interop needs node and interop/tufjs/node_modules (scripts/ci-deps.sh): %v", err)
		}
		t.Skipf("node or tuf-js missing (run scripts/ci-deps.sh): %v", err)
	}
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, s.v.RootData, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out-"+strings.ReplaceAll(target, "/", "_"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(js, "client.mjs"),
		"--root", root, "--metadata-url", s.base+"/tuf/metadata", "--targets-url", s.base+"/tuf/targets",
		"--dir", filepath.Join(dir, "state"), "--target", target, "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}

// TestMirror_TUFInterop: unmodified go-tuf and tuf-js clients, each
// initialised with the tenant's root, refresh through a real Mirror that
// syncs from a tufhttp-served repository, and download and verify the
// target the mirror's update check named; then again after a root
// rotation (new timestamp key) and a new release.
func TestMirror_TUFInterop(t *testing.T) {
	clients := map[string]func(*testing.T, *tufSite, string, string) ([]byte, error){"go-tuf": goTUF, "tuf-js": tufJS}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			s := newTUFSite(t)
			dir := t.TempDir()
			pid := s.m.Products[0].ProductID
			target, sum := s.check(t, pid, "0.0.1")
			data, err := client(t, s, dir, target)
			if err != nil {
				t.Fatalf("%s through the mirror: %v", name, err)
			}
			if sumOf(data) != sum {
				t.Fatalf("downloaded %d bytes with sha256 %s, the answer said %s", len(data), sumOf(data), sum)
			}

			s.v.Now = s.v.Now.Add(time.Second)
			s.v.RotateTimestampKey(90)
			rel, newData := tuftest.AddRelease(s.m, 0, 1, "9.0.1")
			s.v.Build(s.m)
			s.v.PublishArtifacts(s.m, map[string][]byte{sumOf(newData): newData})
			s.sync(t)
			target, sum = s.check(t, pid, "1.0.0")
			if want := tuf.ArtifactTarget(pid, rel.Artifacts[0].ReleaseArtifactID); target != want {
				t.Fatalf("answer target %s, want %s", target, want)
			}
			data, err = client(t, s, dir, target)
			if err != nil {
				t.Fatalf("%s after a rotation and a release: %v", name, err)
			}
			if !bytes.Equal(data, newData) || sumOf(data) != sum {
				t.Fatalf("downloaded %d bytes, want the new release's %d", len(data), len(newData))
			}
		})
	}
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// publishedView is a vendor repository holding tuftest.View(products,
// releases, artifacts) with its artifacts' bytes published.
func publishedView(t *testing.T, products, releases, artifacts int) (*tuftest.Vendor, *snapshot.Manifest) {
	t.Helper()
	v := tuftest.NewVendor(t, "", 0)
	m := tuftest.View(products, releases, artifacts)
	blobs := tuftest.WithBytes(m)
	v.Build(m)
	v.PublishArtifacts(m, blobs)
	return v, m
}

// syncedState is a mirror's state and cache in a temporary directory,
// synced once from v's repository served on loopback, and the syncer.
func syncedState(t *testing.T, v *tuftest.Vendor) (*state.State, *cache.Cache, *sync.Syncer) {
	t.Helper()
	up := httptest.NewServer(tufhttp.New(v.Repo, tufhttp.Options{}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sync.NewUpstream(up.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	syncer := sync.New(src, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.RootData}})
	if _, err := syncer.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, c, syncer
}

// TestServer_TUFExpiredRule: past the timestamp's expiry the mirror keeps
// serving the signed metadata at /tuf/ (clients refuse it by its expiry)
// while /v1/updates/check follows serve_expired (503 by default).
func TestServer_TUFExpiredRule(t *testing.T) {
	v, m := publishedView(t, 1, 2, 1)
	st, c, _ := syncedState(t, v)
	later := func() time.Time { return time.Now().Add(48 * time.Hour) }
	for _, serveExpired := range []bool{false, true} {
		srv, err := mirror.NewServer(mirror.Options{State: st, Cache: c, Updates: realUpdates, Now: later, ServeExpired: serveExpired})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		get := func(path string) (int, []byte) {
			resp, err := http.Get(hs.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		code, body := get("/tuf/metadata/timestamp.json")
		if code != http.StatusOK || !bytes.Equal(body, v.Repo.Get("metadata/timestamp.json")) {
			t.Errorf("serve_expired %v: /tuf/ timestamp: %d, want 200 with the signed bytes", serveExpired, code)
		}
		code, _ = get("/v1/updates/check?product=" + m.Products[0].ProductID + "&channel=stable&platform=linux&arch=x64&version=0.0.1")
		if want := map[bool]int{false: http.StatusServiceUnavailable, true: http.StatusOK}[serveExpired]; code != want {
			t.Errorf("serve_expired %v: update check %d, want %d", serveExpired, code, want)
		}
		hs.Close()
	}
}

// TestServer_TUFTimestampFollowsView: a commit lands in mirror.db before
// the server's view swaps in (Reload). In between, /tuf/ must still
// announce the version whose artifacts the view serves: a client told of
// the new one would be refused an artifact it lists (a crash test saw
// that 404).
func TestServer_TUFTimestampFollowsView(t *testing.T) {
	v, m := publishedView(t, 1, 2, 1)
	st, c, syncer := syncedState(t, v)
	srv, err := mirror.NewServer(mirror.Options{State: st, Cache: c, Updates: realUpdates})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	timestamp := func() []byte {
		resp, err := http.Get(hs.URL + "/tuf/metadata/timestamp.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("timestamp: %d %s", resp.StatusCode, b)
		}
		return b
	}
	first := v.Repo.Get("metadata/timestamp.json")
	if got := timestamp(); !bytes.Equal(got, first) {
		t.Fatalf("before the second commit: served timestamp is not the vendor's")
	}

	v.Now = v.Now.Add(time.Second)
	_, newData := tuftest.AddRelease(m, 0, 1, "9.0.1")
	v.Build(m)
	v.PublishArtifacts(m, map[string][]byte{sumOf(newData): newData})
	if _, err := syncer.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := v.Repo.Get("metadata/timestamp.json")
	if bytes.Equal(first, second) {
		t.Fatal("the vendor's second build did not sign a new timestamp")
	}
	if got := timestamp(); !bytes.Equal(got, first) {
		t.Errorf("committed but not reloaded: served a timestamp that is not the first (the view's) one")
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := timestamp(); !bytes.Equal(got, second) {
		t.Errorf("after Reload: served timestamp is not the second one")
	}
}
