package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2E_BundleDeltas (real binaries): the control plane's delta worker
// builds the delta of a new release; `bundle export --since` carries it
// instead of the artifact and says what it saved; an air-gapped mirror
// that holds the base imports the small bundle, rebuilding the artifact,
// and updatectl downloads the exact new bytes from it. `--no-deltas`
// carries the artifact whole.
func TestE2E_BundleDeltas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.env = append(cp.env, "OUTPOST_DELTAS_PREVIOUS=3") // the last value wins
	cp.serve()
	files := t.TempDir()

	tenant := cp.cli("tenant", "create", "Acme Corp")
	product := cp.cli("product", "create", "Outpost Demo", "--distribution", "open")
	file1, _ := randomFile(t, files, "demo-1.0.0.tar.gz", 1<<20)
	cp.release(product, "1.0.0", file1)
	_, seq1 := cp.snapshot(tenant)

	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "air-gapped", mirrorConfig{tenant: tenant, root: root, source: "none"})
	m.importBundle(cp.exportBundle(tenant, 0))
	if got := m.heldSequence(); got != seq1 {
		t.Fatalf("the mirror holds sequence %d, want %d", got, seq1)
	}

	v1, err := os.ReadFile(file1)
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(v1)
	copy(v2[300<<10:], "a one-line change in 1.1.0")
	file2 := filepath.Join(files, "demo-1.1.0.tar.gz")
	if err := os.WriteFile(file2, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(v2)
	sum2 := hex.EncodeToString(sum[:])
	rel2, _ := cp.release(product, "1.1.0", file2)
	state := ""
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var jobs struct {
			Items []struct {
				State string `json:"state"`
			} `json:"items"`
		}
		out := cp.cli("release", "deltas", rel2, "--output", "json")
		if err := json.Unmarshal([]byte(out), &jobs); err != nil {
			t.Fatalf("release deltas printed %q: %v", out, err)
		}
		if len(jobs.Items) == 1 {
			if state = jobs.Items[0].State; state != "pending" && state != "running" {
				break
			}
		}
	}
	if state != "done" {
		t.Fatalf("the delta of 1.1.0 is %q, want done", state)
	}
	cp.snapshot(tenant)

	export := func(name string, args ...string) (string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), name)
		printed := cp.cli(append([]string{"bundle", "export", "--tenant", tenant, "--since", jsonInt(seq1), "--out", out}, args...)...)
		return out, printed
	}
	small, printed := export("since.tar")
	fi, err := os.Stat(small)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(printed, "1 as deltas") || !strings.Contains(printed, "deltas saved") || fi.Size() > int64(len(v2))/10 {
		t.Fatalf("export printed %q for a %d-byte bundle; want one delta, what it saved, and a small bundle", printed, fi.Size())
	}
	whole, printed := export("whole.tar", "--no-deltas")
	if wi, err := os.Stat(whole); err != nil || wi.Size() < int64(len(v2)) || strings.Contains(printed, "deltas") {
		t.Fatalf("--no-deltas printed %q (%v): want the artifact whole", printed, err)
	}

	r := m.cmd("import", small)
	if r.code != 0 || !strings.Contains(r.stdout, "1 of them rebuilt from a delta") {
		t.Fatalf("import: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	m.serve()
	path := tl.download(t, m.url, tenant, root, t.TempDir(), updateQuery{product: product, version: "1.0.0"})
	if got := fileSHA256(t, path); got != sum2 {
		t.Fatalf("downloaded sha256 %s, want 1.1.0's %s", got, sum2)
	}
}
