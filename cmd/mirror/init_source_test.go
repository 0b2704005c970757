package main_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/testenv"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
)

// TestInit_Sources: `mirror init` writes a config for every source, with
// the secrets read from files, and the mirror it makes syncs from that
// source at once: a real S3 server (versitygw) holding the tenant's
// repository, and an upstream mirror that wants a client token. Wrong
// combinations of flags are refused, naming the flag.
func TestInit_Sources(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	v.Publish(v.Manifest(1, []synctest.Art{{ID: "art_a", Data: synctest.Random(200 << 10)}}))
	root := v.WriteRoot(t, t.TempDir())
	secretFile := func(t *testing.T, s string) string {
		p := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	initAndSync := func(t *testing.T, flags ...string) string {
		t.Helper()
		dir := t.TempDir()
		mustRun(t, bin, append([]string{"init", "--data-dir", dir, "--tenant-id", v.TenantID, "--root-file", root}, flags...)...)
		config := filepath.Join(dir, "mirror.yaml")
		if fi, err := os.Stat(config); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("config %v %v: want mode 0600 (it holds a secret)", fi, err)
		}
		out := mustRun(t, bin, "sync", "--config", config, "--log-level", "error")
		if !strings.Contains(out, "sequence 1") {
			t.Errorf("sync: %q, want sequence 1", out)
		}
		raw, _ := os.ReadFile(config)
		return string(raw)
	}

	t.Run("s3", func(t *testing.T) {
		cfg := testenv.S3(t)
		store, err := s3.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range v.TUF.Repo.Paths() {
			if _, err := store.Put(context.Background(), "outpost/"+p, bytes.NewReader(v.TUF.Repo.Get(p)), blob.Expect{}); err != nil {
				t.Fatal(err)
			}
		}
		conf := initAndSync(t, "--source", "s3", "--s3-endpoint", cfg.Endpoint, "--s3-bucket", cfg.Bucket, "--s3-prefix", "outpost/",
			"--s3-region", cfg.Region, "--s3-access-key", cfg.AccessKey, "--s3-secret-key-file", secretFile(t, cfg.SecretKey))
		if !strings.Contains(conf, "source: s3") || !strings.Contains(conf, cfg.SecretKey) {
			t.Errorf("config:\n%s\nwant source: s3 with the secret key from the file", conf)
		}
	})
	t.Run("upstream", func(t *testing.T) {
		repo := tufhttp.New(v.TUF.Repo, tufhttp.Options{Prefix: "/tuf/"})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer up-token" {
				http.Error(w, "token", http.StatusUnauthorized)
				return
			}
			repo.ServeHTTP(w, r)
		}))
		defer up.Close()
		conf := initAndSync(t, "--source", "upstream", "--upstream-url", up.URL, "--upstream-token-file", secretFile(t, "up-token"))
		if !strings.Contains(conf, "source: upstream") {
			t.Errorf("config:\n%s\nwant source: upstream", conf)
		}
	})
	t.Run("refused", func(t *testing.T) {
		cases := []struct {
			name  string
			flags []string
			want  string
		}{
			{"unknown source", []string{"--source", "ftp"}, `--source "ftp"`},
			{"s3 without a bucket", []string{"--source", "s3", "--s3-endpoint", "127.0.0.1:9000"}, "--s3-bucket"},
			{"a flag of another source", []string{"--source", "upstream", "--upstream-url", "http://x", "--s3-bucket", "b"}, "--s3-bucket is for --source s3"},
			{"controlplane without a URL", []string{"--source", "controlplane"}, "--vendor-url"},
			{"a missing secret file", []string{"--source", "upstream", "--upstream-url", "http://x", "--upstream-token-file", "/nonexistent/tok"}, "--upstream-token-file"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				_, errs, err := run(bin, append([]string{"init", "--data-dir", dir, "--tenant-id", v.TenantID, "--root-file", root}, tc.flags...)...)
				if err == nil || !strings.Contains(errs, tc.want) {
					t.Fatalf("init %v: %v %q; want a refusal naming %q", tc.flags, err, errs, tc.want)
				}
				if _, err := os.Stat(filepath.Join(dir, "mirror.yaml")); err == nil {
					t.Error("a refused init wrote a config")
				}
			})
		}
	})
}
