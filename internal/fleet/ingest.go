package fleet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"
)

// Origin is where a report comes from: a mirror and its fleet store.
// Sequence numbers are unique within (MirrorID, StoreID).
type Origin struct {
	MirrorID string
	TenantID string
	StoreID  string
}

// Sink is the vendor's side of ingestion. Every method is idempotent on
// its key, so ingesting a report twice (or an older one after a newer)
// changes nothing:
//
//   - an aggregate is keyed by (mirror, store, product, release, type) and
//     replaced only by one with a larger LastSeq, or the same LastSeq and a
//     later asOf (a newer report saying nothing changed: only freshness
//     moves);
//   - an event is keyed by (mirror, store, seq) and inserted only when
//     absent;
//   - the cursor of (mirror, store) only moves up; its asOf tells how old
//     the latest report is.
//
// The booleans report whether anything changed.
type Sink interface {
	PutAggregate(ctx context.Context, o Origin, asOf time.Time, a Aggregate) (bool, error)
	PutEvent(ctx context.Context, o Origin, r Record) (bool, error)
	PutCursor(ctx context.Context, o Origin, through uint64, asOf time.Time) (bool, error)
}

// ImportResult counts what an import changed.
type ImportResult struct {
	ReportSummary
	AggregatesChanged int64
	EventsAdded       int64
	CursorMoved       bool
}

// Import verifies the whole report first (one streaming pass: header,
// every line, chain, signature), then rewinds and ingests it into sink
// (a second pass, which must verify again: a file changed in between is
// refused at its end). Nothing reaches sink from a file that does not
// verify. Memory stays flat. The cursor is put last, after every record.
func Import(ctx context.Context, rs io.ReadSeeker, pub ed25519.PublicKey, opts ReadOptions, sink Sink) (ImportResult, error) {
	run := func(ctx context.Context, fn func(Sink) error) error { return fn(sink) }
	return ImportBatched(ctx, rs, pub, opts, run, math.MaxInt)
}

// Transactor runs fn in one transaction with a Sink bound to it.
type Transactor func(ctx context.Context, fn func(Sink) error) error

