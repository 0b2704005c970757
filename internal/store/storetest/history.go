package storetest

import (
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet/history"
	"github.com/outpost/outpost/internal/store/kv"
)

// historyCases check the console's time series (internal/fleet/history)
// on the store's own kv backend: its bucket exists and keys sort by time.
var historyCases = []testCase{
	{"History_AppendReadPrune", func(t *testing.T, f *fx) {
		b, ok := f.s.(interface{ Backend() kv.Backend })
		if !ok {
			t.Skip("the store is not on store/kv")
		}
		h := history.New(b.Backend())
		t0 := f.now.Truncate(time.Second)
		for i, at := range []time.Time{t0.Add(time.Hour), t0.Add(-history.MaxAge - time.Hour), t0} {
			if err := h.Append(f.ctx, history.Rollout, "ro_storetest", history.Point{At: at, Percentage: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Append(f.ctx, history.Entitlement, "ro_storetest", history.Point{At: t0, Seats: 7}); err != nil {
			t.Fatal(err)
		}
		got, err := h.Points(f.ctx, history.Rollout, "ro_storetest")
		if err != nil {
			t.Fatal(err)
		}
		// The point older than MaxAge before the newest written was
		// pruned when it was appended.
		if len(got) != 2 || got[0].Percentage != 2 || got[1].Percentage != 0 || !got[0].At.Equal(t0) {
			t.Errorf("got %+v, want the points at t0 and t0+1h, oldest first", got)
		}
		ents, err := h.Points(f.ctx, history.Entitlement, "ro_storetest")
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 || ents[0].Seats != 7 {
			t.Errorf("entitlement series = %+v, want one point with 7 seats", ents)
		}
	}},
}
