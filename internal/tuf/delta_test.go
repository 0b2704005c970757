package tuf

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// TestBuilder_RoundTripDeltas: the deltas of a manifest travel signed in
// their product's document and come back from the verified repository.
func TestBuilder_RoundTripDeltas(t *testing.T) {
	for _, perBin := range []int{0, 4} {
		f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: perBin})
		want := view(2, 12, 1)
		sha := map[string]string{}
		for _, a := range want.Artifacts {
			sha[a.ArtifactID] = a.SHA256
		}
		// Two artifacts of the first product.
		var arts []string
		for _, r := range want.Releases {
			if r.ProductID == want.Products[0].ProductID {
				for _, ra := range r.Artifacts {
					arts = append(arts, ra.ArtifactID)
				}
			}
		}
		if len(arts) < 3 {
			t.Fatalf("fixture has %d artifacts in product 0", len(arts))
		}
		want.Deltas = []snapshot.Delta{
			{DeltaID: "dlt_a", FromArtifactID: arts[0], ToArtifactID: arts[1], FromSHA256: sha[arts[0]], ToSHA256: sha[arts[1]], SHA256: snapshottest.SHA256(901), SizeBytes: 10},
			{DeltaID: "dlt_b", FromArtifactID: arts[1], ToArtifactID: arts[2], FromSHA256: sha[arts[1]], ToSHA256: sha[arts[2]], SHA256: snapshottest.SHA256(902), SizeBytes: 20},
		}
		f.build(want)
		c := f.client(NewMemStore(), f.rootData)
		if _, err := c.Update(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, err := c.Repository().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if g, w := normalise(t, got), normalise(t, want); !reflect.DeepEqual(g.Deltas, w.Deltas) || !reflect.DeepEqual(g, w) {
			gb, _ := json.Marshal(g.Deltas)
			wb, _ := json.Marshal(w.Deltas)
			t.Fatalf("perBin %d: deltas differ:\ngot  %s\nwant %s", perBin, gb, wb)
		}
	}
}

// TestBuilder_DeltaTargets: each delta is also a target of its product's
// role (DeltaTarget, with its length, sha256 and custom fields), with and
// without bins; the client reports no delta target as an artifact; the
// same view again ships nothing, and a product set restored from the
// published files builds the same product role.
func TestBuilder_DeltaTargets(t *testing.T) {
	ctx := context.Background()
	for _, perBin := range []int{0, 4} {
		f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: perBin})
		m := view(2, 12, 1)
		pid := m.Products[0].ProductID
		sha := map[string]string{}
		for _, a := range m.Artifacts {
			sha[a.ArtifactID] = a.SHA256
		}
		var arts []string
		for _, r := range m.Releases {
			if r.ProductID == pid {
				for _, ra := range r.Artifacts {
					arts = append(arts, ra.ArtifactID)
				}
			}
		}
		d := snapshot.Delta{DeltaID: "dlt_a", FromArtifactID: arts[0], ToArtifactID: arts[1], FromSHA256: sha[arts[0]], ToSHA256: sha[arts[1]], SHA256: snapshottest.SHA256(901), SizeBytes: 10}
		m.Deltas = []snapshot.Delta{d}
		f.build(m)
		c := f.client(NewMemStore(), f.rootData)
		ch, err := c.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		path := DeltaTarget(pid, d.FromSHA256, d.ToSHA256)
		tf := c.Repository().Roles[ProductRole(pid)].Signed.Targets[path]
		if tf == nil {
			t.Fatalf("perBin %d: the product role does not list %s", perBin, path)
		}
		var custom DeltaCustom
		if tf.Custom != nil {
			_ = json.Unmarshal(*tf.Custom, &custom)
		}
		want := DeltaCustom{Delta: d.DeltaID, From: d.FromSHA256, FromArtifact: d.FromArtifactID, To: d.ToSHA256, ToArtifact: d.ToArtifactID}
		if got := hex.EncodeToString(tf.Hashes["sha256"]); tf.Length != d.SizeBytes || got != d.SHA256 || custom != want {
			t.Errorf("perBin %d: target %s: length %d sha256 %s custom %+v, want %d %s %+v", perBin, path, tf.Length, got, custom, d.SizeBytes, d.SHA256, want)
		}
		for _, tg := range ch.Targets {
			if IsDeltaTarget(tg.Path) {
				t.Errorf("perBin %d: the client reports delta target %s as an artifact", perBin, tg.Path)
			}
		}
		if files := f.build(m); len(files) != 0 {
			t.Errorf("perBin %d: the same view shipped %v", perBin, paths(files))
		}
		ps, err := NewProductSet(ProductOptions{PerBin: perBin}, f.product)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Restore(pid, f.products.Files(pid)); err != nil {
			t.Fatal(err)
		}
		var rels []snapshot.Release
		for _, r := range m.Releases {
			if r.ProductID == pid {
				rels = append(rels, r)
			}
		}
		byID := map[string]*snapshot.Artifact{}
		for i := range m.Artifacts {
			byID[m.Artifacts[i].ArtifactID] = &m.Artifacts[i]
		}
		files, err := ps.UpdateWithDeltas(ctx, m.Products[0], rels, byID, m.Deltas, f.now)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 0 {
			t.Errorf("perBin %d: the restored product set re-signed %v", perBin, paths(files))
		}
	}
}

func TestParseDeltaTarget(t *testing.T) {
	a, b := snapshottest.SHA256(1), snapshottest.SHA256(2)
	cases := []struct {
		path string
		ok   bool
	}{
		{DeltaTarget("prd_x", a, b), true},
		{"prd_x/delta-" + a, false},
		{"prd_x/delta-" + a + "-" + b[:63], false},
		{"prd_x/deltas/" + a + "-" + b, false},
		{"prd_x/ra_1", false},
		{"/delta-" + a + "-" + b, false},
		{"prd_x/delta-" + strings.ToUpper(a) + "-" + b, false},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			pid, from, to, ok := ParseDeltaTarget(c.path)
			if ok != c.ok || (ok && (pid != "prd_x" || from != a || to != b)) {
				t.Errorf("got %q %q %q %v, want ok=%v", pid, from, to, ok, c.ok)
			}
		})
	}
}
