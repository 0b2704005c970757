// Package storetest is the contract every fleet.Store passes: run it from
// each implementation's tests with a constructor.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/fleet"
)

// Factory makes stores for the suite. Reopen, when set, closes s and opens
// the same storage again (a restart); the suite then checks durability.
type Factory struct {
	New    func(t *testing.T) fleet.Store
	Reopen func(t *testing.T, s fleet.Store) fleet.Store
}

var t0 = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

func rec(seq uint64, typ fleet.Type) fleet.Record {
	return fleet.Record{Seq: seq, ReceivedAt: t0, Event: fleet.Event{
		Type: typ, ClientID: "client-0001", ReleaseID: "rel_01jdk0000000000000000000aa", ToVersion: "1.2.0", Time: t0.Add(time.Duration(seq) * time.Second),
	}}
}

func agg(rel string, typ fleet.Type, count int64, last uint64) fleet.Aggregate {
	return fleet.Aggregate{AggregateKey: fleet.AggregateKey{ReleaseID: rel, Type: typ}, Count: count, LastSeq: last,
		ErrorCodes: map[string]int64{"E1": count}, FirstAt: t0, LastAt: t0.Add(time.Hour)}
}

func seqs(t *testing.T, s fleet.Store, after uint64) []uint64 {
	t.Helper()
	var got []uint64
	if err := s.Records(context.Background(), after, func(r fleet.Record) error { got = append(got, r.Seq); return nil }); err != nil {
		t.Fatalf("Records: %v", err)
	}
	return got
}

func aggs(t *testing.T, s fleet.Store) []fleet.Aggregate {
	t.Helper()
	var got []fleet.Aggregate
	if err := s.Aggregates(context.Background(), func(a fleet.Aggregate) error { got = append(got, a); return nil }); err != nil {
		t.Fatalf("Aggregates: %v", err)
	}
	return got
}

func meta(t *testing.T, s fleet.Store) fleet.Meta {
	t.Helper()
	m, err := s.Meta(context.Background())
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	return m
}

