package controlplane

import (
	"maps"
	"slices"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// TestBundleBases_HeldByTheMirror: a bundle offers deltas only from the
// artifacts a mirror at the since version holds: ACTIVE releases in its
// channels whose target the workflow did not find added or changed.
func TestBundleBases_HeldByTheMirror(t *testing.T) {
	m := &snapshot.Manifest{
		Artifacts: []snapshot.Artifact{{ArtifactID: "art_s", SHA256: "s"}, {ArtifactID: "art_b", SHA256: "b"}, {ArtifactID: "art_r", SHA256: "r"}, {ArtifactID: "art_n", SHA256: "n"}},
		Releases: []snapshot.Release{
			{ReleaseID: "rel_s", ProductID: "prd_1", Channel: "stable", Status: catalog.ReleaseActive, Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_s", ArtifactID: "art_s"}}},
			{ReleaseID: "rel_b", ProductID: "prd_1", Channel: "beta", Status: catalog.ReleaseActive, Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_b", ArtifactID: "art_b"}}},
			{ReleaseID: "rel_r", ProductID: "prd_1", Channel: "stable", Status: "REVOKED", Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_r", ArtifactID: "art_r"}}},
			{ReleaseID: "rel_n", ProductID: "prd_1", Channel: "stable", Status: catalog.ReleaseActive, Artifacts: []snapshot.ReleaseArtifact{{ReleaseArtifactID: "ra_n", ArtifactID: "art_n"}}},
		},
	}
	added := []tuf.Target{{Path: tuf.ArtifactTarget("prd_1", "ra_n")}}
	cases := []struct {
		name string
		got  map[string]bool
		want []string
	}{
		{"TUF, every channel, the new target left out", heldTUFBases(m, added, nil), []string{"b", "s"}},
		{"TUF, stable only", heldTUFBases(m, added, []string{"stable"}), []string{"s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := slices.Sorted(maps.Keys(c.got)); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
