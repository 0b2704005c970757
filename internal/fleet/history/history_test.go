package history_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/fleet/history"
	"github.com/outpost/outpost/internal/store/kv"
)

func open(t *testing.T) *history.History {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "h.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range history.Buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return history.New(kv.Bolt(db))
}

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func TestHistory_AppendAndPrune(t *testing.T) {
	ctx := context.Background()
	t.Run("points come back oldest first, per series", func(t *testing.T) {
		h := open(t)
		for i := range 3 {
			if err := h.Append(ctx, history.Rollout, "ro_a", history.Point{At: t0.Add(time.Duration(2-i) * time.Hour), Percentage: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Append(ctx, history.Rollout, "ro_ab", history.Point{At: t0, Percentage: 99}); err != nil {
			t.Fatal(err)
		}
		got, err := h.Points(ctx, history.Rollout, "ro_a")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Percentage != 2 || got[2].Percentage != 0 {
			t.Errorf("got %+v, want 3 points oldest first (2, 1, 0)", got)
		}
	})
	t.Run("points older than MaxAge are dropped", func(t *testing.T) {
		h := open(t)
		old := t0.Add(-history.MaxAge - time.Hour)
		for _, at := range []time.Time{old, t0.Add(-time.Hour), t0} {
			if err := h.Append(ctx, history.Entitlement, "ent_a", history.Point{At: at, Seats: 1}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := h.Points(ctx, history.Entitlement, "ent_a")
		if len(got) != 2 || !got[0].At.Equal(t0.Add(-time.Hour)) {
			t.Errorf("got %+v, want the two recent points", got)
		}
	})
	t.Run("a series keeps at most MaxPoints", func(t *testing.T) {
		h := open(t)
		n := history.MaxPoints + 5
		for i := range n {
			if err := h.Append(ctx, history.Rollout, "ro_b", history.Point{At: t0.Add(time.Duration(i) * time.Minute), Percentage: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := h.Points(ctx, history.Rollout, "ro_b")
		if len(got) != history.MaxPoints || got[0].Percentage != 5 || got[len(got)-1].Percentage != float64(n-1) {
			t.Errorf("got %d points from %v, want %d from 5", len(got), got[0].Percentage, history.MaxPoints)
		}
	})
	t.Run("a bad id is refused", func(t *testing.T) {
		h := open(t)
		for _, id := range []string{"", "a/b"} {
			if err := h.Append(ctx, history.Rollout, id, history.Point{At: t0}); !errors.Is(err, history.ErrBadID) {
				t.Errorf("id %q: got %v, want ErrBadID", id, err)
			}
		}
	})
}

func TestPoint_Rates(t *testing.T) {
	cases := []struct {
		name           string
		p              history.Point
		adopt, failure float64
	}{
		{"no reports", history.Point{}, -1, -1},
		{"a fifth failed", history.Point{InstallsOK: 40, InstallsFailed: 10, InstallsProduct: 80}, 50, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Adoption(); got != c.adopt {
				t.Errorf("adoption = %v, want %v", got, c.adopt)
			}
			if got := c.p.FailureRate(); got != c.failure {
				t.Errorf("failure rate = %v, want %v", got, c.failure)
			}
		})
	}
}

// BenchmarkHistory_AppendFullSeries appends to a series already at
// MaxPoints on bbolt (each append prunes the oldest point).
func BenchmarkHistory_AppendFullSeries(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "h.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(history.Buckets[0]); return err })
	h := history.New(kv.Bolt(db))
	ctx := context.Background()
	at := t0
	for range history.MaxPoints {
		at = at.Add(time.Minute)
		if err := h.Append(ctx, history.Rollout, "ro_bench", history.Point{At: at}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Minute)
		if err := h.Append(ctx, history.Rollout, "ro_bench", history.Point{At: at}); err != nil {
			b.Fatal(err)
		}
	}
}
