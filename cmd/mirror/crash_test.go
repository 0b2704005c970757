package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func buildOnce(t *testing.T) string { return testenv.Binary(t, "./cmd/mirror") }

// daemon is one run of the real mirror binary.
type daemon struct {
	cmd  *exec.Cmd
	base string
	// tenant and root, from the config's tenant_id and root_file: check
	// verifies what the mirror serves from them.
	tenant string
	root   []byte
}

// trustConfig is the start of a mirror config of v's tenant in dir:
// data_dir, tenant_id and root_file (v's root, written into dir).
func trustConfig(t *testing.T, dir string, v *synctest.TUFVendor) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("data_dir: %q\ntenant_id: %q\nroot_file: %q\n", dir, v.TenantID, v.WriteRoot(t, dir))
}

func writeConfig(t *testing.T, dir string, v *synctest.TUFVendor, cp *synctest.TUFControlPlane) string {
	t.Helper()
	cfg := trustConfig(t, dir, v) + fmt.Sprintf(`source: controlplane
vendor_url: %q
credential: %q
sync_interval: 1s
retry_max_elapsed: 30s
concurrency: 3
log_level: warn
`, cp.URL, cp.Credential)
	path := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T, bin, config string) *daemon {
	t.Helper()
	addr := testenv.FreePort(t)
	cmd := exec.Command(bin, "serve", "--config", config, "--listen", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, base: "http://" + addr}
	d.tenant, d.root = configTrust(t, config)
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(d.base + "/healthz"); err == nil {
			resp.Body.Close()
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("mirror did not start listening")
	return nil
}

func (d *daemon) kill9() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

// configTrust reads tenant_id and the root at root_file from a config.
func configTrust(t *testing.T, config string) (string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var tenant, rootFile string
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch strings.TrimSpace(k) {
		case "tenant_id":
			tenant = v
		case "root_file":
			rootFile = v
		}
	}
	if rootFile == "" {
		return tenant, nil
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	return tenant, root
}

// httpFetcher is a tuf.Fetcher over the mirror's /tuf/.
type httpFetcher struct{ base string }

func (f httpFetcher) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+"/tuf/"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	return resp.Body, nil
}

