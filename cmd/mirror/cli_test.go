package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
)

func TestMirror_CLI(t *testing.T) {
	bin := func() string { return buildOnce(t) }()
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	config := writeConfig(t, dir, v, cp)
	empty := filepath.Join(t.TempDir(), "nothing-here")
	v.Publish(v.Manifest(1, []synctest.Art{{ID: "art_a", Data: []byte("abc")}}))

	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
		wantOut string
	}{
		{"sync once", []string{"sync", "--once", "--config", config}, nil, "", "committed snapshot tuf-1"},
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
		if err != nil || !strings.Contains(string(out), `"snapshot_id": "tuf-1"`) {
			t.Errorf("status --server = %v %s", err, out)
		}
		d.kill9()
	})
}

// importedSite initialises a mirror of v's tenant with the client token
// "site-token" and imports a bundle of a first snapshot holding arts. It
// returns the config's path and the root file's.
func importedSite(t *testing.T, bin string, v *synctest.TUFVendor, arts ...synctest.Art) (config, root string) {
	t.Helper()
	dir := t.TempDir()
	root = v.WriteRoot(t, t.TempDir())
	mustRun(t, bin, "init", "--data-dir", dir, "--tenant-id", v.TenantID, "--root-file", root)
	config = filepath.Join(dir, "mirror.yaml")
	f, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("client_tokens: [site-token]\nlog_level: warn\n")
	f.Close()
	v.Publish(v.Manifest(1, arts))
	bundleFile := filepath.Join(t.TempDir(), "b.tar")
	if err := os.WriteFile(bundleFile, v.Bundle(t, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, bin, "import", bundleFile, "--config", config)
	return config, root
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte(content), 0o600)
	return p
}

// TestMirror_Messages: the mistakes an operator makes get a message that
// names the cause and the next step.
func TestMirror_Messages(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	art := synctest.Art{ID: "art_a", Data: []byte("abc")}
	config, root := importedSite(t, bin, v, art)
	dir := filepath.Dir(config)

	d := startDaemon(t, bin, config)
	down := "http://" + testenv.FreePort(t)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"status --server without a token", []string{"status", "--server", d.base}, []string{"401", "requires a client token", "--token"}},
		{"status --server with a wrong token", []string{"status", "--server", d.base, "--token", "nope"}, []string{"refused the token", "--token"}},
		{"status --server nothing listening", []string{"status", "--server", down}, []string{"cannot reach the mirror at " + down + " (--server)", "connection refused", "mirror serve"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, err := run(bin, tc.args...)
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q, want it to contain %q", errs, w)
				}
			}
		})
	}
	if out, errs, err := run(bin, "status", "--server", d.base, "--token", "site-token"); err != nil || !strings.Contains(out, "sequence 1") {
		t.Fatalf("status with the token: %v %q %q", err, out, errs)
	}
	d.kill9()

	t.Run("sync from an unreachable vendor names vendor_url", func(t *testing.T) {
		other := t.TempDir()
		down := "http://" + testenv.FreePort(t)
		mustRun(t, bin, "init", "--data-dir", other, "--tenant-id", v.TenantID, "--root-file", root,
			"--vendor-url", down, "--credential", "omc_x")
		cmd := exec.Command(bin, "sync", "--data-dir", other, "--log-level", "error")
		cmd.Env = append(os.Environ(), "OUTPOST_RETRY_MAX_ELAPSED=1s")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "connection refused") || !strings.Contains(string(out), "check vendor_url in mirror.yaml (or OUTPOST_VENDOR_URL)") {
			t.Fatalf("sync: %v %s", err, out)
		}
	})
	t.Run("audit upload on an air-gapped mirror points at the export and mirror-audit import", func(t *testing.T) {
		_, errs, err := run(bin, "audit", "upload", "--config", config)
		if err == nil || !strings.Contains(errs, "mirror audit export --out FILE") || !strings.Contains(errs, "controlplane mirror-audit import FILE") {
			t.Fatalf("audit upload: %v %q", err, errs)
		}
	})
	t.Run("verify on an air-gapped mirror points at a bundle, not sync", func(t *testing.T) {
		blob := filepath.Join(dir, "blobs", "sha256", synctest.SHA(art.Data)[:2], synctest.SHA(art.Data))
		if err := os.WriteFile(blob, []byte("xyz"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errs, err := run(bin, "verify", "--config", config)
		if err == nil || !strings.Contains(errs, "source: none") || !strings.Contains(errs, "mirror import BUNDLE") || strings.Contains(errs, "mirror sync") {
			t.Fatalf("verify: %v %q; want the bundle hint and no `mirror sync`", err, errs)
		}
	})
}

// TestMirror_Progress: `mirror sync` and `mirror import` report bytes,
// the total and the rate on stderr (log lines off a terminal; the
// interval shortened so every read reports).
func TestMirror_Progress(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	art := synctest.Art{ID: "art_p", Data: synctest.Random(1 << 20)}
	v.Publish(v.Manifest(1, []synctest.Art{art}))
	progressEnv := append(os.Environ(), "OUTPOST_PROGRESS_INTERVAL=1ns")

	t.Run("sync", func(t *testing.T) {
		config := writeConfig(t, t.TempDir(), v, cp)
		cmd := exec.Command(bin, "sync", "--config", config)
		cmd.Env = progressEnv
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("sync: %v %s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "sync download: 1.0 MiB / 1.0 MiB (100%)") {
			t.Errorf("stderr %q, want the download's progress", stderr.String())
		}
	})
	t.Run("import", func(t *testing.T) {
		dir := t.TempDir()
		mustRun(t, bin, "init", "--data-dir", dir, "--tenant-id", v.TenantID, "--root-file", v.WriteRoot(t, t.TempDir()))
		file := filepath.Join(t.TempDir(), "b.tar")
		os.WriteFile(file, v.Bundle(t, 0), 0o600)
		cmd := exec.Command(bin, "import", file, "--data-dir", dir)
		cmd.Env = progressEnv
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("import: %v %s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "import: ") || !strings.Contains(stderr.String(), "(100%)") {
			t.Errorf("stderr %q, want the bundle's progress", stderr.String())
		}
	})
}
