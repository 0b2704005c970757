package sync_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/tuf"
)

// deltaBundle is a TUF bundle of the vendor's newest version for a
// mirror holding since, carrying, instead of the artifact to, the bytes
// carried as the signed delta (from base to to, sha256 and length of
// signed: a pseudo-target).
func deltaBundle(t *testing.T, r *rig, since int64, base, to, signed, carried []byte) []byte {
	t.Helper()
	var pid string
	for _, p := range r.v.TUF.Repo.Paths() {
		if strings.Contains(p, "/"+synctest.SHA(to)+".") {
			pid = strings.Split(strings.TrimPrefix(p, "targets/"), "/")[0]
		}
	}
	if pid == "" {
		t.Fatal("the new artifact is not published")
	}
	return r.v.BundleCarrying(t, since, func([]tuf.Target) []tuf.Target {
		return []tuf.Target{{Path: tuf.DeltaTarget(pid, synctest.SHA(base), synctest.SHA(to)), Length: int64(len(carried)), SHA256: synctest.SHA(signed)}}
	}, func(tuf.Target) []byte { return carried })
}

// TestImport_BundledDeltas: a bundle may carry, instead of an artifact,
// the signed delta to it from an artifact the mirror holds; the import
// rebuilds the artifact, verifies it and serves it, and refuses the
// whole bundle (nothing changed) when the delta is corrupted, rebuilds
// something else, or has a base the mirror lacks.
func TestImport_BundledDeltas(t *testing.T) {
	base := make([]byte, 512<<10)
	rand.Read(base)
	target := bytes.Clone(base)
	copy(target[100<<10:], "a one-line change in the new version")
	good := makeDelta(t, base, target)
	other := make([]byte, len(target))
	rand.Read(other)
	wrong := makeDelta(t, base, other) // a real delta, for another target
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0x55
	ctx := context.Background()

	// signed publishes version 2 listing the delta dl from base to target.
	signed := func(r *rig, dl []byte) {
		m := r.v.Manifest(2, []synctest.Art{{ID: "art_1", Data: base}, {ID: "art_2", Data: target}})
		m.Deltas = []snapshot.Delta{{
			DeltaID: "dlt_1", FromArtifactID: "art_1", ToArtifactID: "art_2", FromSHA256: synctest.SHA(base),
			ToSHA256: synctest.SHA(target), SHA256: synctest.SHA(dl), SizeBytes: int64(len(dl)),
		}}
		r.v.Publish(m)
	}
	// holding is a mirror that imported a bundle of version 1 with the base.
	holding := func(t *testing.T) *rig {
		r := newRig(t)
		r.v.Publish(r.v.Manifest(1, []synctest.Art{{ID: "art_1", Data: base}}))
		if _, err := r.s.Import(ctx, bytes.NewReader(r.v.Bundle(t, 0)), false); err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("a bundled delta rebuilds the artifact, which the mirror serves", func(t *testing.T) {
		r := holding(t)
		signed(r, good)
		b := deltaBundle(t, r, 1, base, target, good, good)
		if len(b) >= len(target) {
			t.Errorf("bundle is %d bytes for a %d-byte artifact", len(b), len(target))
		}
		dry, err := r.s.Import(ctx, bytes.NewReader(b), true)
		if err != nil || dry.Rebuilt != 1 || r.heldSeq(t) != 1 || r.cache.Has(synctest.SHA(target), int64(len(target))) {
			t.Fatalf("dry run: %+v, %v; held %d", dry, err, r.heldSeq(t))
		}
		rep, err := r.s.Import(ctx, bytes.NewReader(b), false)
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		if rep.Rebuilt != 1 || rep.Imported != 1 || rep.Bytes != int64(len(good)) {
			t.Errorf("report: rebuilt %d imported %d bytes %d, want 1, 1, %d", rep.Rebuilt, rep.Imported, rep.Bytes, len(good))
		}
		if got := r.heldSeq(t); got != 2 {
			t.Errorf("held sequence %d, want 2", got)
		}
		got, err := os.ReadFile(r.cache.Path(synctest.SHA(target)))
		if err != nil || !bytes.Equal(got, target) {
			t.Fatalf("cache holds %d bytes (%v), want the target", len(got), err)
		}
		if !r.cache.Has(synctest.SHA(good), int64(len(good))) {
			t.Error("the delta is not cached to serve to clients")
		}
	})

	refused := []struct {
		name    string
		signed  []byte // the delta the snapshot lists
		carried []byte // the bytes the bundle carries under its name
		holds   bool   // the mirror holds the base
		want    string
	}{
		{"a corrupted delta", good, corrupt, true, "--no-deltas"},
		{"a truncated delta", good, good[:len(good)-7], true, "--no-deltas"},
		{"a signed delta that rebuilds another artifact", wrong, wrong, true, "--no-deltas"},
		{"a delta whose base the mirror lacks", good, good, false, "does not hold"},
	}
	for _, c := range refused {
		t.Run(c.name+" is refused, nothing changed", func(t *testing.T) {
			r := newRig(t)
			var wantSeq int64
			if c.holds {
				r, wantSeq = holding(t), 1
			}
			signed(r, c.signed)
			b := deltaBundle(t, r, wantSeq, base, target, c.signed, c.carried)
			for _, dry := range []bool{true, false} {
				_, err := r.s.Import(ctx, bytes.NewReader(b), dry)
				if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("dry run %v: err = %v, want ErrInvalid saying %q", dry, err, c.want)
				}
			}
			if got := r.heldSeq(t); got != wantSeq {
				t.Errorf("held sequence %d, want %d", got, wantSeq)
			}
			if r.cache.Has(synctest.SHA(target), int64(len(target))) || r.cache.Has(synctest.SHA(other), int64(len(other))) {
				t.Error("a rebuilt artifact reached the cache")
			}
			if r.cache.Has(synctest.SHA(c.signed), int64(len(c.signed))) {
				t.Error("the refused delta reached the cache")
			}
		})
	}
	t.Run("a delta the snapshot does not list is refused", func(t *testing.T) {
		r := holding(t)
		r.v.Publish(r.v.Manifest(2, []synctest.Art{{ID: "art_1", Data: base}, {ID: "art_2", Data: target}}))
		_, err := r.s.Import(ctx, bytes.NewReader(deltaBundle(t, r, 1, base, target, good, good)), false)
		if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "is not a delta") {
			t.Errorf("err = %v", err)
		}
		if r.heldSeq(t) != 1 {
			t.Error("the mirror changed")
		}
	})
}