// Run runs the contract.
func Run(t *testing.T, f Factory) {
	ctx := context.Background()
	t.Run("EmptyMeta", func(t *testing.T) {
		s := f.New(t)
		m := meta(t, s)
		if len(m.StoreID) != 32 || m.LastSeq != 0 || m.Acked != 0 || m.OldestSeq != 0 {
			t.Errorf("meta of a new store = %+v, want a 32-char store id and zero cursors", m)
		}
		if other := meta(t, f.New(t)); other.StoreID == m.StoreID {
			t.Errorf("two stores share store id %s", m.StoreID)
		}
	})
	t.Run("CommitAndRead", func(t *testing.T) {
		s := f.New(t)
		err := s.Commit(ctx, fleet.Commit{
			Records: []fleet.Record{rec(1, fleet.TypeInstallOK), rec(2, fleet.TypeInstallFailed), rec(3, fleet.TypeCheck)},
			Put:     []fleet.Aggregate{agg("rel_b", fleet.TypeInstallOK, 1, 1), agg("rel_a", fleet.TypeInstallFailed, 1, 2)},
		})
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if got, want := seqs(t, s, 0), []uint64{1, 2, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("records after 0 = %v, want %v", got, want)
		}
		if got, want := seqs(t, s, 2), []uint64{3}; !reflect.DeepEqual(got, want) {
			t.Errorf("records after 2 = %v, want %v", got, want)
		}
		var first fleet.Record
		_ = s.Records(ctx, 0, func(r fleet.Record) error { first = r; return errors.New("stop") })
		if want := rec(1, fleet.TypeInstallOK); !first.Time.Equal(want.Time) || first.ClientID != want.ClientID || first.Type != want.Type || first.ReleaseID != want.ReleaseID {
			t.Errorf("first record = %+v, want %+v", first, want)
		}
		got := aggs(t, s)
		if len(got) != 2 || got[0].ReleaseID != "rel_a" || got[1].ReleaseID != "rel_b" {
			t.Fatalf("aggregates = %+v, want rel_a then rel_b", got)
		}
		if got[0].ErrorCodes["E1"] != 1 || got[0].LastSeq != 2 || !got[0].LastAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("aggregate rel_a = %+v, want fields round-tripped", got[0])
		}
		if m := meta(t, s); m.LastSeq != 3 || m.OldestSeq != 1 {
			t.Errorf("meta = %+v, want LastSeq 3, OldestSeq 1", m)
		}
	})
	t.Run("SequenceGapRefusedAtomically", func(t *testing.T) {
		s := f.New(t)
		if err := s.Commit(ctx, fleet.Commit{Records: []fleet.Record{rec(1, fleet.TypeCheck)}}); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]fleet.Commit{
			"gap":       {Records: []fleet.Record{rec(3, fleet.TypeCheck)}, Put: []fleet.Aggregate{agg("rel_x", fleet.TypeCheck, 9, 3)}},
			"replay":    {Records: []fleet.Record{rec(1, fleet.TypeCheck)}},
			"unordered": {Records: []fleet.Record{rec(2, fleet.TypeCheck), rec(4, fleet.TypeCheck)}},
		} {
			t.Run(name, func(t *testing.T) {
				if err := s.Commit(ctx, c); !errors.Is(err, fleet.ErrSequence) {
					t.Errorf("Commit = %v, want ErrSequence", err)
				}
				if got := seqs(t, s, 0); !reflect.DeepEqual(got, []uint64{1}) {
					t.Errorf("records = %v, want [1]: a refused commit wrote something", got)
				}
				if got := aggs(t, s); len(got) != 0 {
					t.Errorf("aggregates = %v, want none: a refused commit wrote something", got)
				}
			})
		}
	})
	t.Run("TrimAndDrop", func(t *testing.T) {
		s := f.New(t)
		var rs []fleet.Record
		for i := uint64(1); i <= 10; i++ {
			rs = append(rs, rec(i, fleet.TypeCheck))
		}
		if err := s.Commit(ctx, fleet.Commit{Records: rs, Put: []fleet.Aggregate{agg("rel_a", fleet.TypeCheck, 1, 1), agg("rel_b", fleet.TypeCheck, 1, 2)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, fleet.Commit{Records: []fleet.Record{rec(11, fleet.TypeCheck)}, TrimBefore: 8, Drop: []fleet.AggregateKey{{ReleaseID: "rel_a", Type: fleet.TypeCheck}}}); err != nil {
			t.Fatal(err)
		}
		if got, want := seqs(t, s, 0), []uint64{8, 9, 10, 11}; !reflect.DeepEqual(got, want) {
			t.Errorf("records = %v, want %v", got, want)
		}
		if got := aggs(t, s); len(got) != 1 || got[0].ReleaseID != "rel_b" {
			t.Errorf("aggregates = %+v, want only rel_b", got)
		}
		if m := meta(t, s); m.OldestSeq != 8 || m.LastSeq != 11 {
			t.Errorf("meta = %+v, want OldestSeq 8, LastSeq 11", m)
		}
	})
	t.Run("AckIsMonotonic", func(t *testing.T) {
		s := f.New(t)
		if err := s.Commit(ctx, fleet.Commit{Records: []fleet.Record{rec(1, fleet.TypeCheck), rec(2, fleet.TypeCheck), rec(3, fleet.TypeCheck)}}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			ack     uint64
			wantErr error
			want    uint64
		}{{2, nil, 2}, {1, nil, 2}, {2, nil, 2}, {4, fleet.ErrAckAhead, 2}, {3, nil, 3}}
		for _, st := range steps {
			err := s.Ack(ctx, st.ack)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
				t.Errorf("Ack(%d) = %v, want %v", st.ack, err, st.wantErr)
			}
			if got := meta(t, s).Acked; got != st.want {
				t.Errorf("after Ack(%d): Acked = %d, want %d", st.ack, got, st.want)
			}
		}
	})
	if f.Reopen != nil {
		t.Run("Durable", func(t *testing.T) {
			s := f.New(t)
			if err := s.Commit(ctx, fleet.Commit{Records: []fleet.Record{rec(1, fleet.TypeCheck), rec(2, fleet.TypeInstallOK)}, Put: []fleet.Aggregate{agg("rel_a", fleet.TypeInstallOK, 1, 2)}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Ack(ctx, 1); err != nil {
				t.Fatal(err)
			}
			before := meta(t, s)
			s = f.Reopen(t, s)
			if got := meta(t, s); got != before {
				t.Errorf("meta after reopen = %+v, want %+v", got, before)
			}
			if got := seqs(t, s, 0); !reflect.DeepEqual(got, []uint64{1, 2}) {
				t.Errorf("records after reopen = %v, want [1 2]", got)
			}
			if got := aggs(t, s); len(got) != 1 || got[0].Count != 1 {
				t.Errorf("aggregates after reopen = %+v, want rel_a count 1", got)
			}
			if err := s.Commit(ctx, fleet.Commit{Records: []fleet.Record{rec(3, fleet.TypeCheck)}}); err != nil {
				t.Errorf("Commit after reopen: %v", err)
			}
		})
	}
}
