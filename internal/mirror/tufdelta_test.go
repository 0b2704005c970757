package mirror_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

// TestMirror_TUFDeltaTarget: a signed delta is a target of its
// product's role (tuf.DeltaTarget). A TUF-mode mirror syncing from a
// plain TUF repository fetches it by its target path and rebuilds the
// new artifact from it, and the unmodified go-tuf updater, through the
// mirror, finds the delta target and downloads and verifies its bytes;
// a delta target the metadata does not list is not found.
func TestMirror_TUFDeltaTarget(t *testing.T) {
	s := newTUFSite(t)
	pid := s.m.Products[0].ProductID
	var from snapshot.Artifact
	var fromPath string
	for _, rel := range s.m.Releases {
		if rel.ProductID != pid || len(rel.Artifacts) == 0 || rel.Status != "ACTIVE" {
			continue
		}
		for _, a := range s.m.Artifacts {
			if a.ArtifactID == rel.Artifacts[0].ArtifactID {
				from, fromPath = a, tuf.ArtifactTarget(pid, rel.Artifacts[0].ReleaseArtifactID)
			}
		}
		break
	}
	base := s.v.Repo.Get(tuf.TargetPath(fromPath, from.SHA256))
	if base == nil {
		t.Fatalf("no bytes for %s", fromPath)
	}
	next := append(bytes.Clone(base), " and a new tail in 9.0.1"...)

	s.v.Now = s.v.Now.Add(time.Second)
	tuftest.AddRelease(s.m, 0, 1, "9.0.1")
	to := &s.m.Artifacts[len(s.m.Artifacts)-1]
	to.SHA256, to.SizeBytes = sumOf(next), int64(len(next))
	var dl bytes.Buffer
	if _, err := delta.Build(context.Background(), &dl, delta.Source{R: bytes.NewReader(base), Size: int64(len(base))},
		delta.Source{R: bytes.NewReader(next), Size: int64(len(next))}, delta.Options{}); err != nil {
		t.Fatal(err)
	}
	d := snapshot.Delta{DeltaID: "dlt_interop", FromArtifactID: from.ArtifactID, ToArtifactID: to.ArtifactID,
		FromSHA256: from.SHA256, ToSHA256: to.SHA256, SHA256: sumOf(dl.Bytes()), SizeBytes: int64(dl.Len())}
	s.m.Deltas = []snapshot.Delta{d}
	s.v.Build(s.m)
	s.v.PublishArtifacts(s.m, map[string][]byte{to.SHA256: next})
	target := tuf.DeltaTarget(pid, d.FromSHA256, d.ToSHA256)
	s.v.Repo.Set(tuf.TargetPath(target, d.SHA256), dl.Bytes())

	res, err := s.mir.Syncer().Once(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if res.Rebuilt != 1 {
		t.Errorf("the mirror rebuilt %d artifacts, want 1 (from the delta target)", res.Rebuilt)
	}

	dir := t.TempDir()
	got, err := goTUF(t, s, dir, target)
	if err != nil {
		t.Fatalf("go-tuf through the mirror: %v", err)
	}
	if !bytes.Equal(got, dl.Bytes()) {
		t.Fatalf("downloaded %d bytes, want the %d-byte delta", len(got), dl.Len())
	}
	t.Run("a delta target the metadata does not list is not found", func(t *testing.T) {
		if _, err := goTUF(t, s, dir, tuf.DeltaTarget(pid, d.ToSHA256, d.FromSHA256)); err == nil {
			t.Fatal("go-tuf found an unlisted delta target")
		}
	})
}
