package snapshot_test

import (
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

func TestBuild_ListsDeltasOfListedArtifacts(t *testing.T) {
	in := snapshottest.Input(1, 2, 1)
	base := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "snp_x", Now: snapshottest.Now, TTL: 1e12})
	a, b := base.Artifacts[0], base.Artifacts[1]
	ok := snapshot.Delta{DeltaID: "dlt_ok", FromArtifactID: a.ArtifactID, ToArtifactID: b.ArtifactID, FromSHA256: a.SHA256, ToSHA256: b.SHA256, SHA256: snapshottest.SHA256(50), SizeBytes: 10}
	stale := ok
	stale.DeltaID, stale.FromSHA256 = "dlt_stale", snapshottest.SHA256(51)
	unlisted := ok
	unlisted.DeltaID, unlisted.FromArtifactID = "dlt_unlisted", "art_other"
	m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: "snp_x", Now: snapshottest.Now, TTL: 1e12, Deltas: []snapshot.Delta{unlisted, ok, stale}})
	if len(m.Deltas) != 1 || m.Deltas[0].DeltaID != "dlt_ok" {
		t.Fatalf("got deltas %+v, want only dlt_ok", m.Deltas)
	}
}
