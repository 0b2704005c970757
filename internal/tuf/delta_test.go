package tuf

import (
	"context"
	"encoding/json"
	"reflect"
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
