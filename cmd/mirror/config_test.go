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
		"max_batch_events:", "body_timeout:", "write_timeout:", "stream_idle_timeout:", "rate_limit:", "leases:", "rate:", "burst:", "max_clients:", "trust:", "root_file:"} {
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

// TestConfig_TUFTrust: trust: tuf (the default) needs root_file
// (trusted_keys are then not required); a config with neither is refused
// naming root_file; a config with trusted_keys and no trust (written
// before TUF became the default) still runs schema 1 with one
// deprecation line; an unknown trust is refused, naming the key.
func TestConfig_TUFTrust(t *testing.T) {
	bin := buildOnce(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, []byte(`{"signed":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	key := `"` + strings.Repeat("A", 43) + `="`
	cases := []struct {
		name, extra, want string
		ok                bool
		deprecated        bool
	}{
		{"tuf with root_file", "trust: tuf\nroot_file: " + root + "\n", "", true, false},
		{"root_file alone is tuf", "root_file: " + root + "\n", "", true, false},
		{"tuf without root_file", "trust: tuf\n", "root_file", false, false},
		{"neither trust nor trusted_keys", "", "root_file", false, false},
		{"trusted_keys without trust: dsse, deprecated", "trusted_keys: [" + key + "]\n", "", true, true},
		{"trust: dsse, deprecated", "trust: dsse\ntrusted_keys: [" + key + "]\n", "", true, true},
		{"dsse without trusted_keys", "trust: dsse\n", "trusted_keys", false, false},
		{"unknown trust", "trust: pgp\nroot_file: " + root + "\n", "trust", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "mirror.yaml")
			body := "data_dir: " + filepath.Join(t.TempDir(), "data") + "\ntenant_id: ten_1\nsource: none\nlog_level: warn\n" + tc.extra
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			// gc opens the mirror with its trust, as serve does.
			out, err := exec.Command(bin, "gc", "--config", cfg, "--output", "json").CombinedOutput()
			if tc.ok && err != nil {
				t.Fatalf("got %v: %s", err, out)
			}
			if !tc.ok && (err == nil || !strings.Contains(string(out), tc.want)) {
				t.Fatalf("got %v: %s, want a refusal naming %s", err, out, tc.want)
			}
			if got := strings.Count(string(out), "deprecated"); tc.ok && got != map[bool]int{true: 1, false: 0}[tc.deprecated] {
				t.Errorf("%d deprecation lines, want deprecated=%v: %s", got, tc.deprecated, out)
			}
		})
	}
}
