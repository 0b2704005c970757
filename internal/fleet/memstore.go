package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
)

// MemStore is a Store in memory, for tests and for tools that do not
// need durability.
type MemStore struct {
	mu      sync.Mutex
	meta    Meta
	aggs    map[AggregateKey]Aggregate
	records []Record // ascending, contiguous
}

// NewMemStore returns an empty MemStore with a fresh store id.
func NewMemStore() *MemStore {
	return &MemStore{meta: Meta{StoreID: NewStoreID()}, aggs: map[AggregateKey]Aggregate{}}
}

// NewStoreID returns a random store id (32 hex characters).
func NewStoreID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func (s *MemStore) Meta(ctx context.Context) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.meta
	if len(s.records) > 0 {
		m.OldestSeq = s.records[0].Seq
	}
	return m, nil
}

func (s *MemStore) Commit(ctx context.Context, c Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.meta.LastSeq + 1
	for i := range c.Records {
		if c.Records[i].Seq != next+uint64(i) {
			return fmt.Errorf("%w: record %d has sequence %d, want %d", ErrSequence, i, c.Records[i].Seq, next+uint64(i))
		}
	}
	s.records = append(s.records, c.Records...)
	if n := len(c.Records); n > 0 {
		s.meta.LastSeq = c.Records[n-1].Seq
	}
	for _, a := range c.Put {
		s.aggs[a.Key()] = a.Clone()
	}
	for _, k := range c.Drop {
		delete(s.aggs, k)
	}
	if c.TrimBefore > 0 {
		i := sort.Search(len(s.records), func(i int) bool { return s.records[i].Seq >= c.TrimBefore })
		s.records = append([]Record(nil), s.records[i:]...)
	}
	return nil
}

func (s *MemStore) Aggregates(ctx context.Context, fn func(Aggregate) error) error {
	s.mu.Lock()
	list := make([]Aggregate, 0, len(s.aggs))
	for _, a := range s.aggs {
		list = append(list, a.Clone())
	}
	s.mu.Unlock()
	SortAggregates(list)
	for _, a := range list {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *MemStore) Records(ctx context.Context, after uint64, fn func(Record) error) error {
	s.mu.Lock()
	i := sort.Search(len(s.records), func(i int) bool { return s.records[i].Seq > after })
	list := append([]Record(nil), s.records[i:]...)
	s.mu.Unlock()
	for i, r := range list {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *MemStore) Ack(ctx context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.meta.LastSeq {
		return fmt.Errorf("%w: %d, last is %d", ErrAckAhead, seq, s.meta.LastSeq)
	}
	if seq > s.meta.Acked {
		s.meta.Acked = seq
	}
	return nil
}

// SortAggregates orders aggregates by key (product, release, type).
func SortAggregates(list []Aggregate) {
	sort.Slice(list, func(i, j int) bool { return list[i].Key().Less(list[j].Key()) })
}

// Less orders keys by product, release, then type.
func (k AggregateKey) Less(o AggregateKey) bool {
	if k.ProductID != o.ProductID {
		return k.ProductID < o.ProductID
	}
	if k.ReleaseID != o.ReleaseID {
		return k.ReleaseID < o.ReleaseID
	}
	return k.Type < o.Type
}
