package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestControlplane_BackupRestore follows the README's backup and restore:
// the online backup of the catalog, plus the keys, the data-encryption key
// and the blobs copied beside it, restore into a fresh directory that
// exports a bundle; without the blobs the export refuses before writing,
// naming the artifact.
func TestControlplane_BackupRestore(t *testing.T) {
	c := newCP(t)
	token := c.mustRun("init")
	c.start()
	c.env = []string{"OUTPOST_SERVER=" + c.url(), "OUTPOST_TOKEN=" + token}
	tenant := c.mustRun("tenant", "create", "acme")
	product := c.mustRun("product", "create", "app", "--distribution", "open")
	file := filepath.Join(t.TempDir(), "app.tar.gz")
	os.WriteFile(file, bytes.Repeat([]byte("outpost"), 50_000), 0o644)
	c.mustRun("release", "create", "--product", product, "--version", "1.0.0", "--file", file)
	c.mustRun("snapshot", "build", "--tenant", tenant)
	backup := filepath.Join(t.TempDir(), "catalog.db")
	if out := c.mustRun("backup", "--out", backup); !strings.Contains(out, "wrote the catalog to "+backup) || !strings.Contains(out, "keys directory") {
		t.Fatalf("backup printed %q; want what it wrote and what else to keep", out)
	}
	c.proc.Process.Signal(syscall.SIGTERM)
	c.proc.Wait()

	restore := func(t *testing.T, withBlobs bool) *cp {
		r := newCP(t)
		if err := os.MkdirAll(r.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		copyTree(t, backup, filepath.Join(r.dataDir, "controlplane.db"))
		copyTree(t, filepath.Join(c.dataDir, "keys"), filepath.Join(r.dataDir, "keys"))
		copyTree(t, filepath.Join(c.dataDir, "data-encryption.key"), filepath.Join(r.dataDir, "data-encryption.key"))
		if withBlobs {
			copyTree(t, filepath.Join(c.dataDir, "blobs"), filepath.Join(r.dataDir, "blobs"))
		}
		return r
	}
	t.Run("everything the README names restores", func(t *testing.T) {
		r := restore(t, true)
		out := filepath.Join(t.TempDir(), "bundle.tar")
		r.mustRun("bundle", "export", "--tenant", tenant, "--out", out)
		if fi, err := os.Stat(out); err != nil || fi.Size() < 350_000 {
			t.Fatalf("bundle after restore: %v", err)
		}
	})
	t.Run("missing blobs are named before anything is written", func(t *testing.T) {
		r := restore(t, false)
		out := filepath.Join(t.TempDir(), "bundle.tar")
		_, errs, err := r.run("bundle", "export", "--tenant", tenant, "--out", out)
		if err == nil || !strings.Contains(errs, "bytes are missing from the blob store") || !strings.Contains(errs, "art_") {
			t.Fatalf("export without blobs: %v %q; want the missing artifact named", err, errs)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a partial bundle was left at %s (%v)", out, err)
		}
	})
}

// copyTree copies a file or a directory with cp -a.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", from, to, err, out)
	}
}
