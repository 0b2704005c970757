package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMirror_ClonedDataDirIsCaught copies a mirror's data directory (which
// would double its offline seats) and runs both copies: the control plane
// accepts the chain of the first to upload and refuses the other's, whose
// authentic chain no longer extends the accepted head, recording
// mirror.fork_detected where the vendor sees it.
func TestMirror_ClonedDataDirIsCaught(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)
	lm := newLeasingMirror(t, bin, cp, 8, 4)
	tenant, ent, mirrorID, dir, config := lm.tenant, lm.ent, lm.mirrorID, lm.dir, lm.config

	// lease runs the mirror of config, takes a lease for subject, stops
	// it and uploads its chain; it returns the upload's error output.
	lease := func(config, subject string) (string, error) {
		t.Helper()
		d := startDaemon(t, bin, config)
		waitReady(t, d.base)
		if a := putLease(t, d.base, subject, ent); a.status != 200 {
			t.Fatalf("PUT %s = %d %s", subject, a.status, a.body)
		}
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		_, errs, err := run(bin, "audit", "upload", "--config", config, "--output", "json")
		return errs, err
	}
	if errs, err := lease(config, "s1"); err != nil {
		t.Fatalf("first upload: %v %s", err, errs)
	}

	// The clone: the whole data dir, its key and credential included.
	clone := filepath.Join(t.TempDir(), "m2")
	if out, err := exec.Command("cp", "-a", dir, clone).CombinedOutput(); err != nil {
		t.Fatalf("copy data dir: %v %s", err, out)
	}
	cloneConfig := filepath.Join(clone, "mirror.yaml")
	b, _ := os.ReadFile(cloneConfig)
	os.WriteFile(cloneConfig, []byte(strings.ReplaceAll(string(b), dir, clone)), 0o600)

	if errs, err := lease(config, "a1"); err != nil {
		t.Fatalf("original's upload: %v %s", err, errs)
	}
	errs, err := lease(cloneConfig, "b1")
	if err == nil || !strings.Contains(errs, "fork") {
		t.Fatalf("clone's upload: err %v, stderr %q; want it refused as a fork", err, errs)
	}

	out := cp.api(t, "GET", "/v1/audit-events?tenant_id="+tenant+"&event_type=mirror.fork_detected", nil, 200)
	items := out["items"].([]any)
	if len(items) == 0 {
		t.Fatal("no mirror.fork_detected event visible through the API")
	}
	if p := fmt.Sprint(items[0].(map[string]any)["payload"]); !strings.Contains(p, mirrorID) {
		t.Errorf("fork event payload %s does not name mirror %s", p, mirrorID)
	}
	got := cp.mirrorEvents(t, tenant)
	if got["mirror.lease.issued"] != 2 {
		t.Errorf("ingested mirror.lease.issued = %d, want 2 (s1, a1; not the clone's b1): %v", got["mirror.lease.issued"], got)
	}
}
