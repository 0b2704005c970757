package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var concurrentCases = []testCase{
	{"ConcurrentCatalogWrites", func(t *testing.T, f *fx) { ConcurrentCatalogWrites(t, []store.Store{f.s}) }},
}

// ConcurrentCatalogWrites runs 16 concurrent writers per store of stores
// (instances on one database, or one store) on conflicting catalog
// writes: each round, every writer creates the same product id, then a
// release of the same product+channel+version (each its own release id),
// then a release of its own, and one writer names a missing product.
// Exactly one of each conflicting write wins, every other is refused with
// ECONFLICT and leaves nothing behind, the writes of their own all land,
// and the audit chain verifies with one event per winning write.
func ConcurrentCatalogWrites(t *testing.T, stores []store.Store) {
	const writers, rounds = 16, 3
	f := newFx(t, stores[0])
	n := writers * len(stores)
	for round := range rounds {
		before := f.lastSeq()
		productID := catalog.NewID(catalog.PrefixProduct)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := map[string]int{}
		releaseOf := map[string]string{} // own release id -> its writer's error
		for i := range n {
			s := stores[i%len(stores)]
			wg.Go(func() {
				count := func(what string, err error) {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins[what]++
					case catalog.ErrorCode(err) == catalog.ECONFLICT:
					case what == "missing" && catalog.ErrorCode(err) == catalog.ENOTFOUND:
					default:
						t.Errorf("round %d writer %d %s: %v", round, i, what, err)
					}
				}
				p := &catalog.Product{ProductID: productID, Name: fmt.Sprintf("writer %d", i)}
				count("product", s.CreateProduct(f.ctx, p))
				same := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: "stable", Version: "1.0.0"}
				count("same release", s.CreateRelease(f.ctx, same))
				own := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: "stable", Version: fmt.Sprintf("2.0.%d", i)}
				err := s.CreateRelease(f.ctx, own)
				count("own release", err)
				mu.Lock()
				releaseOf[own.ReleaseID] = fmt.Sprint(err)
				mu.Unlock()
				if i == 0 {
					missing := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: "prd_missing", Channel: "stable", Version: "1.0.0"}
					count("missing", s.CreateRelease(f.ctx, missing))
				}
			})
		}
		wg.Wait()
		want := map[string]int{"product": 1, "same release": 1, "own release": n}
		for what, w := range want {
			if got := wins[what]; got != w {
				t.Errorf("round %d: %d writers won %q, want %d", round, got, what, w)
			}
		}
		if wins["missing"] != 0 {
			t.Errorf("round %d: a release of a missing product was created", round)
		}
		for id, err := range releaseOf {
			if _, got := f.s.Release(f.ctx, id); got != nil && err == "<nil>" {
				t.Errorf("round %d: release %s was acknowledged but is missing: %v", round, id, got)
			}
		}
		rels, _, err := f.s.Releases(f.ctx, productID, store.Page{Limit: store.MaxLimit})
		must(t, err)
		if len(rels) != n+1 {
			t.Errorf("round %d: product holds %d releases, want %d", round, len(rels), n+1)
		}
		types := map[string]int{}
		for _, ev := range f.eventsAfter(before) {
			types[ev.EventType]++
		}
		if types["product.created"] != 1 || types["release.created"] != n+1 || len(types) != 2 {
			t.Errorf("round %d: audit events %v, want 1 product.created and %d release.created", round, types, n+1)
		}
	}
	f.verifyChain()
}