// served is the manifest the mirror serves, verified as a TUF client
// does from the tenant's root (nil when it holds none yet).
func (d *daemon) served(t *testing.T) *snapshot.Manifest {
	t.Helper()
	resp, err := http.Get(d.base + "/tuf/metadata/timestamp.json")
	if err != nil {
		t.Fatalf("GET timestamp: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusServiceUnavailable {
		return nil
	}
	ctx := context.Background()
	store := tuf.NewMemStore()
	if err := tuf.Init(ctx, store, d.tenant, d.root); err != nil {
		t.Fatal(err)
	}
	c := tuf.NewClient(d.tenant, httpFetcher{d.base}, store, tuf.ClientOptions{})
	if _, err := c.Update(ctx); err != nil {
		t.Fatalf("TUF update from the mirror: %v", err)
	}
	m, err := c.Repository().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check asserts that whatever the daemon serves is one complete snapshot:
// every artifact it lists is served whole with the right hash. It returns
// the served sequence (the snapshot version; 0 when none yet).
func (d *daemon) check(t *testing.T) int64 {
	t.Helper()
	m := d.served(t)
	if m == nil {
		return 0
	}
	for _, a := range state.Needed(m, []string{"stable"}) {
		resp, err := http.Get(d.base + "/v1/artifacts/by-sha256/" + a.SHA256)
		if err != nil {
			t.Fatalf("GET artifact: %v", err)
		}
		h := sha256.New()
		n, _ := io.Copy(h, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 404 {
			// Fine only if a newer snapshot was committed meanwhile.
			if m2 := d.served(t); m2 != nil && m2.Sequence != m.Sequence {
				return m.Sequence
			}
		}
		if resp.StatusCode != 200 || n != a.SizeBytes || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
			t.Fatalf("snapshot %d: artifact %s served status %d, %d bytes, hash ok %v: a mix or a corrupt byte",
				m.Sequence, a.ArtifactID, resp.StatusCode, n, hex.EncodeToString(h.Sum(nil)) == a.SHA256)
		}
	}
	return m.Sequence
}

func TestMirror_CrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the real binary")
	}
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	cp.ChunkDelay = 40 * time.Millisecond // about 0.8 MB/s per stream: a generation takes several runs
	dir := t.TempDir()
	config := writeConfig(t, dir, v, cp)

	mk := func(prefix string, n, size int) []synctest.Art {
		var out []synctest.Art
		for i := range n {
			out = append(out, synctest.Art{ID: fmt.Sprintf("art_%s%d", prefix, i), Data: synctest.Random(size)})
		}
		return out
	}
	gen1 := mk("a", 4, 384<<10)
	gen2 := mk("b", 4, 384<<10)
	// b0 is a1 with a change, and snapshot 2 signs a delta from a1 to b0:
	// a mirror holding a1 rebuilds b0 from it (kills land mid-rebuild too).
	gen2[0].Data = append(bytes.Clone(gen1[1].Data), "b0: a new version of a1"...)
	var dl bytes.Buffer
	if _, err := delta.Build(context.Background(), &dl, delta.Source{R: bytes.NewReader(gen1[1].Data), Size: int64(len(gen1[1].Data))},
		delta.Source{R: bytes.NewReader(gen2[0].Data), Size: int64(len(gen2[0].Data))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	gen2 = append(gen2, gen1[1:]...)
	gen2 = append(gen2, synctest.Art{ID: gen1[0].ID, Data: gen1[0].Data, Revoked: true})
	gen3 := append(mk("c", 3, 512<<10), gen2[:2]...)
	gen4 := append(mk("d", 4, 512<<10), gen3[0])
	gens := [][]synctest.Art{gen1, gen2, gen3, gen4}
	publish := func(seq int64) {
		m := v.Manifest(seq, gens[seq-1])
		if seq == 2 {
			m.Deltas = []snapshot.Delta{{DeltaID: "dlt_1", FromArtifactID: gen1[1].ID, ToArtifactID: gen2[0].ID,
				FromSHA256: synctest.SHA(gen1[1].Data), ToSHA256: synctest.SHA(gen2[0].Data), SHA256: synctest.SHA(dl.Bytes()), SizeBytes: int64(dl.Len())}}
			v.AddBlob(dl.Bytes())
		}
		if got := v.Publish(m); got != seq {
			t.Fatalf("published version %d, want %d", got, seq)
		}
	}

	published := int64(1)
	publish(1)
	var lastSeen int64
	kills, midSync := 0, 0
	for i := 0; i < 24; i++ {
		if i == 6 || i == 12 || i == 18 {
			published++
			publish(published)
		}
		d := startDaemon(t, bin, config)
		seq := d.check(t)
		if seq < lastSeen {
			t.Fatalf("run %d: serves sequence %d after having served %d", i, seq, lastSeen)
		}
		lastSeen = max(lastSeen, seq)
		deadline := time.Now().Add(time.Duration(rand.IntN(400)) * time.Millisecond)
		for time.Now().Before(deadline) {
			s := d.check(t)
			if s < lastSeen {
				t.Fatalf("run %d: went back to sequence %d from %d", i, s, lastSeen)
			}
			lastSeen = s
			time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		}
		d.kill9()
		kills++
		if parts, _ := filepath.Glob(filepath.Join(dir, "blobs", "tmp", "*.part")); len(parts) > 0 {
			midSync++
		}
	}

	// Converge: the last run finishes the sync and serves the newest.
	d := startDaemon(t, bin, config)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for d.check(t) != published {
		if ctx.Err() != nil {
			t.Fatalf("did not converge to sequence %d", published)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Everything it serves is whole, and the revoked artifact is gone.
	if resp, err := http.Get(d.base + "/v1/artifacts/" + gen1[0].ID); err != nil || resp.StatusCode != 404 {
		t.Errorf("revoked artifact still served: %v %v", resp.StatusCode, err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("graceful shutdown: %v", err)
	}
	// stdout only: stderr has the log.
	vc := exec.Command(bin, "verify", "--config", config, "--output", "json")
	var verr strings.Builder
	vc.Stderr = &verr
	out, err := vc.Output()
	if err != nil {
		t.Errorf("mirror verify after %d kills: %v\n%s%s", kills, err, out, verr.String())
	}
	var rep struct {
		Checked     int      `json:"checked"`
		Quarantined []string `json:"quarantined"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Quarantined) != 0 || rep.Checked == 0 {
		t.Errorf("verify report = %s (%v)", out, err)
	}
	if midSync < 3 {
		t.Errorf("only %d of %d kills landed mid-download; the test is not exercising crashes", midSync, kills)
	}
	t.Logf("%d kills (%d mid-download); converged to sequence %d; delta requested %d times", kills, midSync, published, cp.Requests(synctest.SHA(dl.Bytes())))
}
