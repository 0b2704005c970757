package tuf

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

// TestAssembler_ReusesUnchangedProducts: across versions an Assembler
// gives the manifest a fresh assembly gives, and keeps the part of every
// product whose roles did not change.
func TestAssembler_ReusesUnchangedProducts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(3, 30, 1)
	f.build(m)
	c := f.client(NewMemStore(), f.rootData)
	var a Assembler
	check := func(t *testing.T) map[string]*productPart {
		t.Helper()
		if _, err := c.Update(ctx); err != nil {
			t.Fatal(err)
		}
		before := map[string]*productPart{}
		for k, v := range a.parts {
			before[k] = v
		}
		got, err := a.Manifest(c.Repository())
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.Repository().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Fatalf("manifest differs:\ngot  %.600s\nwant %.600s", gb, wb)
		}
		return before
	}
	reused := func(before map[string]*productPart) []string {
		var out []string
		for k, v := range a.parts {
			if before[k] == v {
				out = append(out, k)
			}
		}
		return out
	}
	check(t)
	pid := func(i int) string { return m.Products[i].ProductID }

	t.Run("one release: the other products reused", func(t *testing.T) {
		addRelease(m, 2, 1)
		f.build(m)
		before := check(t)
		if got, want := len(reused(before)), 2; got != want {
			t.Fatalf("reused %v, want the 2 products other than %s", reused(before), pid(2))
		}
		if before[pid(2)] == a.parts[pid(2)] {
			t.Fatalf("product %s reused after its release", pid(2))
		}
	})
	t.Run("revocation in product 0", func(t *testing.T) {
		for i := range m.Releases {
			if m.Releases[i].ProductID == pid(0) {
				m.Releases[i].Status = "REVOKED"
				break
			}
		}
		f.build(m)
		before := check(t)
		if before[pid(0)] == a.parts[pid(0)] || len(reused(before)) != 2 {
			t.Fatalf("reused %v, want all but %s", reused(before), pid(0))
		}
	})
	t.Run("a product made invisible, then visible again", func(t *testing.T) {
		full := *m
		hidden := *m
		hidden.Products = []snapshot.Product{m.Products[0], m.Products[2]}
		hidden.Releases = nil
		for _, r := range m.Releases {
			if r.ProductID != pid(1) {
				hidden.Releases = append(hidden.Releases, r)
			}
		}
		f.build(&hidden)
		check(t)
		if _, ok := a.parts[pid(1)]; ok || len(a.parts) != 2 {
			t.Fatalf("parts %v, want product %s dropped", len(a.parts), pid(1))
		}
		f.build(&full)
		check(t)
		if len(a.parts) != 3 {
			t.Fatalf("%d parts, want 3", len(a.parts))
		}
	})
	t.Run("nothing new: every product reused", func(t *testing.T) {
		before := check(t)
		if len(reused(before)) != 3 {
			t.Fatalf("reused %v, want all 3", reused(before))
		}
	})
}
