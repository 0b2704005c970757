//go:build !race

package update

import (
	"testing"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/update/updatetest"
)

// TestCheck_ZeroAllocs pins the hot path's promise: a check (valid query,
// offered or not, with rollouts and policies) allocates nothing, and
// encoding the answer into a large enough buffer neither.
func TestCheck_ZeroAllocs(t *testing.T) {
	opts := updatetest.Options{Products: 4, Releases: 200, Policies: 8}
	e, err := New(updatetest.Manifest(opts))
	if err != nil {
		t.Fatal(err)
	}
	queries := make([]Query, 0, 200)
	for _, raw := range updatetest.Queries(opts, 400, 9) {
		var q Query
		if ParseRawQuery(raw, &q) == nil {
			if _, err := e.Check(&q, now); err == nil {
				queries = append(queries, q)
			}
		}
	}
	buf := make([]byte, 0, 8192)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		q := &queries[i%len(queries)]
		i++
		d, _ := e.Check(q, now)
		buf = d.AppendJSON(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("allocs per check = %v, want 0", allocs)
	}
}

// TestNew_AllocsIndependentOfSize pins the index's promise: a fixed number
// of allocations whatever the number of releases (none per release).
func TestNew_AllocsIndependentOfSize(t *testing.T) {
	for _, n := range []int{100, 2000} {
		m := snapshottest.Manifest(1, n, 1)
		allocs := testing.AllocsPerRun(5, func() {
			if _, err := New(m); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 64 {
			t.Errorf("%d releases: %v allocations, want at most 64", n, allocs)
		}
	}
}
