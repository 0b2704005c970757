package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Options bound an Aggregator's state.
type Options struct {
	// Window is how many recent events are kept (default 100,000). Older
	// ones are dropped even if the vendor has not acknowledged them; their
	// aggregates still count them.
	Window int
	// MaxAggregates bounds the aggregates kept (default 10,000); past it
	// the least recently updated are dropped.
	MaxAggregates int
	// Now is the clock for ReceivedAt (default time.Now).
	Now func() time.Time
}

// Aggregator folds events into aggregates and a bounded recent window,
// persisted through a Store. It is the store's only writer; its methods
// are safe for concurrent use (ingests are serialized).
type Aggregator struct {
	store Store
	opts  Options

	mu      sync.Mutex
	lastSeq uint64
	aggs    map[AggregateKey]*Aggregate
}

// NewAggregator loads the state of store.
func NewAggregator(ctx context.Context, store Store, opts Options) (*Aggregator, error) {
	if opts.Window <= 0 {
		opts.Window = 100_000
	}
	if opts.MaxAggregates <= 0 {
		opts.MaxAggregates = 10_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	meta, err := store.Meta(ctx)
	if err != nil {
		return nil, fmt.Errorf("load fleet state: %w", err)
	}
	a := &Aggregator{store: store, opts: opts, lastSeq: meta.LastSeq, aggs: map[AggregateKey]*Aggregate{}}
	err = store.Aggregates(ctx, func(g Aggregate) error {
		g = g.Clone()
		a.aggs[g.Key()] = &g
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load fleet aggregates: %w", err)
	}
	return a, nil
}

// Ingest stores events in one commit: they get the next sequence numbers,
// are folded into their aggregates and enter the window. It returns the
// first and last sequence assigned (0, 0 for none). Events are validated
// again (without the time window, which DecodeBatch applied): one invalid
// event refuses the batch.
func (a *Aggregator) Ingest(ctx context.Context, events []Event) (first, last uint64, err error) {
	if len(events) == 0 {
		return 0, 0, nil
	}
	for i := range events {
		if err := events[i].Validate(Clock{}); err != nil {
			return 0, 0, fmt.Errorf("ingest fleet events: events[%d].%w", i, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now().UTC()
	recs := make([]Record, len(events))
	touched := map[AggregateKey]*Aggregate{}
	for i := range events {
		recs[i] = Record{Seq: a.lastSeq + 1 + uint64(i), ReceivedAt: now, Event: events[i]}
		k := AggregateKey{ProductID: events[i].ProductID, ReleaseID: events[i].ReleaseID, Type: events[i].Type}
		g, ok := touched[k]
		if !ok {
			c := Aggregate{AggregateKey: k}
			if cur, ok := a.aggs[k]; ok {
				c = cur.Clone()
			}
			g = &c
			touched[k] = g
		}
		g.fold(&recs[i])
	}
	c := Commit{Records: recs, Put: make([]Aggregate, 0, len(touched))}
	for _, g := range touched {
		c.Put = append(c.Put, *g)
	}
	newLast := recs[len(recs)-1].Seq
	if w := uint64(a.opts.Window); newLast > w {
		c.TrimBefore = newLast - w + 1
	}
	// Aggregates beyond the cap: drop the least recently updated ones that
	// this commit does not touch.
	if over := len(a.aggs) + countNew(a.aggs, touched) - a.opts.MaxAggregates; over > 0 {
		c.Drop = a.oldest(over, touched)
	}
	if err := a.store.Commit(ctx, c); err != nil {
		return 0, 0, fmt.Errorf("ingest fleet events: %w", err)
	}
	for k, g := range touched {
		a.aggs[k] = g
	}
	for _, k := range c.Drop {
		delete(a.aggs, k)
	}
	a.lastSeq = newLast
	return recs[0].Seq, newLast, nil
}

func countNew(aggs, touched map[AggregateKey]*Aggregate) int {
	n := 0
	for k := range touched {
		if _, ok := aggs[k]; !ok {
			n++
		}
	}
	return n
}

func (a *Aggregator) oldest(n int, keep map[AggregateKey]*Aggregate) []AggregateKey {
	list := make([]*Aggregate, 0, len(a.aggs))
	for k, g := range a.aggs {
		if _, ok := keep[k]; !ok {
			list = append(list, g)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].LastSeq < list[j].LastSeq })
	n = min(n, len(list))
	out := make([]AggregateKey, n)
	for i := range n {
		out[i] = list[i].Key()
	}
	return out
}

// Aggregates returns a copy of every aggregate, in key order.
func (a *Aggregator) Aggregates() []Aggregate {
	a.mu.Lock()
	list := make([]Aggregate, 0, len(a.aggs))
	for _, g := range a.aggs {
		list = append(list, g.Clone())
	}
	a.mu.Unlock()
	SortAggregates(list)
	return list
}

// Meta returns the store id and cursors as the aggregator knows them.
func (a *Aggregator) Meta(ctx context.Context) (Meta, error) {
	return a.store.Meta(ctx)
}

// Pending calls fn for every event the vendor has not acknowledged that is
// still in the window, in order. It returns the meta it read first:
// events above its LastSeq (ingested meanwhile) are not passed to fn.
func (a *Aggregator) Pending(ctx context.Context, fn func(Record) error) (Meta, error) {
	m, err := a.store.Meta(ctx)
	if err != nil {
		return Meta{}, fmt.Errorf("read fleet cursor: %w", err)
	}
	err = a.store.Records(ctx, m.Acked, func(r Record) error {
		if r.Seq > m.LastSeq {
			return errStop
		}
		return fn(r)
	})
	if err != nil && !errors.Is(err, errStop) {
		return m, fmt.Errorf("read pending fleet events: %w", err)
	}
	return m, nil
}

var errStop = errors.New("stop")

// Ack records that the vendor holds every event up to seq.
func (a *Aggregator) Ack(ctx context.Context, seq uint64) error {
	if err := a.store.Ack(ctx, seq); err != nil {
		return fmt.Errorf("acknowledge fleet events: %w", err)
	}
	return nil
}
