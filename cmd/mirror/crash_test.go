package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
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
)

func TestMain(m *testing.M) { testenv.Main(m) }

func buildOnce(t *testing.T) string { return testenv.Binary(t, "./cmd/mirror") }

// daemon is one run of the real mirror binary.
type daemon struct {
	cmd  *exec.Cmd
	base string
}

func writeConfig(t *testing.T, dir string, v *synctest.Vendor, cp *synctest.ControlPlane) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %q
tenant_id: %q
trust: dsse
trusted_keys: [%q]
source: controlplane
vendor_url: %q
credential: %q
sync_interval: 1s
retry_max_elapsed: 30s
concurrency: 3
log_level: warn
`, dir, v.TenantID, base64.StdEncoding.EncodeToString(v.Pub), cp.URL, cp.Credential)
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

// check asserts that whatever the daemon serves is one complete snapshot:
// every artifact it lists is served whole with the right hash. It returns
// the served sequence (0 when none yet).
func (d *daemon) check(t *testing.T) int64 {
	t.Helper()
	resp, err := http.Get(d.base + "/v1/snapshot")
	if err != nil {
		t.Fatalf("GET /v1/snapshot: %v", err)
	}
	env, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/snapshot = %d", resp.StatusCode)
	}
	m, err := state.DecodeManifest(env)
	if err != nil {
		t.Fatal(err)
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
			if r2, err := http.Get(d.base + "/v1/snapshot"); err == nil {
				b, _ := io.ReadAll(r2.Body)
				r2.Body.Close()
				if string(b) != string(env) {
					return m.Sequence
				}
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
	v := synctest.NewVendor(t)
	cp := synctest.NewControlPlane(t)
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
		arts := gens[seq-1]
		blobs := map[string][]byte{}
		for _, a := range arts {
			blobs[a.ID] = a.Data
		}
		m := v.Manifest(seq, arts)
		if seq == 2 {
			m.Deltas = []snapshot.Delta{{DeltaID: "dlt_1", FromArtifactID: gen1[1].ID, ToArtifactID: gen2[0].ID,
				FromSHA256: synctest.SHA(gen1[1].Data), ToSHA256: synctest.SHA(gen2[0].Data), SHA256: synctest.SHA(dl.Bytes()), SizeBytes: int64(dl.Len())}}
			blobs["dlt_1"] = dl.Bytes()
		}
		cp.Publish(v.Sign(t, m), seq, blobs)
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
	// stdout only: stderr has the log (trust: dsse logs its deprecation).
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
	t.Logf("%d kills (%d mid-download); converged to sequence %d; delta requested %d times", kills, midSync, published, cp.Requests("dlt_1"))
}
