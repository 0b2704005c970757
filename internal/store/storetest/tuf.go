package storetest

import (
	"bytes"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var tufCases = []testCase{
	{"TUFFiles", testTUFFiles},
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
