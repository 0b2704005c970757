package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/outpost/outpost/internal/store/kv"
)

// TestWriteBuffer_Behaviour: a write transaction's buffered writes are
// seen by its own Gets and cursors, a value it read and then changed is
// not served stale from its read cache, a buffer larger than maxPending
// is flushed on the way, and nothing of a failed transaction remains.
func TestWriteBuffer_Behaviour(t *testing.T) {
	db, _ := openSchema(t, testURL(t))
	defer db.Close()
	ctx := context.Background()
	bk := []byte("buf")
	get := func(t *testing.T, k string) []byte {
		t.Helper()
		var v []byte
		if err := db.view(ctx, func(tx *kvTx) error { v = tx.Bucket(bk).Get([]byte(k)); return nil }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error { return w.Bucket(bk).Put([]byte("a"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	t.Run("read your writes", func(t *testing.T) {
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			b := w.Bucket(bk)
			steps := []struct {
				name string
				op   func() error
				k    string
				want string // "" for absent
			}{
				{"cached read", func() error { return nil }, "a", "1"},
				{"put over a cached read", func() error { return b.Put([]byte("a"), []byte("2")) }, "a", "2"},
				{"delete", func() error { return b.Delete([]byte("a")) }, "a", ""},
				{"put again", func() error { return b.Put([]byte("a"), []byte("3")) }, "a", "3"},
				{"new key", func() error { return b.Put([]byte("b"), []byte{}) }, "b", "\x00empty"},
			}
			for _, st := range steps {
				if err := st.op(); err != nil {
					return err
				}
				got := b.Get([]byte(st.k))
				switch {
				case st.want == "" && got != nil, st.want == "\x00empty" && (got == nil || len(got) != 0),
					st.want != "" && st.want != "\x00empty" && string(got) != st.want:
					return fmt.Errorf("%s: Get(%s) = %q, want %q", st.name, st.k, got, st.want)
				}
			}
			// A cursor sees the buffered writes.
			var keys []string
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				keys = append(keys, string(k))
			}
			if fmt.Sprint(keys) != "[a b]" {
				return fmt.Errorf("cursor keys %v, want [a b]", keys)
			}
			// After the flush the cache holds what was written.
			if got := b.Get([]byte("a")); string(got) != "3" {
				return fmt.Errorf("Get(a) after the flush = %q, want 3", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, "a"); string(got) != "3" {
			t.Fatalf("committed a = %q, want 3", got)
		}
	})
	t.Run("prefetch", func(t *testing.T) {
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			b := w.Bucket(bk)
			if err := b.Put([]byte("p"), []byte("buffered")); err != nil {
				return err
			}
			w.Prefetch([]kv.BucketKey{{Bucket: bk, Key: []byte("a")}, {Bucket: bk, Key: []byte("nope")}, {Bucket: bk, Key: []byte("p")}})
			for k, want := range map[string]string{"a": "3", "nope": "", "p": "buffered"} {
				got := b.Get([]byte(k))
				if (want == "" && got != nil) || (want != "" && string(got) != want) {
					return fmt.Errorf("Get(%s) after prefetch = %q, want %q", k, got, want)
				}
			}
			return b.Delete([]byte("p"))
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("large transaction", func(t *testing.T) {
		n := maxPending*2 + 10
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			for i := range n {
				if err := w.Bucket(bk).Put(fmt.Appendf(nil, "big-%06d", i), []byte("x")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, fmt.Sprintf("big-%06d", n-1)); string(got) != "x" {
			t.Fatalf("last key = %q, want x", got)
		}
	})
	t.Run("failed transaction leaves nothing", func(t *testing.T) {
		boom := errors.New("boom")
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			for i := range maxPending + 1 { // one flush happens inside
				if err := w.Bucket(bk).Put(fmt.Appendf(nil, "gone-%06d", i), []byte("x")); err != nil {
					return err
				}
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		for _, k := range []string{"gone-000000", fmt.Sprintf("gone-%06d", maxPending)} {
			if got := get(t, k); got != nil {
				t.Fatalf("%s = %q after a failed transaction, want absent", k, got)
			}
		}
	})
}
