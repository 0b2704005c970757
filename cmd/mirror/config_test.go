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

// TestConfig_TUFTrust: trust: tuf (the default) needs root_file; a
// config with neither is refused naming root_file; a config written for
// schema 1 (trust: dsse, or trusted_keys and no root_file) is refused at
// start with the command that re-initialises the mirror with the
// tenant's root; an unknown trust is refused, naming the key.
func TestConfig_TUFTrust(t *testing.T) {
	bin := buildOnce(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root.json")
	if err := os.WriteFile(root, []byte(`{"signed":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	key := `"` + strings.Repeat("A", 43) + `="`
	const reinit = "mirror init --data-dir "
	cases := []struct {
		name, extra string
		want        []string // in the refusal; nil: accepted
	}{
		{"tuf with root_file", "trust: tuf\nroot_file: " + root + "\n", nil},
		{"root_file alone is tuf", "root_file: " + root + "\n", nil},
		{"trusted_keys beside root_file are ignored", "root_file: " + root + "\ntrusted_keys: [" + key + "]\n", nil},
		{"tuf without root_file", "trust: tuf\n", []string{"root_file"}},
		{"neither trust nor trusted_keys", "", []string{"root_file"}},
		{"trusted_keys without root_file", "trusted_keys: [" + key + "]\n", []string{"schema 1", reinit, "--tenant-id ten_1 --root-file ROOT --force", "controlplane root show ten_1"}},
		{"trust: dsse", "trust: dsse\ntrusted_keys: [" + key + "]\n", []string{"schema 1", reinit, "--root-file ROOT --force"}},
		{"trust: dsse with root_file", "trust: dsse\nroot_file: " + root + "\n", []string{"schema 1", reinit}},
		{"unknown trust", "trust: pgp\nroot_file: " + root + "\n", []string{"trust"}},
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
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v: %s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("got success: %s, want a refusal naming %q", out, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("got %s, want it to name %q", out, w)
				}
			}
		})
	}
	// serve refuses a schema 1 config at start, before it listens.
	t.Run("serve refuses schema 1", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "mirror.yaml")
		body := "data_dir: " + filepath.Join(t.TempDir(), "data") + "\ntenant_id: ten_1\nsource: none\nlog_level: warn\nlisten: 127.0.0.1:0\ntrust: dsse\ntrusted_keys: [" + key + "]\n"
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "serve", "--config", cfg).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--root-file ROOT --force") {
			t.Fatalf("got %v: %s, want a refusal naming mirror init --root-file ROOT --force", err, out)
		}
	})
}
