package snapshot_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// withDelta returns small() with one delta between its first two artifacts.
func withDelta() *snapshot.Manifest {
	m := small()
	a, b := m.Artifacts[0], m.Artifacts[1]
	m.Deltas = []snapshot.Delta{{
		DeltaID: "dlt_1", FromArtifactID: a.ArtifactID, ToArtifactID: b.ArtifactID,
		FromSHA256: a.SHA256, ToSHA256: b.SHA256, SHA256: snapshottest.SHA256(99), SizeBytes: 1234,
	}}
	return m
}

func TestEncode_Deltas(t *testing.T) {
	t.Run("absent when empty, as before deltas existed", func(t *testing.T) {
		b := encode(t, small())
		if bytes.Contains(b, []byte(`"deltas"`)) {
			t.Errorf("payload without deltas names deltas")
		}
	})
	t.Run("equals encoding/json and round-trips through Verify", func(t *testing.T) {
		m := withDelta()
		got := encode(t, m)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("Encode differs from encoding/json:\n got %s\nwant %s", got, want.Bytes())
		}
		v, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), nil, now)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !reflect.DeepEqual(v.Deltas, m.Deltas) {
			t.Errorf("got deltas %+v, want %+v", v.Deltas, m.Deltas)
		}
	})
}

func TestVerify_BadDeltas(t *testing.T) {
	cases := []struct {
		name string
		edit func(d *snapshot.Delta)
		want error
	}{
		{"from artifact not listed", func(d *snapshot.Delta) { d.FromArtifactID = "art_missing" }, snapshot.ErrDangling},
		{"to sha256 is not the artifact's", func(d *snapshot.Delta) { d.ToSHA256 = snapshottest.SHA256(77) }, snapshot.ErrDangling},
		{"bad delta sha256", func(d *snapshot.Delta) { d.SHA256 = "xyz" }, snapshot.ErrMalformed},
		{"empty delta", func(d *snapshot.Delta) { d.SizeBytes = 0 }, snapshot.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := withDelta()
			c.edit(&m.Deltas[0])
			_, err := snapshot.Verify(sign(t, m, keyA), snapshottest.Trust(1, keyA), nil, now)
			wantReject(t, err, c.want)
		})
	}
}

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
