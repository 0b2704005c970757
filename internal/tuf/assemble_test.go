package tuf

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
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

// TestAssemblePublished_MatchesVerified: the manifest read back from the
// published files of a version is the one assembled from the verified
// repository; a file that is not the one the timestamp pins is refused.
func TestAssemblePublished_MatchesVerified(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(3, 30, 1)
	f.build(m)
	c := f.client(NewMemStore(), f.rootData)
	files := map[string][]byte{}
	read := func(ctx context.Context, path string) ([]byte, error) {
		if b, ok := files[path]; ok {
			return b, nil
		}
		rc, err := f.repo.Fetch(ctx, path, 64<<20)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	var a Assembler
	for i, step := range []func(){func() {}, func() { addRelease(m, 1, 1); f.build(m) }} {
		step()
		if _, err := c.Update(ctx); err != nil {
			t.Fatal(err)
		}
		want, err := c.Repository().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		got, err := AssemblePublished(ctx, f.tenantID, read, c.Repository().timestampData, &a)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("version %d: published manifest differs from the verified one", i)
		}
	}
	t.Run("a document that is not the signed one", func(t *testing.T) {
		top := c.Repository().Roles["targets"]
		tf := top.Signed.Targets[DocPolicies]
		files[TargetPath(DocPolicies, hex.EncodeToString(tf.Hashes["sha256"]))] = []byte("[]")
		defer clear(files)
		if _, err := AssemblePublished(ctx, f.tenantID, read, c.Repository().timestampData, nil); err == nil || !strings.Contains(err.Error(), "not the signed bytes") {
			t.Fatalf("got %v, want a refusal of the document", err)
		}
	})
	t.Run("a snapshot that is not the pinned one", func(t *testing.T) {
		files[MetadataPath("snapshot", c.Repository().Snapshot.Signed.Version)] = []byte("{}")
		defer clear(files)
		if _, err := AssemblePublished(ctx, f.tenantID, read, c.Repository().timestampData, nil); err == nil || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("got %v, want a refusal of the snapshot", err)
		}
	})
}

func TestMergeSorted_IsSorted(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs [][]int
	}{
		{"none", nil},
		{"empty runs", [][]int{{}, {}}},
		{"one run", [][]int{{1, 2, 3}}},
		{"interleaved", [][]int{{1, 4, 7, 10}, {2, 5, 8}, {3, 6, 9, 11, 12}, {}, {0}}},
		{"duplicates across runs", [][]int{{1, 1, 3}, {1, 2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []int
			for _, r := range tc.runs {
				want = append(want, r...)
			}
			slices.Sort(want)
			got := mergeSorted(tc.runs, len(want), func(a, b *int) int { return *a - *b })
			if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestAssemble_LeaseKeys: the vendor's lease keys travel as the signed
// document docs/lease_keys.json and come back in the manifest; a view
// without them publishes no such document (repositories published before
// it existed assemble with none), and a change of keys is a new version.
func TestAssemble_LeaseKeys(t *testing.T) {
	ctx := context.Background()
	keys := []snapshot.LeaseKey{{KeyID: "bb", PublicKey: "Yg=="}, {KeyID: "aa", PublicKey: "YQ=="}}
	cases := []struct {
		name string
		keys []snapshot.LeaseKey
		want []snapshot.LeaseKey
	}{
		{"none", nil, nil},
		{"two keys", keys, keys},
		{"one key after a retirement", keys[:1], keys[:1]},
	}
	f := newFixture(t, snapshottest.TenantID, ProductOptions{})
	c := f.client(NewMemStore(), f.rootData)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := view(1, 2, 1)
			m.LeaseKeys = tc.keys
			f.build(m)
			if _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			_, listed := c.Repository().Docs[DocLeaseKeys]
			if listed != (len(tc.keys) > 0) {
				t.Errorf("document %s listed %v, want %v", DocLeaseKeys, listed, len(tc.keys) > 0)
			}
			got, err := c.Repository().Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.LeaseKeys, tc.want) {
				t.Errorf("lease keys %+v, want %+v", got.LeaseKeys, tc.want)
			}
		})
	}
}
