package sync_test

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/tuf"
)

// TestTUFSync_ClockBehind: a mirror whose clock reads more than
// tuf.ClockSkew before the timestamp's signed time refuses the metadata
// (its expiry checks would accept what expired in real time), on a first
// sync, on an idle check of the version it holds and after a restart,
// and says to set the clock; a small skew syncs.
func TestTUFSync_ClockBehind(t *testing.T) {
	behind := func(t *testing.T, r *tufRig) {
		t.Helper()
		err := r.refused(t, "set this machine's clock")
		if !errors.Is(err, tuf.ErrClockBehind) {
			t.Errorf("got %v, want ErrClockBehind", err)
		}
	}
	t.Run("first sync 3 days behind: refused", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.skew.Store(int64(-72 * time.Hour))
		behind(t, r)
		if seq := heldSeqOf(t, r.st); seq != 0 {
			t.Errorf("held sequence %d after a refused first sync, want 0", seq)
		}
	})
	t.Run("first sync 1 minute behind: syncs", func(t *testing.T) {
		r := newTUFRig(t, true)
		r.skew.Store(int64(-time.Minute))
		r.mustSync(t)
		if heldSeqOf(t, r.st) == 0 {
			t.Error("nothing held after the sync")
		}
	})
	t.Run("clock set back 10 minutes after a sync: refused, then a restart too", func(t *testing.T) {
		r := newTUFRig(t, false)
		r.mustSync(t)
		r.skew.Store(int64(-10 * time.Minute))
		behind(t, r) // idle: the held timestamp is the source's
		r.restart(t, r.upstream(t))
		behind(t, r)
		r.skew.Store(0)
		r.mustSync(t)
	})
}
