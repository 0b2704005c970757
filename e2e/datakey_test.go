package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
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
	key := cp.vendorKey()
	m := newMirror(t, tl, "site", mirrorConfig{tenant: tenant, trustedKey: key, source: "none"})
	_, cred := cp.registerMirror(tenant, "site", m.publicKey)
	m.configure(mirrorConfig{tenant: tenant, trustedKey: key, source: "controlplane", vendorURL: cp.url, credential: cred})
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
