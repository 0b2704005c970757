package mirror

import (
	"container/heap"
	"context"
	"sync"

	"github.com/outpost/outpost/internal/fleet"
)

// EventSummary is a fleet.Store that keeps, beside the store it wraps,
// the small summary /v1/status and /metrics answer from: the totals per
// outcome and each aggregate's latest state, updated on every commit
// (never rebuilt per request). Pass it to fleet.NewAggregator in place of
// the store.
type EventSummary struct {
	fleet.Store

	mu     sync.Mutex
	aggs   map[fleet.AggregateKey]fleet.Aggregate
	totals map[fleet.Type]int64
}

// NewEventSummary loads the aggregates of s once.
func NewEventSummary(ctx context.Context, s fleet.Store) (*EventSummary, error) {
	e := &EventSummary{Store: s, aggs: map[fleet.AggregateKey]fleet.Aggregate{}, totals: map[fleet.Type]int64{}}
	err := s.Aggregates(ctx, func(g fleet.Aggregate) error {
		e.aggs[g.Key()] = g.Clone()
		e.totals[g.Type] += g.Count
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Commit implements fleet.Store: it commits to the wrapped store, then
// folds the change into the summary.
func (e *EventSummary) Commit(ctx context.Context, c fleet.Commit) error {
	if err := e.Store.Commit(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range c.Drop {
		if old, ok := e.aggs[k]; ok {
			e.totals[k.Type] -= old.Count
			delete(e.aggs, k)
		}
	}
	for _, g := range c.Put {
		k := g.Key()
		e.totals[k.Type] += g.Count - e.aggs[k].Count
		e.aggs[k] = g.Clone()
	}
	return nil
}

// Totals returns the event count per outcome.
func (e *EventSummary) Totals() map[fleet.Type]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[fleet.Type]int64, len(fleet.Types))
	for _, t := range fleet.Types {
		out[t] = e.totals[t]
	}
	return out
}

// Status is the events part of /v1/status: totals, and the at most
// MaxStatusAggregates most recently updated aggregates (one pass with a
// bounded heap; only those are copied).
func (e *EventSummary) Status(ctx context.Context) (*StatusEvents, error) {
	meta, err := e.Store.Meta(ctx)
	if err != nil {
		return nil, err
	}
	out := &StatusEvents{StoreID: meta.StoreID, LastSeq: meta.LastSeq, Acked: meta.Acked, Totals: map[string]int64{}}
	e.mu.Lock()
	for _, t := range fleet.Types {
		out.Totals[string(t)] = e.totals[t]
	}
	h := &byLastSeq{}
	for k, g := range e.aggs {
		switch {
		case h.Len() < MaxStatusAggregates:
			heap.Push(h, entry{k, g.LastSeq})
		case g.LastSeq > (*h)[0].seq:
			(*h)[0] = entry{k, g.LastSeq}
			heap.Fix(h, 0)
		}
	}
	out.Truncated = len(e.aggs) > MaxStatusAggregates
	out.Aggregates = make([]fleet.Aggregate, h.Len())
	for i := h.Len() - 1; i >= 0; i-- { // newest first
		out.Aggregates[i] = e.aggs[heap.Pop(h).(entry).key].Clone()
	}
	e.mu.Unlock()
	return out, nil
}

type entry struct {
	key fleet.AggregateKey
	seq uint64
}

// byLastSeq is a min-heap on seq: the root is the oldest kept.
type byLastSeq []entry

func (h byLastSeq) Len() int           { return len(h) }
func (h byLastSeq) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h byLastSeq) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byLastSeq) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *byLastSeq) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
