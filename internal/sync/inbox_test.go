package sync_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

func bundleBytes(t *testing.T, env []byte, arts ...synctest.Art) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf)
	if err := w.WriteSnapshot(env); err != nil {
		t.Fatal(err)
	}
	for _, a := range arts {
		if err := w.WriteArtifact(synctest.SHA(a.Data), int64(len(a.Data)), bytes.NewReader(a.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInbox_ImportsDroppedBundles(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(10 << 10)}
	good := bundleBytes(t, r.v.Sign(t, r.v.Manifest(1, []synctest.Art{a})), a)
	other := synctest.NewVendor(t)
	forged := bundleBytes(t, r.v.SignAs(t, other, r.v.Manifest(2, []synctest.Art{a})), a)

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
	if !strings.Contains(string(msg), "signature") && !strings.Contains(string(msg), "trusted") {
		t.Errorf("error file says %q, want the signature failure", msg)
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
