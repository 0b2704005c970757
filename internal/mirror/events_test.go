package mirror_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/mirror"
)

// TestEventSummary_MatchesAggregator ingests batches that grow, update and
// (past MaxAggregates) drop aggregates, and checks after each that the
// summary kept on commit says exactly what a full recomputation from the
// aggregator says, and that a summary reloaded from the store agrees.
func TestEventSummary_MatchesAggregator(t *testing.T) {
	ctx := context.Background()
	store := fleet.NewMemStore()
	sum, err := mirror.NewEventSummary(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	agg, err := fleet.NewAggregator(ctx, sum, fleet.Options{MaxAggregates: 300, Window: 500})
	if err != nil {
		t.Fatal(err)
	}
	rels := make([]string, 400)
	for i := range rels {
		rels[i] = catalog.NewID(catalog.PrefixRelease)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	same := func(t *testing.T, got *mirror.StatusEvents) {
		t.Helper()
		meta, err := agg.Meta(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := mirror.EventStatus(meta, agg.Aggregates())
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("summary differs from the aggregator:\n got %.400s\nwant %.400s", g, w)
		}
	}
	for round := range 20 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			var batch []fleet.Event
			for range 1 + rng.IntN(150) {
				typ := fleet.Types[rng.IntN(len(fleet.Types))]
				e := fleet.Event{Type: typ, ClientID: "c-0123456789", Time: time.Now()}
				if typ != fleet.TypeCheck {
					e.ReleaseID, e.ToVersion = rels[rng.IntN(len(rels))], "1.0.0"
				}
				if typ.Failed() {
					e.ErrorCode = fmt.Sprintf("E_%d", rng.IntN(40))
				}
				batch = append(batch, e)
			}
			if _, _, err := agg.Ingest(ctx, batch); err != nil {
				t.Fatal(err)
			}
			got, err := sum.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			same(t, got)
		})
	}
	t.Run("reloaded", func(t *testing.T) {
		again, err := mirror.NewEventSummary(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		got, err := again.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got)
	})
}
