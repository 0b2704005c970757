package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMirror_ClonedDataDirIsCaught copies a mirror's data directory (which
// would double its offline seats) and runs both copies: the control plane
// accepts the chain of the first to upload and refuses the other's, whose
// authentic chain no longer extends the accepted head, recording
// mirror.fork_detected where the vendor sees it.
func TestMirror_ClonedDataDirIsCaught(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)
	tenant := cp.api(t, "POST", "/v1/tenants", map[string]any{"name": "acme"}, 201)["tenant_id"].(string)
	product := cp.api(t, "POST", "/v1/products", map[string]any{"name": "app", "distribution": "licensed"}, 201)["product_id"].(string)
	vendorKey := cp.api(t, "GET", "/v1/keys", nil, 200)["items"].([]any)[0].(map[string]any)["public_key"].(string)
	ent := cp.api(t, "POST", "/v1/tenants/"+tenant+"/entitlements", map[string]any{
		"product_id": product, "policy_json": map[string]any{"max_seats": 8},
		"starts_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	}, 201)["entitlement_id"].(string)

	dir := filepath.Join(t.TempDir(), "m1")
	initArgs := []string{"init", "--data-dir", dir, "--tenant-id", tenant, "--trusted-key", vendorKey, "--vendor-url", cp.url}
	var initOut map[string]string
	json.Unmarshal([]byte(mustRun(t, bin, append(initArgs, "--output", "json")...)), &initOut)
	reg := cp.api(t, "POST", "/v1/tenants/"+tenant+"/mirrors", map[string]any{"allowed_channels": []string{"stable"}, "public_key": initOut["public_key"]}, 201)
	mirrorID, credential := reg["mirror_id"].(string), reg["credential"].(string)
	mustRun(t, bin, append(initArgs, "--force", "--credential", credential)...)
	config := filepath.Join(dir, "mirror.yaml")
	f, _ := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("sync_interval: 1s\nlog_level: warn\n")
	f.Close()
	cp.api(t, "PATCH", "/v1/entitlements/"+ent, map[string]any{"policy_json": map[string]any{"max_seats": 8, "mirror_seats": map[string]int{mirrorID: 4}}}, 200)
	cp.api(t, "POST", "/v1/tenants/"+tenant+"/snapshots", map[string]any{}, 201)

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
