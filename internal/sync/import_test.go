package sync_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/sync/synctest"
)

func TestSyncer_Import(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(70 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(1000)}
	r.publish(t, 1, []synctest.Art{a})
	full := r.v.Bundle(t, 0)
	r.publish(t, 2, []synctest.Art{a, b})
	since := r.v.Bundle(t, 1)
	s := r.syncer(nil)
	ctx := context.Background()

	t.Run("dry run writes nothing", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader(full), true)
		if err != nil || !rep.Changed || rep.Imported != 1 {
			t.Fatalf("dry run = %+v, %v", rep, err)
		}
		if r.heldSeq(t) != 0 || r.cache.Has(synctest.SHA(a.Data), int64(len(a.Data))) {
			t.Error("dry run changed the mirror")
		}
	})
	t.Run("full bundle", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader(full), false)
		if err != nil || !rep.Changed || rep.Imported != 1 || r.heldSeq(t) != 1 {
			t.Fatalf("import = %+v, %v; held %d", rep, err, r.heldSeq(t))
		}
	})
	t.Run("a corrupt gzip bundle is refused", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader([]byte{0x1f, 0x8b, 0, 0, 0}), false)
		if err == nil || rep.Changed || r.heldSeq(t) != 1 {
			t.Fatalf("import = %+v, %v; held %d; want a refusal and 1 held", rep, err, r.heldSeq(t))
		}
	})
	t.Run("since bundle relies on the cache (gzipped)", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(since)
		zw.Close()
		rep, err := s.Import(ctx, &buf, false)
		if err != nil || rep.Imported != 1 || rep.Cached != 1 || r.heldSeq(t) != 2 {
			t.Fatalf("import = %+v, %v; held %d", rep, err, r.heldSeq(t))
		}
	})
}

// Hostile bundles (paths, links, tampered or truncated entries, other
// keys) are mounted in tufimport_test.go and internal/bundle.

func TestSyncer_ImportReportsTheSnapshot(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(1000)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(2000)}
	revokedA := a
	revokedA.Revoked = true
	s := r.syncer(nil)
	ctx := context.Background()
	r.publish(t, 1, []synctest.Art{a})
	if _, err := s.Import(ctx, bytes.NewReader(r.v.Bundle(t, 0)), false); err != nil {
		t.Fatal(err)
	}
	m2 := r.v.Manifest(2, []synctest.Art{revokedA, b})
	r.v.Publish(m2)
	rep, err := s.Import(ctx, bytes.NewReader(r.v.Bundle(t, 1)), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Releases != 1 || len(rep.Withdrawn) != 1 || rep.Withdrawn[0] != "prd_1/stable/1.0.0" {
		t.Errorf("got releases %d, withdrawn %v; want 1, [prd_1/stable/1.0.0]", rep.Releases, rep.Withdrawn)
	}
	if want := r.v.TUF.Now.Add(24 * time.Hour); rep.ExpiresAt.IsZero() || rep.ExpiresAt.After(want.Add(time.Minute)) {
		t.Errorf("expires %v, want the timestamp's expiry (about %v)", rep.ExpiresAt, want)
	}
}
