package storetest

import (
	"bytes"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var tufCases = []testCase{
	{"TUFFiles", testTUFFiles},
	{"Pruner", testPruner},
}

// testPruner: snapshots past keep and older than every pin go, in
// bounded batches, the newest never; TUF files list by prefix and page,
// and a deletion skips the files a set names.
func testPruner(t *testing.T, f *fx) {
	pr, ok := f.s.(store.Pruner)
	if !ok {
		t.Skip("store does not prune")
	}
	ctx := f.ctx
	t.Run("snapshots", func(t *testing.T) {
		tn, other := f.tenant(), f.tenant()
		var snaps []*catalog.Snapshot
		for range 6 {
			s, err := f.s.CreateSnapshot(ctx, tn.TenantID, fakeBuild(nil))
			must(t, err)
			snaps = append(snaps, s)
		}
		o, err := f.s.CreateSnapshot(ctx, other.TenantID, fakeBuild(nil))
		must(t, err)
		// keep 2, pinned sequence 3, batches of 1: 1 then 2 go.
		pins := []string{snaps[2].SnapshotID, o.SnapshotID, "snp_unknown"}
		var total []int
		for {
			n, err := pr.PruneSnapshots(ctx, tn.TenantID, 2, pins, 1)
			must(t, err)
			total = append(total, n)
			if n < 1 {
				break
			}
		}
		if len(total) != 3 {
			t.Errorf("batches = %v, want [1 1 0]", total)
		}
		for i, s := range snaps {
			_, err := f.s.Snapshot(ctx, s.SnapshotID)
			if gone := catalog.ErrorCode(err) == catalog.ENOTFOUND; gone != (i < 2) {
				t.Errorf("snapshot %d: err %v, want gone %v", s.Sequence, err, i < 2)
			}
			_, err = f.s.SnapshotBySequence(ctx, tn.TenantID, s.Sequence)
			if gone := catalog.ErrorCode(err) == catalog.ENOTFOUND; gone != (i < 2) {
				t.Errorf("snapshot %d by sequence: err %v, want gone %v", s.Sequence, err, i < 2)
			}
		}
		list, _, err := f.s.Snapshots(ctx, tn.TenantID, store.Page{Limit: 100})
		must(t, err)
		if len(list) != 4 {
			t.Errorf("listed %d snapshots, want 4", len(list))
		}
		// Without the pin, keep 1: only the newest stays, whatever keep.
		n, err := pr.PruneSnapshots(ctx, tn.TenantID, 1, nil, 100)
		must(t, err)
		if n != 3 {
			t.Errorf("pruned %d, want 3", n)
		}
		latest, err := f.s.LatestSnapshot(ctx, tn.TenantID)
		must(t, err)
		if latest.SnapshotID != snaps[5].SnapshotID || !bytes.Equal(latest.Envelope, snaps[5].Envelope) {
			t.Errorf("latest = %d, want %d with its envelope", latest.Sequence, snaps[5].Sequence)
		}
		next, err := f.s.CreateSnapshot(ctx, tn.TenantID, fakeBuild(nil))
		must(t, err)
		if next.Sequence != 7 {
			t.Errorf("next sequence after pruning = %d, want 7", next.Sequence)
		}
		if _, err := f.s.Snapshot(ctx, o.SnapshotID); err != nil {
			t.Errorf("the other tenant's snapshot: %v", err)
		}
	})
	t.Run("tuf files", func(t *testing.T) {
		s := f.s.(store.TUFFiles)
		var files []store.TUFFile
		for _, n := range []string{"metadata/1.snapshot.json", "metadata/2.snapshot.json", "metadata/3.snapshot.json", "metadata/1.root.json", "targets/docs/aa.x.json"} {
			files = append(files, store.TUFFile{Name: n, Data: []byte(n)})
		}
		must(t, s.PutTUFFiles(ctx, "ten_prune", files, map[string][]string{"current": {"metadata/3.snapshot.json"}}))
		must(t, s.PutTUFFiles(ctx, "ten_prunf", files[:1], nil)) // a scope sharing the prefix of the name
		names, err := pr.TUFNames(ctx, "ten_prune", "metadata/", "", 2)
		must(t, err)
		if len(names) != 2 || names[0] != "metadata/1.root.json" || names[1] != "metadata/1.snapshot.json" {
			t.Fatalf("first page = %v", names)
		}
		names, err = pr.TUFNames(ctx, "ten_prune", "metadata/", names[1], 10)
		must(t, err)
		if len(names) != 2 || names[0] != "metadata/2.snapshot.json" || names[1] != "metadata/3.snapshot.json" {
			t.Fatalf("second page = %v", names)
		}
		n, err := pr.DeleteTUFFiles(ctx, "ten_prune", []string{"metadata/1.snapshot.json", "metadata/3.snapshot.json", "metadata/9.snapshot.json"})
		must(t, err)
		if n != 1 {
			t.Errorf("deleted %d, want 1 (the current one and a missing one are skipped)", n)
		}
		_, err = s.TUFFile(ctx, "ten_prune", "metadata/1.snapshot.json")
		wantCode(t, err, catalog.ENOTFOUND)
		for _, keep := range []struct{ scope, name string }{{"ten_prune", "metadata/3.snapshot.json"}, {"ten_prunf", "metadata/1.snapshot.json"}} {
			if _, err := s.TUFFile(ctx, keep.scope, keep.name); err != nil {
				t.Errorf("%s %s: %v", keep.scope, keep.name, err)
			}
		}
	})
}

func testTUFFiles(t *testing.T, f *fx) {
	s, ok := f.s.(store.TUFFiles)
	if !ok {
		t.Skip("store does not keep TUF files")
	}
	ctx := f.ctx
	t.Run("put and get", func(t *testing.T) {
		files := []store.TUFFile{{Name: "metadata/1.targets.json", Data: []byte("t1")}, {Name: "metadata/timestamp.json", Data: []byte("ts1")}}
		must(t, s.PutTUFFiles(ctx, "ten_a", files, map[string][]string{"current": {"metadata/timestamp.json", "metadata/1.targets.json"}}))
		got, err := s.TUFFile(ctx, "ten_a", "metadata/1.targets.json")
		must(t, err)
		if !bytes.Equal(got, []byte("t1")) {
			t.Fatalf("file = %q, want t1", got)
		}
		set, err := s.TUFSet(ctx, "ten_a", "current")
		must(t, err)
		if len(set) != 2 || set[0].Name != "metadata/timestamp.json" || string(set[1].Data) != "t1" {
			t.Fatalf("set = %+v", set)
		}
	})
	t.Run("scopes are apart", func(t *testing.T) {
		_, err := s.TUFFile(ctx, "ten_b", "metadata/1.targets.json")
		wantCode(t, err, catalog.ENOTFOUND)
		set, err := s.TUFSet(ctx, "ten_b", "current")
		must(t, err)
		if set != nil {
			t.Fatalf("set of another scope = %+v, want nil", set)
		}
	})
	t.Run("overwrite keeps other sets", func(t *testing.T) {
		must(t, s.PutTUFFiles(ctx, "ten_a", []store.TUFFile{{Name: "metadata/timestamp.json", Data: []byte("ts2")}}, nil))
		set, err := s.TUFSet(ctx, "ten_a", "current")
		must(t, err)
		if len(set) != 2 || string(set[0].Data) != "ts2" {
			t.Fatalf("set after overwrite = %+v", set)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for name, err := range map[string]error{
			"set naming a missing file": s.PutTUFFiles(ctx, "ten_a", nil, map[string][]string{"current": {"metadata/9.targets.json"}}),
			"empty scope":               s.PutTUFFiles(ctx, "", nil, nil),
			"NUL in name":               s.PutTUFFiles(ctx, "ten_a", []store.TUFFile{{Name: "a\x00b"}}, nil),
		} {
			if got := catalog.ErrorCode(err); got != catalog.EINVALID {
				t.Errorf("%s: code = %q (%v), want %q", name, got, err, catalog.EINVALID)
			}
		}
		set, err := s.TUFSet(ctx, "ten_a", "current")
		must(t, err)
		if len(set) != 2 {
			t.Fatalf("a refused put changed the set: %+v", set)
		}
	})
}
