package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// TestInit_RootFile: `mirror init --root-file` checks the tenant's root
// as the sync will, copies it into the data dir (0600) and writes trust:
// tuf with that copy, so the config stays valid when the original goes;
// a schema 1 config is refused, naming the command that re-initialises
// it, and that command works; --trusted-key is gone; hostile or missing
// input is refused with nothing written.
func TestInit_RootFile(t *testing.T) {
	bin := buildOnce(t)
	const tenant = "ten_0000000000000000000000000a"
	v := tuftest.NewVendor(t, tenant, 1)
	other := tuftest.NewVendor(t, "ten_0000000000000000000000000b", 50)
	write := func(t *testing.T, name string, b []byte) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("tuf", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "m")
		src := write(t, "root.json", v.RootData)
		out, errs, err := run(bin, "init", "--data-dir", dir, "--tenant-id", tenant, "--root-file", src)
		if err != nil {
			t.Fatalf("init: %v: %s", err, errs)
		}
		if strings.Contains(errs, "deprecated") || !strings.Contains(out, "trust:      tuf") {
			t.Errorf("stdout %q, stderr %q: want trust tuf and no deprecation", out, errs)
		}
		copyPath := filepath.Join(dir, "root.json")
		got, err := os.ReadFile(copyPath)
		if err != nil || !bytes.Equal(got, v.RootData) {
			t.Fatalf("the copy: %v, equal %v", err, bytes.Equal(got, v.RootData))
		}
		if fi, _ := os.Stat(copyPath); fi.Mode().Perm() != 0o600 {
			t.Errorf("the copy's mode is %v, want 0600", fi.Mode().Perm())
		}
		cfg, err := os.ReadFile(filepath.Join(dir, "mirror.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"trust: tuf\n", "root_file: \"" + copyPath + "\"\n"} {
			if !strings.Contains(string(cfg), want) {
				t.Errorf("config lacks %q:\n%s", want, cfg)
			}
		}
		if strings.Contains(string(cfg), "trusted_keys") {
			t.Errorf("config pins trusted_keys:\n%s", cfg)
		}
		// The original goes: the config still opens (gc loads the trust).
		if err := os.Remove(src); err != nil {
			t.Fatal(err)
		}
		if _, errs, err := run(bin, "gc", "--config", filepath.Join(dir, "mirror.yaml")); err != nil || strings.Contains(errs, "deprecated") {
			t.Fatalf("gc after the original root moved: %v: %s", err, errs)
		}
		// Again with --force (the credential step): the same copy.
		if _, errs, err := run(bin, "init", "--data-dir", dir, "--tenant-id", tenant, "--root-file", copyPath, "--vendor-url", "http://127.0.0.1:1", "--credential", "omc_x", "--force"); err != nil {
			t.Fatalf("init --force from the copy: %v: %s", err, errs)
		}
		if got, _ := os.ReadFile(copyPath); !bytes.Equal(got, v.RootData) {
			t.Error("re-init from the copy changed it")
		}
	})

	// A config written for schema 1 is refused at start, naming the
	// command; that command, run as written, re-initialises the mirror in
	// place (same key) with the tenant's root.
	t.Run("schema 1 config re-initialised", func(t *testing.T) {
		dir := t.TempDir()
		key := strings.Repeat("A", 43) + "="
		cfgPath := filepath.Join(dir, "mirror.yaml")
		if err := os.WriteFile(cfgPath, []byte("data_dir: "+dir+"\ntenant_id: "+tenant+"\ntrust: dsse\ntrusted_keys: [\""+key+"\"]\nsource: none\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs, err := run(bin, "gc", "--config", cfgPath)
		want := "mirror init --data-dir " + dir + " --tenant-id " + tenant + " --root-file ROOT --force"
		if err == nil || !strings.Contains(errs, want) {
			t.Fatalf("gc on a schema 1 config: %v: %q, want a refusal naming %q", err, errs, want)
		}
		src := write(t, "root.json", v.RootData)
		if _, errs, err := run(bin, "init", "--data-dir", dir, "--tenant-id", tenant, "--root-file", src, "--force"); err != nil {
			t.Fatalf("init --force: %v: %s", err, errs)
		}
		cfg, _ := os.ReadFile(cfgPath)
		if !strings.Contains(string(cfg), "trust: tuf\n") || strings.Contains(string(cfg), key) {
			t.Errorf("config after re-init:\n%s", cfg)
		}
		if _, errs, err := run(bin, "gc", "--config", cfgPath); err != nil {
			t.Fatalf("gc after re-init: %v: %s", err, errs)
		}
	})

	tampered := bytes.Replace(v.RootData, []byte(`"version":1`), []byte(`"version":9`), 1)
	if bytes.Equal(tampered, v.RootData) {
		t.Fatal("the root has no version field to tamper with")
	}
	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"neither", []string{"--tenant-id", tenant}, "--root-file"},
		{"--trusted-key is gone", []string{"--tenant-id", tenant, "--root-file", write(t, "r.json", v.RootData), "--trusted-key", strings.Repeat("A", 43) + "="}, "unknown flag: --trusted-key"},
		{"no tenant", []string{"--root-file", write(t, "r.json", v.RootData)}, "--tenant-id"},
		{"another tenant's root", []string{"--tenant-id", tenant, "--root-file", write(t, "r.json", other.RootData)}, "tenant"},
		{"a tampered root", []string{"--tenant-id", tenant, "--root-file", write(t, "r.json", tampered)}, "root"},
		{"not JSON", []string{"--tenant-id", tenant, "--root-file", write(t, "r.json", []byte("hello"))}, "root"},
		{"too large", []string{"--tenant-id", tenant, "--root-file", write(t, "r.json", bytes.Repeat([]byte(" "), 600<<10))}, "more than"},
		{"missing", []string{"--tenant-id", tenant, "--root-file", filepath.Join(t.TempDir(), "none.json")}, "no such file"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			_, errs, err := run(bin, append([]string{"init", "--data-dir", dir}, tc.args...)...)
			if err == nil || !strings.Contains(errs, tc.want) {
				t.Fatalf("got %v: %q, want a refusal naming %q", err, errs, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the data dir was created (%v)", err)
			}
		})
	}
}
