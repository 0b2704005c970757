package sync_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

func makeDelta(t *testing.T, base, target []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := delta.Build(context.Background(), &out,
		delta.Source{R: bytes.NewReader(base), Size: int64(len(base))},
		delta.Source{R: bytes.NewReader(target), Size: int64(len(target))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// publishWithDelta publishes seq with base (art_1) and target (art_2) and
// a signed delta dlt_1 from one to the other whose bytes are signed; the
// control plane serves served for it.
func (r *rig) publishWithDelta(t *testing.T, seq int64, base, target, signed, served []byte) {
	t.Helper()
	arts := []synctest.Art{{ID: "art_1", Data: base}, {ID: "art_2", Data: target}}
	m := r.v.Manifest(seq, arts)
	m.Deltas = []snapshot.Delta{{
		DeltaID: "dlt_1", FromArtifactID: "art_1", ToArtifactID: "art_2", FromSHA256: synctest.SHA(base),
		ToSHA256: synctest.SHA(target), SHA256: synctest.SHA(signed), SizeBytes: int64(len(signed)),
	}}
	r.cp.AddDelta("dlt_1", served)
	r.v.AddBlob(signed)
	r.v.Publish(m)
	// The repository serves served under the signed delta's target path.
	for _, p := range r.v.TUF.Repo.Paths() {
		if strings.Contains(p, "/"+synctest.SHA(signed)+".") {
			r.v.TUF.Repo.Set(p, served)
		}
	}
}

func TestSyncer_Deltas(t *testing.T) {
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

	cases := []struct {
		name           string
		signed, served []byte
		rebuilt        bool
	}{
		{"a signed delta rebuilds the artifact from the held base", good, good, true},
		{"a corrupted delta is refused, the whole artifact fetched", good, corrupt, false},
		{"a truncated delta is refused, the whole artifact fetched", good, good[:len(good)-7], false},
		{"a signed delta that rebuilds another artifact is refused, the whole artifact fetched", wrong, wrong, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.publish(t, 1, []synctest.Art{{ID: "art_1", Data: base}})
			if _, err := r.s.Once(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.publishWithDelta(t, 2, base, target, c.signed, c.served)
			res, err := r.s.Once(context.Background())
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if got := res.Rebuilt == 1; got != c.rebuilt {
				t.Errorf("rebuilt %d artifacts, want rebuilt=%v", res.Rebuilt, c.rebuilt)
			}
			if got := r.cp.Served(synctest.SHA(target)) > 0; got == c.rebuilt {
				t.Errorf("whole artifact served %d bytes, want rebuilt=%v", r.cp.Served(synctest.SHA(target)), c.rebuilt)
			}
			got, err := os.ReadFile(r.cache.Path(synctest.SHA(target)))
			if err != nil || !bytes.Equal(got, target) {
				t.Fatalf("cache holds %d bytes (%v), want the target", len(got), err)
			}
			if r.heldSeq(t) != 2 {
				t.Errorf("held version %d, want 2", r.heldSeq(t))
			}
			// The mirror keeps the delta to serve it only when it is the
			// signed one.
			if has := r.cache.Has(synctest.SHA(c.signed), int64(len(c.signed))); has != bytes.Equal(c.signed, c.served) {
				t.Errorf("cache holds the signed delta: %v", has)
			}
			if c.rebuilt && res.Bytes >= int64(len(target)) {
				t.Errorf("sync moved %d bytes for a %d-byte artifact", res.Bytes, len(target))
			}
		})
	}
	t.Run("a delta whose base the mirror lacks is never used", func(t *testing.T) {
		r := newRig(t)
		r.publishWithDelta(t, 1, base, target, good, good)
		res, err := r.s.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Rebuilt != 0 || r.cp.Served(synctest.SHA(target)) != int64(len(target)) {
			t.Errorf("rebuilt %d, whole artifact served %d bytes; want no rebuild", res.Rebuilt, r.cp.Served(synctest.SHA(target)))
		}
	})
}

// TestTUFSync_Deltas: in TUF mode the deltas come from the verified
// product documents; the mirror rebuilds the new artifact from the held
// one and never fetches the whole target.
func TestTUFSync_Deltas(t *testing.T) {
	r := newTUFRig(t, true)
	ctx := context.Background()
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	pid := r.m.Products[0].ProductID
	var baseArt snapshot.Artifact
	for _, rel := range r.m.Releases {
		if rel.ProductID == pid && len(rel.Artifacts) > 0 {
			for _, a := range r.m.Artifacts {
				if a.ArtifactID == rel.Artifacts[0].ArtifactID {
					baseArt = a
				}
			}
			break
		}
	}
	base := r.blobs[baseArt.SHA256]
	target := append(bytes.Clone(base), " and a new tail in 9.0.1"...)
	r.v.Now = r.v.Now.Add(time.Second)
	rel, _ := tuftest.AddRelease(r.m, 0, 1, "9.0.1")
	to := &r.m.Artifacts[len(r.m.Artifacts)-1]
	to.SHA256, to.SizeBytes = synctest.SHA(target), int64(len(target))
	dl := makeDelta(t, base, target)
	r.m.Deltas = []snapshot.Delta{{DeltaID: "dlt_tuf", FromArtifactID: baseArt.ArtifactID, ToArtifactID: to.ArtifactID,
		FromSHA256: baseArt.SHA256, ToSHA256: to.SHA256, SHA256: synctest.SHA(dl), SizeBytes: int64(len(dl))}}
	r.mu.Lock()
	r.deltas = map[string][]byte{"dlt_tuf": dl}
	r.mu.Unlock()
	r.v.Build(r.m)
	r.v.PublishArtifacts(r.m, map[string][]byte{to.SHA256: target})
	r.requests()
	res, err := r.s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Rebuilt != 1 {
		t.Fatalf("changed %v rebuilt %d, want a rebuild", res.Changed, res.Rebuilt)
	}
	for p := range r.requests() {
		if strings.Contains(p, rel.Artifacts[0].ReleaseArtifactID) {
			t.Errorf("fetched the whole target %s", p)
		}
	}
	if got, err := os.ReadFile(r.cache.Path(to.SHA256)); err != nil || !bytes.Equal(got, target) {
		t.Fatalf("cache: %d bytes, %v", len(got), err)
	}
}
