package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/testenv"
)

// TestDataKeyRotation_MirrorSyncsAcrossIt rotates a control plane's
// data-encryption key (daemon stopped, the embedded store) between two
// syncs of a real mirror: the mirror's credential, sealed with the key,
// keeps working, and the webhook secret sealed with it still opens.
func TestDataKeyRotation_MirrorSyncsAcrossIt(t *testing.T) {
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	tenant := cp.cli("tenant", "create", "Acme Corp")
	product := cp.cli("product", "create", "Acme App", "--distribution", "open")
	file, _ := randomFile(t, t.TempDir(), "acme-1.0.0.tar.gz", 64<<10)
	cp.release(product, "1.0.0", file)
	cp.snapshot(tenant)
	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "site", mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, cred := cp.registerMirror(tenant, "site", m.publicKey)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	var hook struct {
		ID string `json:"id"`
	}
	cp.api("POST", "/v1/webhooks", cp.admin, map[string]any{"url": "https://hooks.example/outpost", "event_types": []string{"release.published"}}, &hook, http.StatusCreated)
	if r := m.cmd("sync", "--once"); r.code != 0 {
		t.Fatalf("sync before the rotation: exit %d: %s", r.code, r.stderr)
	}
	if seq := m.heldSequence(); seq != 1 {
		t.Fatalf("the mirror holds sequence %d before the rotation, want 1", seq)
	}

	cp.stop()
	keyFile := filepath.Join(cp.dir, "data-encryption.key")
	before, _ := os.ReadFile(keyFile)
	var r struct {
		KeyID    string `json:"data_key_id"`
		Resealed int    `json:"resealed"`
	}
	out := mustRun(t, cp.env, tl.controlplane, "keys", "rotate-data-key", "--data-dir", cp.dir, "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("rotate-data-key printed %q: %v", out, err)
	}
	// The mirror's credential, the webhook secret and the remembered
	// answers of the POSTs above (the API remembers idempotent ones).
	if r.Resealed < 2 || r.KeyID == "" {
		t.Fatalf("rotation %+v, want at least the credential and the webhook secret re-sealed", r)
	}
	after, _ := os.ReadFile(keyFile)
	if bytes.Equal(before, after) || len(after) != 32 {
		t.Fatal("the data-encryption key file did not change")
	}

	cp.serve()
	cp.release(product, "1.1.0", file)
	cp.snapshot(tenant)
	if r := m.cmd("sync", "--once"); r.code != 0 {
		t.Fatalf("sync after the rotation: exit %d: %s", r.code, r.stderr)
	}
	if seq := m.heldSequence(); seq != 2 {
		t.Fatalf("the mirror holds sequence %d after the rotation, want 2", seq)
	}
	// The webhook's secret opens with the new key: listing the
	// subscriptions opens every secret (and fails on one that does not).
	var hooks struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/webhooks", cp.admin, nil, &hooks, http.StatusOK)
	if len(hooks.Items) != 1 || hooks.Items[0].ID != hook.ID {
		t.Fatalf("webhooks after the rotation: %+v, want %s", hooks.Items, hook.ID)
	}
}

// TestDataKeyRotation_TwoInstancesWhileServing rotates the data key on
// one of two serving instances on PostgreSQL: both switch to the new key
// without a restart (the webhook secret, re-sealed with it, opens on
// both).
func TestDataKeyRotation_TwoInstancesWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons")
	}
	tl := buildTools(t)
	shared := t.TempDir()
	kek := filepath.Join(shared, "kek")
	if err := os.WriteFile(kek, []byte(randHex(32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgSchemaURL(t),
		"OUTPOST_KEY_ENCRYPTION_KEY_FILE=" + kek, "OUTPOST_KEY_SYNC_INTERVAL=1s",
		"OUTPOST_BLOB_DIR=" + filepath.Join(shared, "blobs")}
	cpA := newControlPlaneEnv(t, tl, "", env...)
	cpB := &controlPlane{t: t, tools: tl, dir: t.TempDir(), addr: testenv.FreePort(t), env: cpA.env, admin: cpA.admin}
	cpB.url = "http://" + cpB.addr
	mustRun(t, cpB.env, tl.controlplane, "init", "--join", "--data-dir", cpB.dir)
	cpA.serveLog("a")
	cpB.serveLog("b")
	var hook struct {
		ID string `json:"id"`
	}
	cpB.api("POST", "/v1/webhooks", cpB.admin, map[string]any{"url": "https://hooks.example/outpost", "event_types": []string{"release.published"}}, &hook, http.StatusCreated)

	mustRun(t, cpA.env, tl.controlplane, "keys", "rotate-data-key", "--data-dir", cpA.dir)
	// Each instance opens the re-sealed secret once it holds the new key:
	// A from its own files, B from the database, both at their next sync.
	for _, cp := range []*controlPlane{cpA, cpB} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body, err := call(context.Background(), http.DefaultClient, "GET", cp.url+"/v1/webhooks", cp.admin, nil, nil)
			if err == nil && code == http.StatusOK && strings.Contains(string(body), hook.ID) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET /v1/webhooks = %d %s (%v) 30s after the rotation (key_sync_interval 1s)", cp.dir, code, body, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	a, _ := os.ReadFile(filepath.Join(cpA.dir, "data-encryption.key"))
	b, _ := os.ReadFile(filepath.Join(cpB.dir, "data-encryption.key"))
	if !bytes.Equal(a, b) {
		t.Fatal("the instances hold different data-encryption keys after the rotation")
	}
}
