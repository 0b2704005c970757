package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
)

func TestMirror_CLI(t *testing.T) {
	bin := func() string { return buildOnce(t) }()
	v := synctest.NewVendor(t)
	cp := synctest.NewControlPlane(t)
	dir := t.TempDir()
	config := writeConfig(t, dir, v, cp)
	empty := filepath.Join(t.TempDir(), "nothing-here")
	cp.Publish(v.Sign(t, v.Manifest(1, []synctest.Art{{ID: "art_a", Data: []byte("abc")}})), 1, map[string][]byte{"art_a": []byte("abc")})

	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
		wantOut string
	}{
		{"sync once", []string{"sync", "--once", "--config", config}, nil, "", "committed snapshot snp_000001"},
		{"status json", []string{"status", "--config", config, "--output", "json"}, nil, "", `"sequence": 1`},
		{"the data dir's own config, no --config", []string{"status", "--data-dir", dir, "-o", "json"}, nil, "", `"sequence": 1`},
		{"no mirror initialised", []string{"status", "--data-dir", empty}, nil, "no mirror is initialised in " + empty, ""},
		{"env overrides yaml", []string{"status", "--config", config}, []string{"OUTPOST_RETAIN_SNAPSHOTS=0"}, "retain_snapshots must be at least 1", ""},
		{"unknown key", []string{"status", "--config", writeFile(t, "bogus: 1\n")}, nil, `unknown key "bogus"`, ""},
		{"admin token", []string{"admin-token"}, nil, "", "admin_token_hashes entry: "},
		{"admin token hash, not the token", []string{"status", "--config", config}, []string{"OUTPOST_ADMIN_TOKEN_HASHES=opm_secret"}, "admin_token_hashes: \"opm_secret\" is not a hex sha256", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("err %v, stderr %q; want %q", err, stderr.String(), tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(stdout.String(), tt.wantOut) {
				t.Fatalf("err %v, stdout %q, stderr %q; want %q", err, stdout.String(), stderr.String(), tt.wantOut)
			}
		})
	}

	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("status on an uninitialised dir created %s (%v)", empty, err)
	}

	t.Run("status while serve holds the lock, with no admin socket, fails at once", func(t *testing.T) {
		raw, _ := os.ReadFile(config)
		config := filepath.Join(t.TempDir(), "mirror.yaml")
		os.WriteFile(config, append(raw, "admin_socket: none\n"...), 0o600)
		d := startDaemon(t, bin, config)
		start := time.Now()
		out, err := exec.Command(bin, "status", "--config", config).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "locked by another process") || time.Since(start) > 5*time.Second {
			t.Errorf("status = %v %q after %v; want a quick lock error", err, out, time.Since(start))
		}
		out, err = exec.Command(bin, "status", "--server", d.base, "--output", "json").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"snapshot_id": "snp_000001"`) {
			t.Errorf("status --server = %v %s", err, out)
		}
		d.kill9()
	})
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte(content), 0o600)
	return p
}
