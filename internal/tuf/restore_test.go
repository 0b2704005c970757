package tuf

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// TestRestore_NextBuildShipsTheSame restores the builder's state from the
// published files (a control plane restart) and checks that the next
// build ships exactly what the uninterrupted builder ships.
func TestRestore_NextBuildShipsTheSame(t *testing.T) {
	ctx := context.Background()
	for _, perBin := range []int{0, 4} {
		f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: perBin})
		m := view(2, 30, 1)
		f.build(m)

		ps, err := NewProductSet(ProductOptions{PerBin: perBin}, f.product)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Products {
			if err := ps.Restore(p.ProductID, f.products.Files(p.ProductID)); err != nil {
				t.Fatal(err)
			}
		}
		docs := map[string][]byte{}
		var ts, sn, tg []byte
		for _, x := range f.state.Files() {
			switch {
			case x.Path == "metadata/timestamp.json":
				ts = x.Data
			case strings.HasSuffix(x.Path, ".snapshot.json"):
				sn = x.Data
			case strings.HasSuffix(x.Path, ".targets.json"):
				tg = x.Data
			default:
				path := strings.TrimPrefix(x.Path, "targets/")
				dir, base, _ := strings.Cut(path, "/")
				_, name, _ := strings.Cut(base, ".")
				docs[dir+"/"+name] = x.Data
			}
		}
		st, err := RestoreState(f.tenantID, ts, sn, tg, docs)
		if err != nil {
			t.Fatal(err)
		}
		restored := &Builder{TenantID: f.tenantID, Products: ps, Keys: f.builder.Keys}

		addRelease(m, 1, 1)
		m.Policies[0].Priority++
		want := paths(f.build(m))
		_, files, err := restored.Build(ctx, st, m, f.now)
		if err != nil {
			t.Fatal(err)
		}
		if got := paths(files); !slices.Equal(got, want) {
			t.Fatalf("perBin %d: after restore got %v, want %v", perBin, got, want)
		}
	}
}
