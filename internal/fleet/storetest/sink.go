package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

// SinkUnderTest is a fleet.Sink implementation and its queries.
type SinkUnderTest struct {
	Run     fleet.Transactor
	Sources func(releaseID string) ([]fleet.Source, error)
	Cursor  func(o fleet.Origin) (uint64, error)
	Events  func(o fleet.Origin) (int, error)
}

const (
	relA  = "rel_01jdk0000000000000000000aa"
	relB  = "rel_01jdk0000000000000000000bb"
	mirA  = "mir_01jdk0000000000000000000aa"
	mirB  = "mir_01jdk0000000000000000000bb"
	prdA  = "prd_01jdk0000000000000000000aa"
	store = "0123456789abcdef0123456789abcdef"
)

var sinkKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))

type report struct {
	mirror  string
	at      time.Time
	since   uint64
	aggs    []fleet.Aggregate
	events  []uint64
	through uint64
}

func (r report) bytes(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := fleet.NewReportWriter(&buf, fleet.ReportHeader{MirrorID: r.mirror, StoreID: store, Since: r.since, CreatedAt: r.at}, sinkKey)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.aggs {
		if err := w.WriteAggregate(&r.aggs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range r.events {
		rec := fleet.Record{Seq: seq, ReceivedAt: r.at, Event: fleet.Event{Type: fleet.TypeInstallOK, ClientID: "client-0001", ReleaseID: relA, ToVersion: "1.1.0", Time: r.at}}
		if err := w.WriteEvent(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(r.through); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func installs(rel string, ok, failed int64, last uint64) []fleet.Aggregate {
	return []fleet.Aggregate{
		{AggregateKey: fleet.AggregateKey{ProductID: prdA, ReleaseID: rel, Type: fleet.TypeInstallOK}, Count: ok, LastSeq: last},
		{AggregateKey: fleet.AggregateKey{ProductID: prdA, ReleaseID: rel, Type: fleet.TypeInstallFailed}, Count: failed, LastSeq: last, ErrorCodes: map[string]int64{"E1": failed}},
	}
}

// RunSink runs the ingestion contract: idempotent imports, stale reports
// ignored, sources and cursors as fleet.Evaluate needs them.
func RunSink(t *testing.T, newSink func(t *testing.T) SinkUnderTest) {
	ctx := context.Background()
	pub := sinkKey.Public().(ed25519.PublicKey)
	imp := func(t *testing.T, s SinkUnderTest, file []byte) fleet.ImportResult {
		t.Helper()
		res, err := fleet.ImportBatched(ctx, bytes.NewReader(file), pub, fleet.ReadOptions{}, s.Run, 2)
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		return res
	}
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	oA := fleet.Origin{MirrorID: mirA, StoreID: store}

	t.Run("IdempotentAndMonotonic", func(t *testing.T) {
		s := newSink(t)
		first := report{mirror: mirA, at: t0, aggs: installs(relA, 10, 1, 11), events: []uint64{10, 11}, through: 11}.bytes(t)
		if res := imp(t, s, first); res.AggregatesChanged != 2 || res.EventsAdded != 2 || !res.CursorMoved {
			t.Errorf("first import = %+v, want 2 aggregates, 2 events, cursor moved", res)
		}
		if res := imp(t, s, first); res.AggregatesChanged != 0 || res.EventsAdded != 0 || res.CursorMoved {
			t.Errorf("same file again = %+v, want nothing changed", res)
		}
		newer := report{mirror: mirA, at: t0.Add(time.Hour), since: 11, aggs: installs(relA, 20, 5, 30), events: []uint64{12}, through: 30}.bytes(t)
		if res := imp(t, s, newer); res.AggregatesChanged != 2 || res.EventsAdded != 1 || !res.CursorMoved {
			t.Errorf("newer = %+v, want 2 aggregates, 1 event, cursor moved", res)
		}
		if res := imp(t, s, first); res.AggregatesChanged != 0 || res.EventsAdded != 0 || res.CursorMoved {
			t.Errorf("older after newer = %+v, want nothing changed", res)
		}
		if c, err := s.Cursor(oA); err != nil || c != 30 {
			t.Errorf("cursor = %d, %v; want 30", c, err)
		}
		if n, err := s.Events(oA); err != nil || n != 3 {
			t.Errorf("events = %d, %v; want 3", n, err)
		}
		srcs, err := s.Sources(relA)
		if err != nil || len(srcs) != 1 {
			t.Fatalf("Sources = %+v, %v; want 1", srcs, err)
		}
		var failed int64
		for _, a := range srcs[0].Aggregates {
			if a.Type == fleet.TypeInstallFailed {
				failed = a.Count
			}
		}
		if failed != 5 || !srcs[0].AsOf.Equal(t0.Add(time.Hour)) {
			t.Errorf("source = %d failed as of %s; want 5 as of %s", failed, srcs[0].AsOf, t0.Add(time.Hour))
		}
	})
	t.Run("FreshnessMovesWithoutNewEvents", func(t *testing.T) {
		s := newSink(t)
		imp(t, s, report{mirror: mirA, at: t0, aggs: installs(relA, 10, 1, 11), through: 11}.bytes(t))
		res := imp(t, s, report{mirror: mirA, at: t0.Add(48 * time.Hour), since: 11, aggs: installs(relA, 10, 1, 11), through: 11}.bytes(t))
		if res.AggregatesChanged != 2 || !res.CursorMoved || res.EventsAdded != 0 {
			t.Errorf("same state, later report = %+v, want freshness moved", res)
		}
		srcs, _ := s.Sources(relA)
		if len(srcs) != 1 || !srcs[0].AsOf.Equal(t0.Add(48*time.Hour)) {
			t.Errorf("sources = %+v, want as of %s", srcs, t0.Add(48*time.Hour))
		}
	})
	t.Run("SourcesPerReleaseAndMirror", func(t *testing.T) {
		s := newSink(t)
		imp(t, s, report{mirror: mirA, at: t0, aggs: installs(relA, 1, 0, 1), through: 1}.bytes(t))
		imp(t, s, report{mirror: mirB, at: t0.Add(time.Minute), aggs: append(installs(relA, 2, 0, 2), installs(relB, 3, 0, 2)...), through: 2}.bytes(t))
		// A fresh report about another release only does not make
		// mirror A's evidence about relA fresher.
		imp(t, s, report{mirror: mirA, at: t0.Add(time.Hour), since: 1, aggs: nil, through: 1}.bytes(t))
		srcs, err := s.Sources(relA)
		if err != nil || len(srcs) != 2 || srcs[0].MirrorID != mirA || srcs[1].MirrorID != mirB {
			t.Fatalf("Sources(relA) = %+v, %v; want mirrors A and B", srcs, err)
		}
		if !srcs[0].AsOf.Equal(t0) || !srcs[1].AsOf.Equal(t0.Add(time.Minute)) {
			t.Errorf("ages: A as of %s, B as of %s; want %s and %s", srcs[0].AsOf, srcs[1].AsOf, t0, t0.Add(time.Minute))
		}
		for _, src := range srcs {
			for _, a := range src.Aggregates {
				if a.ReleaseID != relA {
					t.Errorf("Sources(relA) carries an aggregate of %s", a.ReleaseID)
				}
			}
		}
		if srcs, _ := s.Sources(relB); len(srcs) != 1 || srcs[0].MirrorID != mirB {
			t.Errorf("Sources(relB) = %+v, want mirror B only", srcs)
		}
		if srcs, _ := s.Sources("rel_01jdk0000000000000000000zz"); len(srcs) != 0 {
			t.Errorf("Sources(unknown) = %+v, want none", srcs)
		}
	})
}
