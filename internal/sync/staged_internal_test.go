package sync

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/tuf"
)

// TestStagedStore_Batch: a network sync's writes are staged (reads see
// them), written out in order once they pass the limit and by flush; an
// import's staged writes reach mirror.db only by flush.
func TestStagedStore_Batch(t *testing.T) {
	ctx := context.Background()
	st, err := state.Open(filepath.Join(t.TempDir(), "mirror.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := st.TUFStore()
	s := &stagedStore{base: base}
	doc := func(n byte) []byte { return []byte{'[', '"', 'a' + n, '"', ']'} } // 5 bytes
	inBase := func(name string) bool {
		_, err := base.Get(ctx, name)
		if err != nil && !errors.Is(err, tuf.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	t.Run("batch: written out past the limit, then by flush", func(t *testing.T) {
		s.batch(10)
		for i, name := range []string{"targets/docs/a.json", "targets/docs/b.json", "targets/docs/c.json"} {
			if err := s.Put(ctx, name, doc(byte(i))); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, name); err != nil || string(got) != string(doc(byte(i))) {
				t.Fatalf("%s: staged file not read back: %q, %v", name, got, err)
			}
		}
		if got := []bool{inBase("targets/docs/a.json"), inBase("targets/docs/b.json"), inBase("targets/docs/c.json")}; !got[0] || !got[1] || got[2] {
			t.Fatalf("in mirror.db before flush: %v, want the first two (10 bytes) only", got)
		}
		if err := s.flush(ctx); err != nil {
			t.Fatal(err)
		}
		if !inBase("targets/docs/c.json") || s.staging {
			t.Fatal("flush did not write the rest and write through again")
		}
	})
	t.Run("stage: nothing reaches mirror.db before flush, discard drops it", func(t *testing.T) {
		s.stage()
		for i := range 5 {
			if err := s.Put(ctx, "targets/docs/d.json", doc(byte(i))); err != nil {
				t.Fatal(err)
			}
		}
		if inBase("targets/docs/d.json") {
			t.Fatal("an import's staged file reached mirror.db before flush")
		}
		s.discard()
		if _, err := s.Get(ctx, "targets/docs/d.json"); !errors.Is(err, tuf.ErrNotFound) {
			t.Fatalf("after discard: got %v, want ErrNotFound", err)
		}
	})
}
