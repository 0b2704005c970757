package mirror_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestMirror_CloseJoinsEveryPart stops a running Mirror while a sync is
// stalled in an artifact download, a bundle waits in the inbox to be
// imported and a client is in the middle of a large download: Close
// returns once every part is joined, the parts' last writes reached the
// state before it closed, and no goroutine is left (goleak; run with
// -race).
func TestMirror_CloseJoinsEveryPart(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	v := synctest.NewTUFVendor(t)
	cp := synctest.NewTUFControlPlane(t, v)
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")

	big := synctest.Art{ID: "art_big", Data: synctest.Random(32 << 20)}
	v.Publish(v.Manifest(1, []synctest.Art{big}))
	src, err := sync.NewControlPlane(cp.URL, cp.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.Open(context.Background(), mirror.Config{
		DBPath: filepath.Join(dir, "mirror.db"), DataDir: dir, Listen: "127.0.0.1:0",
		Source: src, Sync: sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}}, SyncInterval: 20 * time.Millisecond,
		InboxDir: inbox, InboxInterval: 10 * time.Millisecond, GCInterval: 10 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond, Updates: realUpdates, TenantID: v.TenantID,
	})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(context.Background()) }()
	base := "http://" + m.Addr().String()
	waitFor(t, "the first sync", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// 1. A sync in flight: the next snapshot's artifact stalls after its
	// first bytes until the request goes away.
	next := synctest.Art{ID: "art_next", Data: synctest.Random(1 << 20)}
	stalled := cp.StallTarget(synctest.SHA(next.Data))
	v.Publish(v.Manifest(2, []synctest.Art{big, next}))
	select {
	case <-stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("the sync never reached the stalled artifact")
	}

	// 2. An import in flight: a bundle in the inbox, taken while the sync
	// holds the syncer.
	// (a bundle of version 3 made for a mirror holding version 1)
	var buf bytes.Buffer
	m3 := v.Manifest(3, []synctest.Art{big})
	v.Publish(m3)
	buf.Write(v.Bundle(t, 1))
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inbox, "three.tar"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few inbox scans: the file is stable and taken

	// 3. A long download in flight: a client reads the first bytes of the
	// 32 MiB artifact and stops reading.
	resp, err := http.Get(base + "/v1/artifacts/" + big.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// Close closes mirror.db last: nothing of the daemon may still run
	// now (an instant look, no retry).
	if left := daemonGoroutines(); left != "" {
		t.Fatalf("Close returned (mirror.db closed) with the daemon's goroutines running:\n%s", left)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil after Close", err)
	}
	// The client's download was cut, not completed.
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("the stalled client download completed; want it cut at the shutdown deadline")
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := m.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}

	// The parts wrote their last results before the state closed: the
	// cancelled sync (or the import queued behind it) is the last sync.
	st, err := state.Open(filepath.Join(dir, "mirror.db"), 0)
	if err != nil {
		t.Fatalf("reopen state: %v", err)
	}
	last, ok, err := st.LastSync()
	st.Close()
	if err != nil || !ok || last.OK || last.Error == "" {
		t.Errorf("last sync = %+v (%v): want the interrupted one recorded as failed", last, err)
	}
	if h, _ := os.ReadDir(filepath.Join(inbox, "failed")); len(h) != 0 {
		t.Errorf("the interrupted import was filed as failed: %d files", len(h))
	}

	cp.Close()
	goleak.VerifyNone(t, baseline)
}

// daemonGoroutines returns the stacks of goroutines running the mirror's
// code (its server and handlers, the syncer, the inbox, the state, the
// cache, a download) at this instant.
func daemonGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// Only the frames it runs count: a goroutine whose function has
		// returned (its WaitGroup done) may still be in runtime.goexit,
		// with the daemon named only on its "created by" line.
		running, _, _ := strings.Cut(g, "\ncreated by ")
		for _, pkg := range []string{"/internal/mirror.", "/internal/mirror/state.", "/internal/sync.", "/internal/cache.", "/internal/fetch."} {
			if strings.Contains(running, "github.com/outpost/outpost"+pkg) {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
