package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

func ev(typ fleet.Type, rel, code string) fleet.Event {
	e := fleet.Event{Type: typ, ClientID: "client-0001", ReleaseID: rel, ToVersion: "1.1.0", ErrorCode: code, DurationMS: 10, Time: now}
	return e
}

func newAgg(t *testing.T, s fleet.Store, o fleet.Options) *fleet.Aggregator {
	t.Helper()
	o.Now = func() time.Time { return now }
	a, err := fleet.NewAggregator(context.Background(), s, o)
	if err != nil {
		t.Fatalf("NewAggregator: %v", err)
	}
	return a
}

func TestAggregator_Folds(t *testing.T) {
	ctx := context.Background()
	s := fleet.NewMemStore()
	a := newAgg(t, s, fleet.Options{})
	first, last, err := a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallOK, relA, ""), ev(fleet.TypeInstallFailed, relA, "E1"), ev(fleet.TypeInstallFailed, relA, "E1"), ev(fleet.TypeInstallFailed, relA, "E2")})
	if err != nil || first != 1 || last != 4 {
		t.Fatalf("Ingest = %d, %d, %v; want 1, 4, nil", first, last, err)
	}
	if first, last, _ = a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallOK, relB, "")}); first != 5 || last != 5 {
		t.Errorf("second Ingest = %d, %d; want 5, 5", first, last)
	}
	got := a.Aggregates()
	if len(got) != 3 {
		t.Fatalf("aggregates = %+v, want 3", got)
	}
	failed := got[0] // relA install_failed sorts before install_ok
	if failed.Type != fleet.TypeInstallFailed || failed.Count != 3 || failed.ErrorCodes["E1"] != 2 || failed.ErrorCodes["E2"] != 1 || failed.LastSeq != 4 || failed.DurationMSSum != 30 {
		t.Errorf("relA install_failed = %+v, want count 3, E1 2, E2 1, last seq 4, duration 30", failed)
	}
	// A new aggregator over the same store sees the same state.
	if again := newAgg(t, s, fleet.Options{}).Aggregates(); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("reloaded aggregates = %+v, want %+v", again, got)
	}
	if _, last, _ := newAgg(t, s, fleet.Options{}).Ingest(ctx, []fleet.Event{ev(fleet.TypeCheck, "", "")}); last != 6 {
		t.Errorf("reloaded aggregator assigned %d, want 6", last)
	}
}

func TestAggregator_Bounds(t *testing.T) {
	ctx := context.Background()
	t.Run("window", func(t *testing.T) {
		s := fleet.NewMemStore()
		a := newAgg(t, s, fleet.Options{Window: 3})
		for i := 0; i < 4; i++ {
			if _, _, err := a.Ingest(ctx, []fleet.Event{ev(fleet.TypeCheck, relA, ""), ev(fleet.TypeCheck, relA, "")}); err != nil {
				t.Fatal(err)
			}
		}
		var seqs []uint64
		_ = s.Records(ctx, 0, func(r fleet.Record) error { seqs = append(seqs, r.Seq); return nil })
		if fmt.Sprint(seqs) != "[6 7 8]" {
			t.Errorf("window = %v, want [6 7 8]", seqs)
		}
		if got := a.Aggregates()[0].Count; got != 8 {
			t.Errorf("aggregate count = %d, want 8 (dropped events still counted)", got)
		}
	})
	t.Run("aggregates", func(t *testing.T) {
		s := fleet.NewMemStore()
		a := newAgg(t, s, fleet.Options{MaxAggregates: 2})
		for _, rel := range []string{relA, relB, "rel_01jdk0000000000000000000cc"} {
			if _, _, err := a.Ingest(ctx, []fleet.Event{ev(fleet.TypeInstallOK, rel, "")}); err != nil {
				t.Fatal(err)
			}
		}
		got := a.Aggregates()
		if len(got) != 2 || got[0].ReleaseID != relB {
			t.Errorf("aggregates = %+v, want relB and relC (relA, the least recent, dropped)", got)
		}
		var n int
		_ = s.Aggregates(ctx, func(fleet.Aggregate) error { n++; return nil })
		if n != 2 {
			t.Errorf("stored aggregates = %d, want 2", n)
		}
	})
	t.Run("error codes", func(t *testing.T) {
		a := newAgg(t, fleet.NewMemStore(), fleet.Options{})
		var evs []fleet.Event
		for i := 0; i < fleet.MaxErrorCodes+5; i++ {
			evs = append(evs, ev(fleet.TypeInstallFailed, relA, fmt.Sprintf("E%d", i)))
		}
		if _, _, err := a.Ingest(ctx, evs); err != nil {
			t.Fatal(err)
		}
		g := a.Aggregates()[0]
		if len(g.ErrorCodes) != fleet.MaxErrorCodes+1 || g.ErrorCodes[fleet.OtherErrorCodes] != 5 {
			t.Errorf("error codes: %d distinct, other %d; want %d, 5", len(g.ErrorCodes), g.ErrorCodes[fleet.OtherErrorCodes], fleet.MaxErrorCodes+1)
		}
	})
}

func TestAggregator_PendingAndAck(t *testing.T) {
	ctx := context.Background()
	a := newAgg(t, fleet.NewMemStore(), fleet.Options{})
	_, _, _ = a.Ingest(ctx, []fleet.Event{ev(fleet.TypeCheck, "", ""), ev(fleet.TypeCheck, "", ""), ev(fleet.TypeCheck, "", "")})
	pending := func() []uint64 {
		var got []uint64
		if _, err := a.Pending(ctx, func(r fleet.Record) error { got = append(got, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := pending(); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("pending = %v, want [1 2 3]", got)
	}
	if err := a.Ack(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := pending(); fmt.Sprint(got) != "[3]" {
		t.Errorf("pending after ack 2 = %v, want [3]", got)
	}
	if err := a.Ack(ctx, 9); err == nil {
		t.Errorf("Ack(9) beyond last = nil, want an error")
	}
}

func TestAggregator_RefusesInvalidEvents(t *testing.T) {
	s := fleet.NewMemStore()
	a := newAgg(t, s, fleet.Options{})
	bad := ev(fleet.TypeInstallOK, relA, "")
	bad.ClientID = "has space"
	_, _, err := a.Ingest(context.Background(), []fleet.Event{ev(fleet.TypeCheck, "", ""), bad})
	if err == nil || !strings.Contains(err.Error(), "events[1].client_id") {
		t.Fatalf("Ingest = %v, want an error naming events[1].client_id", err)
	}
	if m, _ := s.Meta(context.Background()); m.LastSeq != 0 {
		t.Errorf("LastSeq = %d after a refused batch, want 0", m.LastSeq)
	}
}
