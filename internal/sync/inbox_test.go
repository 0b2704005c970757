package sync_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

func TestInbox_ImportsDroppedBundles(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(10 << 10)}
	r.publish(t, 1, []synctest.Art{a})
	good := r.v.Bundle(t, 0)
	// The same view from a vendor whose keys the mirror does not trust.
	other := synctest.NewTUFVendor(t)
	other.Publish(other.Manifest(1, []synctest.Art{a}))
	forged := other.Bundle(t, 0)

	dir := filepath.Join(t.TempDir(), "inbox")
	in := &sync.Inbox{Dir: dir, Syncer: r.syncer(nil)}
	ctx := context.Background()
	if _, err := in.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a.tar"), good, 0o600)
	os.WriteFile(filepath.Join(dir, "b.tar"), forged, 0o600)
	os.WriteFile(filepath.Join(dir, "c.tar.part"), good, 0o600)

	if n, _ := in.Scan(ctx); n != 0 || r.heldSeq(t) != 0 {
		t.Fatalf("first sight of a file imported it (n=%d): a copy in progress could be taken", n)
	}
	n, err := in.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 1; got != want {
		t.Fatalf("imported %d bundles, want %d", got, want)
	}
	if got := r.heldSeq(t); got != 1 {
		t.Fatalf("held sequence %d, want 1", got)
	}
	for _, p := range []string{"done/a.tar", "failed/b.tar", "failed/b.tar.error", "c.tar.part"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	msg, _ := os.ReadFile(filepath.Join(dir, "failed/b.tar.error"))
	if !strings.Contains(string(msg), "tenant") {
		t.Errorf("error file says %q, want the other tenant's bundle refused", msg)
	}
	t.Run("a file that changes between scans waits", func(t *testing.T) {
		p := filepath.Join(dir, "d.tar")
		os.WriteFile(p, good[:100], 0o600)
		in.Scan(ctx)
		os.WriteFile(p, good, 0o600)
		if n, _ := in.Scan(ctx); n != 0 {
			t.Fatal("took a file that was still changing")
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatal("growing file was moved")
		}
	})
}
