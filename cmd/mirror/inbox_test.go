package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
)

// TestMirror_InboxWhileServing drops bundles into a serving mirror's inbox:
// the air-gapped path without stopping the daemon.
func TestMirror_InboxWhileServing(t *testing.T) {
	bin := buildOnce(t)
	v := synctest.NewTUFVendor(t)
	dir := t.TempDir()
	cfg := trustConfig(t, dir, v) + "source: none\ninbox_interval: 100ms\nlog_level: warn\n"
	path := filepath.Join(dir, "mirror.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	d := startDaemon(t, bin, path)

	drop := func(name string, seq int64, arts ...synctest.Art) {
		if got := v.Publish(v.Manifest(seq, arts)); got != seq {
			t.Fatalf("published version %d, want %d", got, seq)
		}
		// An incremental bundle, for the mirror holding seq-1.
		buf := bytes.NewBuffer(v.Bundle(t, seq-1))
		// Copy under a temporary name, then rename: what an operator's
		// tooling should do, though the inbox also waits for a file to
		// stop changing.
		tmp := filepath.Join(dir, "inbox", name+".part")
		os.MkdirAll(filepath.Dir(tmp), 0o700)
		if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(tmp, filepath.Join(dir, "inbox", name))
	}
	waitSeq := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if d.check(t) == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("mirror did not reach sequence %d from its inbox", want)
	}
	a := synctest.Art{ID: "art_a", Data: synctest.Random(64 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(32 << 10)}
	drop("one.tar", 1, a)
	waitSeq(1)
	drop("two.tar", 2, a, b)
	waitSeq(2)
	// The commit comes before the move to done/: wait for the move.
	for _, p := range []string{"done/one.tar", "done/two.tar"} {
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, err = os.Stat(filepath.Join(dir, "inbox", p)); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
