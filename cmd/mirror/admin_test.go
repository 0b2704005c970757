package main_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
)

// mirrorCmd runs a one-shot command and returns stdout, stderr, exit code.
func mirrorCmd(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// withoutLastSync drops the status line that a sync loop may move.
func withoutLastSync(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "last sync:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestMirror_CommandsWhileServing runs every one-shot command that makes
// sense while `mirror serve` runs (sync, status, verify, import, gc):
// each reaches the daemon through its admin socket and prints what the
// offline command prints, and the daemon serves the result.
func TestMirror_CommandsWhileServing(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	a := synctest.Art{ID: "art_a", Data: synctest.Random(64 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(32 << 10)}
	v.Publish(v.Manifest(1, []synctest.Art{a}))
	// The loop syncs at start, then only when told to.
	config := filepath.Join(dir, "mirror.yaml")
	os.WriteFile(config, []byte(trustConfig(t, dir, v)+fmt.Sprintf(`source: controlplane
vendor_url: %q
credential: %q
sync_interval: 1h
retain_snapshots: 1
log_level: warn
`, cp.URL, cp.Credential)), 0o600)
	d := startDaemon(t, bin, config)
	deadline := time.Now().Add(20 * time.Second)
	for d.check(t) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first sync did not complete")
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("the socket is the owner's only", func(t *testing.T) {
		fi, err := os.Lstat(filepath.Join(dir, "admin.sock"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("admin.sock: mode %v, want a socket with 0600", fi.Mode())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			t.Errorf("admin.sock owned by uid %d, want %d", st.Uid, os.Getuid())
		}
	})
	t.Run("status", func(t *testing.T) {
		out, errs, code := mirrorCmd(t, bin, "status", "--config", config)
		if code != 0 || !strings.Contains(out, "sequence 1") {
			t.Fatalf("status: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("sync", func(t *testing.T) {
		v.Publish(v.Manifest(2, []synctest.Art{b}))
		out, errs, code := mirrorCmd(t, bin, "sync", "--config", config)
		if code != 0 || !strings.Contains(out, "committed snapshot tuf-2 (sequence 2): 1 artifacts") {
			t.Fatalf("sync: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if got := d.check(t); got != 2 {
			t.Errorf("the daemon serves sequence %d after the sync, want 2", got)
		}
		out, _, code = mirrorCmd(t, bin, "sync", "--config", config)
		if code != 0 || !strings.Contains(out, "up to date at sequence 2") {
			t.Errorf("second sync: exit %d, %q", code, out)
		}
	})
	t.Run("gc", func(t *testing.T) {
		// retain_snapshots 1: snapshot 1's artifact is garbage now.
		out, errs, code := mirrorCmd(t, bin, "gc", "--config", config)
		if code != 0 || !strings.Contains(out, "removed 1 blobs (65536 bytes), kept 1") {
			t.Fatalf("gc: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("import, dry run then for real", func(t *testing.T) {
		v.Publish(v.Manifest(3, []synctest.Art{a, b}))
		path := filepath.Join(t.TempDir(), "three.tar")
		os.WriteFile(path, v.Bundle(t, 2), 0o600)
		out, errs, code := mirrorCmd(t, bin, "import", path, "--dry-run", "--config", config)
		if code != 0 || !strings.Contains(out, "would import snapshot tuf-3 (sequence 3, held 2): 1 artifacts from the bundle") {
			t.Fatalf("import --dry-run: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if got := d.check(t); got != 2 {
			t.Errorf("after the dry run the daemon serves %d, want 2", got)
		}
		out, errs, code = mirrorCmd(t, bin, "import", path, "--config", config)
		if code != 0 || !strings.Contains(out, "imported snapshot tuf-3 (sequence 3, held 2): 1 artifacts from the bundle") {
			t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if got := d.check(t); got != 3 {
			t.Errorf("after the import the daemon serves %d, want 3", got)
		}
	})
	t.Run("verify finds and quarantines a corrupt blob", func(t *testing.T) {
		out, errs, code := mirrorCmd(t, bin, "verify", "--config", config)
		if code != 0 || !strings.Contains(out, "checked 2 blobs") {
			t.Fatalf("verify: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		var blob string
		filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() && strings.HasSuffix(p, synctest.SHA(b.Data)) {
				blob = p
			}
			return nil
		})
		if blob == "" {
			t.Fatal("art_b's blob not found in the cache")
		}
		if err := os.WriteFile(blob, bytes.Repeat([]byte{'x'}, len(b.Data)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errs, code = mirrorCmd(t, bin, "verify", "--config", config)
		if code == 0 || !strings.Contains(out, "1 corrupt (quarantined)") || !strings.Contains(errs, "verify: 1 corrupt, 1 missing") {
			t.Fatalf("verify: exit %d, stdout %q, stderr %q; want the corrupt blob reported", code, out, errs)
		}
		out, _, _ = mirrorCmd(t, bin, "status", "--config", config)
		if !strings.Contains(out, "1 missing, 1 quarantined") {
			t.Errorf("status after verify: %q, want the quarantine counted", out)
		}
		// The daemon fetches it again on a sync.
		out, errs, code = mirrorCmd(t, bin, "sync", "--config", config)
		if code != 0 {
			t.Errorf("sync after verify: exit %d, %q %q", code, out, errs)
		}
	})
	t.Run("the daemon's answers are the offline command's", func(t *testing.T) {
		served, _, code := mirrorCmd(t, bin, "status", "--config", config)
		if code != 0 {
			t.Fatal("status failed")
		}
		// A refused import: the daemon's error comes back in the wire
		// shape and is printed as the offline command prints it.
		junk := filepath.Join(t.TempDir(), "junk.tar")
		os.WriteFile(junk, bytes.Repeat([]byte("not a tar "), 200), 0o600)
		_, servedErr, servedCode := mirrorCmd(t, bin, "import", junk, "--config", config)
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		if _, err := os.Lstat(filepath.Join(dir, "admin.sock")); !os.IsNotExist(err) {
			t.Errorf("admin.sock after the daemon stopped: %v, want removed", err)
		}
		offline, errs, code := mirrorCmd(t, bin, "status", "--config", config)
		if code != 0 {
			t.Fatalf("offline status: exit %d, %s", code, errs)
		}
		if withoutLastSync(served) != withoutLastSync(offline) {
			t.Errorf("status through the daemon:\n%s\noffline:\n%s", served, offline)
		}
		_, offlineErr, offlineCode := mirrorCmd(t, bin, "import", junk, "--config", config)
		// The offline run logs its config warnings first: the error is
		// the last line.
		lastLine := func(s string) string {
			lines := strings.Split(strings.TrimSpace(s), "\n")
			return lines[len(lines)-1]
		}
		if servedCode == 0 || servedCode != offlineCode || lastLine(servedErr) != lastLine(offlineErr) {
			t.Errorf("refused import through the daemon: exit %d, %q; offline: exit %d, %q; want the same failure", servedCode, servedErr, offlineCode, offlineErr)
		}
	})
}

// TestMirror_StaleAdminSocket: a socket file left by a killed daemon
// neither misleads a command (it opens the data dir) nor stops the next
// daemon (it replaces the file).
func TestMirror_StaleAdminSocket(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	v.Publish(v.Manifest(1, nil))
	config := writeConfig(t, dir, v, cp)
	d := startDaemon(t, bin, config)
	d.kill9()
	if _, err := os.Lstat(filepath.Join(dir, "admin.sock")); err != nil {
		t.Fatalf("a killed daemon left no socket file (%v): the test tests nothing", err)
	}
	if out, errs, code := mirrorCmd(t, bin, "status", "--config", config); code != 0 {
		t.Fatalf("status with a stale socket: exit %d, %q %q", code, out, errs)
	}
	startDaemon(t, bin, config)
	if out, errs, code := mirrorCmd(t, bin, "status", "--config", config); code != 0 {
		t.Fatalf("status through the new daemon: exit %d, %q %q", code, out, errs)
	}
}
