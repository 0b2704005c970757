package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestConfig_ShippedExampleLoads loads configs/mirror.yaml with the real
// binary (an unknown key or an invalid value fails the load) and checks
// that it documents the security and fleet keys.
func TestConfig_ShippedExampleLoads(t *testing.T) {
	bin := buildOnce(t)
	path := filepath.Join(testenv.RepoRoot(t), "configs", "mirror.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"tls_cert_file:", "tls_key_file:", "tls_reload_interval:", "tls_client_auth:", "tls_client_ca_file:",
		"ca_file:", "tls_client_cert_file:", "tls_client_key_file:", "events:", "window:", "max_aggregates:", "max_batch_bytes:",
		"max_batch_events:", "body_timeout:", "rate_limit:", "leases:", "rate:", "burst:", "max_clients:"} {
		if !strings.Contains(string(raw), "\n"+key) && !strings.Contains(string(raw), " "+key) {
			t.Errorf("configs/mirror.yaml lacks %s", key)
		}
	}
	cmd := exec.Command(bin, "status", "--config", path, "--data-dir", t.TempDir(), "--output", "json")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mirror status with configs/mirror.yaml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"events"`) {
		t.Errorf("status output lacks the events part: %s", out)
	}
}
