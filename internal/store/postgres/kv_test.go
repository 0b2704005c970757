package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/outpost/outpost/internal/store/kv"
)

// TestCursor_Behaviour checks the bbolt cursor semantics the shared logic
// relies on: byte-wise key order (NUL and 0xff included), scans across
// batch boundaries, Seek, Last and Prev.
func TestCursor_Behaviour(t *testing.T) {
	db, _ := openSchema(t, testURL(t))
	defer db.Close()
	ctx := context.Background()
	var keys [][]byte
	for i := range 500 {
		keys = append(keys, fmt.Appendf(nil, "k%04d", i))
	}
	keys = append(keys, []byte("k0100\x00a"), []byte("k0100\xff"), []byte("\x00"), []byte("\xff\xff"))
	err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
		b := w.Bucket([]byte("test"))
		for _, k := range keys {
			if err := b.Put(k, append([]byte("v:"), k...)); err != nil {
				return err
			}
		}
		return w.Bucket([]byte("other")).Put([]byte("k0000"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.SortFunc(want, bytes.Compare)

	view := func(t *testing.T, fn func(c kv.Cursor)) {
		t.Helper()
		if err := db.view(ctx, func(tx *kvTx) error { fn(tx.Bucket([]byte("test")).Cursor()); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("full scan in byte order", func(t *testing.T) {
		var got [][]byte
		view(t, func(c kv.Cursor) {
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if !bytes.Equal(v, append([]byte("v:"), k...)) {
					t.Errorf("value of %q = %q", k, v)
				}
				got = append(got, k)
			}
		})
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("got %d keys, want %d in byte order", len(got), len(want))
		}
	})
	t.Run("seek then next", func(t *testing.T) {
		view(t, func(c kv.Cursor) {
			k, _ := c.Seek([]byte("k0100"))
			if got := string(k); got != "k0100" {
				t.Errorf("seek = %q, want k0100", got)
			}
			k, _ = c.Next()
			if got := string(k); got != "k0100\x00a" {
				t.Errorf("next = %q, want k0100\\x00a", got)
			}
			if k, _ := c.Seek([]byte("\xff\xff\x00")); k != nil {
				t.Errorf("seek past end = %q, want nil", k)
			}
		})
	})
	t.Run("last and prev", func(t *testing.T) {
		view(t, func(c kv.Cursor) {
			k, _ := c.Last()
			if got := string(k); got != "\xff\xff" {
				t.Errorf("last = %q, want \\xff\\xff", got)
			}
			k, _ = c.Prev()
			if got := string(k); got != "k0499" {
				t.Errorf("prev = %q, want k0499", got)
			}
			k, _ = c.Next()
			if got := string(k); got != "\xff\xff" {
				t.Errorf("next after prev = %q, want \\xff\\xff", got)
			}
			if k, _ := c.Next(); k != nil {
				t.Errorf("next past end = %q, want nil", k)
			}
		})
	})
	t.Run("get absent, present and empty", func(t *testing.T) {
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			b := w.Bucket([]byte("test"))
			if v := b.Get([]byte("nope")); v != nil {
				t.Errorf("absent = %q, want nil", v)
			}
			if err := b.Put([]byte("empty"), nil); err != nil {
				return err
			}
			if v := b.Get([]byte("empty")); v == nil || len(v) != 0 {
				t.Errorf("empty = %#v, want non-nil empty", v)
			}
			if n := b.(kv.PrefixCounter).CountPrefix([]byte("k0100")); n != 3 {
				t.Errorf("countPrefix = %d, want 3", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failed query fails the transaction", func(t *testing.T) {
		boom := errors.New("boom")
		err := db.update(ctx, modeExclusive, nil, func(w *kvTx) error {
			w.fail(boom)
			return nil
		})
		if !errors.Is(err, boom) || !errors.Is(err, kv.ErrAborted) {
			t.Fatalf("err = %v, want boom, marked kv.ErrAborted", err)
		}
	})
}