// ImportBatched is Import committing every batch records in a transaction
// of their own (run), so a report of a million events neither holds one
// huge transaction nor costs one per record. A failure midway leaves the
// batches before it ingested, which is harmless: ingestion is idempotent,
// and the cursor, put in the last transaction, has not moved.
func ImportBatched(ctx context.Context, rs io.ReadSeeker, pub ed25519.PublicKey, opts ReadOptions, run Transactor, batch int) (ImportResult, error) {
	if batch <= 0 {
		batch = 1000
	}
	sum, err := VerifyReport(rs, pub, opts)
	if err != nil {
		return ImportResult{}, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return ImportResult{}, fmt.Errorf("import report: rewind: %w", err)
	}
	rr, err := NewReportReader(rs, pub, opts)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{ReportSummary: sum}
	h := rr.Header()
	o := Origin{MirrorID: h.MirrorID, TenantID: h.TenantID, StoreID: h.StoreID}
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		err := run(ctx, func(sink Sink) error {
			for range batch {
				it, err := rr.Next()
				if errors.Is(err, io.EOF) {
					done = true
					if t := rr.Trailer(); t.Head != sum.Trailer.Head || t.Count != sum.Trailer.Count || t.Through != sum.Trailer.Through {
						return fmt.Errorf("%w: file changed between verification and ingestion", ErrReport)
					}
					moved, err := sink.PutCursor(ctx, o, rr.Trailer().Through, h.CreatedAt)
					res.CursorMoved = moved
					return err
				}
				if err != nil {
					return err
				}
				var changed bool
				switch {
				case it.Aggregate != nil:
					changed, err = sink.PutAggregate(ctx, o, h.CreatedAt, *it.Aggregate)
					if changed {
						res.AggregatesChanged++
					}
				case it.Event != nil:
					changed, err = sink.PutEvent(ctx, o, *it.Event)
					if changed {
						res.EventsAdded++
					}
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, ErrReport) {
				return res, err
			}
			return res, fmt.Errorf("import report: %w", err)
		}
	}
	return res, nil
}

// MemSink is a Sink in memory: the reference for integrations and tests,
// and the shape of the query the health gate needs (Sources).
type MemSink struct {
	mu      sync.Mutex
	aggs    map[string]sinkAgg
	events  map[string]Record
	cursors map[Origin]sinkCursor
}

type sinkAgg struct {
	o    Origin
	asOf time.Time
	a    Aggregate
}

type sinkCursor struct {
	through uint64
	asOf    time.Time
}

// NewMemSink returns an empty MemSink.
func NewMemSink() *MemSink {
	return &MemSink{aggs: map[string]sinkAgg{}, events: map[string]Record{}, cursors: map[Origin]sinkCursor{}}
}

// AggregateIdempotencyKey is the key an ingested aggregate is stored under.
func AggregateIdempotencyKey(o Origin, k AggregateKey) string {
	return o.MirrorID + ":" + o.StoreID + ":" + k.ProductID + ":" + k.ReleaseID + ":" + string(k.Type)
}

// EventIdempotencyKey is the key an ingested event is stored under.
func EventIdempotencyKey(o Origin, seq uint64) string {
	return fmt.Sprintf("%s:%s:%d", o.MirrorID, o.StoreID, seq)
}

func (s *MemSink) PutAggregate(ctx context.Context, o Origin, asOf time.Time, a Aggregate) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := AggregateIdempotencyKey(o, a.Key())
	if cur, ok := s.aggs[k]; ok && (a.LastSeq < cur.a.LastSeq || a.LastSeq == cur.a.LastSeq && !asOf.After(cur.asOf)) {
		return false, nil
	}
	s.aggs[k] = sinkAgg{o: o, asOf: asOf, a: a.Clone()}
	return true, nil
}

func (s *MemSink) PutEvent(ctx context.Context, o Origin, r Record) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := EventIdempotencyKey(o, r.Seq)
	if _, ok := s.events[k]; ok {
		return false, nil
	}
	s.events[k] = r
	return true, nil
}

func (s *MemSink) PutCursor(ctx context.Context, o Origin, through uint64, asOf time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.cursors[o]
	if ok && (through < cur.through || through == cur.through && !asOf.After(cur.asOf)) {
		return false, nil
	}
	s.cursors[o] = sinkCursor{through: max(through, cur.through), asOf: asOf}
	return true, nil
}

// Cursor is the acknowledgement to send back to the mirror of o.
func (s *MemSink) Cursor(o Origin) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[o].through
}

// Events is the number of events held.
func (s *MemSink) Events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Sources returns, for every mirror store that has reported aggregates of
// release, those aggregates and AsOf, the latest report that carried them
// (every report carries all of a store's aggregates, so for a live store
// that is its latest report): the input of Evaluate. Stores with nothing
// about the release are left out, so an unrelated fresh report cannot
// make stale evidence look fresh.
func (s *MemSink) Sources(releaseID string) []Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	by := map[Origin]*Source{}
	for _, g := range s.aggs {
		if g.a.ReleaseID != releaseID {
			continue
		}
		src := by[g.o]
		if src == nil {
			src = &Source{MirrorID: g.o.MirrorID, StoreID: g.o.StoreID, AsOf: g.asOf}
			by[g.o] = src
		}
		if g.asOf.After(src.AsOf) {
			src.AsOf = g.asOf
		}
		src.Aggregates = append(src.Aggregates, g.a.Clone())
	}
	return sortSources(by)
}

func sortSources(by map[Origin]*Source) []Source {
	out := make([]Source, 0, len(by))
	for _, src := range by {
		SortAggregates(src.Aggregates)
		out = append(out, *src)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].MirrorID != out[j].MirrorID {
			return out[i].MirrorID < out[j].MirrorID
		}
		return out[i].StoreID < out[j].StoreID
	})
	return out
}
