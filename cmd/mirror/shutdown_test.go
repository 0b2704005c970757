package main_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	outpostd "github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// busyDaemon starts the real binary and gets it busy: a sync stalled in an
// artifact download, a bundle in its inbox and a client reading a large
// artifact slowly. It returns the daemon, its data dir and the client's
// open answer.
func busyDaemon(t *testing.T, shutdownTimeout string) (*daemon, string, *http.Response) {
	t.Helper()
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	big := synctest.Art{ID: "art_big", Data: synctest.Random(32 << 20)}
	v.Publish(v.Manifest(1, []synctest.Art{big}))
	config := writeConfig(t, dir, v, cp)
	f, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("inbox_interval: 20ms\nshutdown_timeout: " + shutdownTimeout + "\n")
	f.Close()
	d := startDaemon(t, bin, config)
	deadline := time.Now().Add(20 * time.Second)
	for d.check(t) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first sync did not complete")
		}
		time.Sleep(20 * time.Millisecond)
	}
	next := synctest.Art{ID: "art_next", Data: synctest.Random(1 << 20)}
	stalled := cp.StallTarget(synctest.SHA(next.Data))
	v.Publish(v.Manifest(2, []synctest.Art{big, next}))
	select {
	case <-stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("the sync never reached the stalled artifact")
	}
	v.Publish(v.Manifest(3, []synctest.Art{big}))
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o700)
	if err := os.WriteFile(filepath.Join(inbox, "three.tar"), v.Bundle(t, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // scanned twice: stable, taken
	resp, err := http.Get(d.base + "/v1/artifacts/" + big.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return d, dir, resp
}

// wait returns the daemon's exit code, failing after 20s.
func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("the mirror did not exit within 20s")
		return -1
	}
}

// TestServe_SIGTERMWhileBusy: the first SIGTERM stops the daemon
// gracefully (exit 0) though a sync, an import and a download are in
// flight; the state is closed cleanly (the next command opens it at once)
// and holds the interrupted sync's result.
func TestServe_SIGTERMWhileBusy(t *testing.T) {
	d, dir, resp := busyDaemon(t, "300ms")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t); code != outpostd.ExitOK {
		t.Fatalf("exit code %d after SIGTERM, want %d", code, outpostd.ExitOK)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("the slow client's download completed; want it cut at the shutdown deadline")
	}
	out, err := exec.Command(buildOnce(t), "status", "--config", filepath.Join(dir, "mirror.yaml"), "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("mirror status after shutdown: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(`"ok": false`)) {
		t.Errorf("status after shutdown = %s; want the interrupted sync recorded as failed", out)
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "inbox", "failed")); len(files) != 0 {
		t.Errorf("the interrupted import was filed as failed (%d files); want it left for the next start", len(files))
	}
}

// TestServe_SecondSignalExitsAtOnce: a second signal during a long
// graceful shutdown exits with outpostd.ExitInterrupted.
func TestServe_SecondSignalExitsAtOnce(t *testing.T) {
	d, _, _ := busyDaemon(t, "1m")
	d.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond) // shutting down, held by the slow client
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t); code != outpostd.ExitInterrupted {
		t.Fatalf("exit code %d after a second SIGTERM, want %d", code, outpostd.ExitInterrupted)
	}
}
