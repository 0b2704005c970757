// Package kvsink is the vendor's side of fleet ingestion (fleet.Sink) on
// the control plane's transactional key-value interface (store/kv), so it
// works on both of its backends, bbolt and PostgreSQL. Use Run as the
// fleet.Transactor of fleet.ImportBatched, and Sources as the input of
// fleet.Evaluate.
package kvsink

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/store/kv"
)

var (
	bCursors   = []byte("fleet_sink_cursors")    // mirror \0 store → cursor
	bAggs      = []byte("fleet_sink_aggregates") // mirror \0 store \0 product \0 release \0 type → stored aggregate
	bByRelease = []byte("fleet_sink_by_release") // release \0 mirror \0 store \0 product \0 type → nil
	bEvents    = []byte("fleet_sink_events")     // mirror \0 store \0 seq (8 bytes) → record

	// Buckets lists the buckets the sink uses; a backend that needs its
	// buckets created (bbolt) creates these too. PostgreSQL needs nothing.
	Buckets = [][]byte{bCursors, bAggs, bByRelease, bEvents}
)

// Cursor is what the vendor holds about one mirror store.
type Cursor struct {
	MirrorID string    `json:"mirror_id"`
	StoreID  string    `json:"store_id"`
	TenantID string    `json:"tenant_id,omitempty"`
	Through  uint64    `json:"through"` // the acknowledgement to send back
	AsOf     time.Time `json:"as_of"`   // the latest report's created_at
}

type storedAgg struct {
	AsOf      time.Time       `json:"as_of"`
	Aggregate fleet.Aggregate `json:"aggregate"`
}

// Sink is the vendor's fleet state on a kv.Backend.
type Sink struct{ b kv.Backend }

// New returns the sink on b, whose Buckets must exist.
func New(b kv.Backend) *Sink { return &Sink{b: b} }

// Run is a fleet.Transactor: fn runs in one read-write transaction.
func (s *Sink) Run(ctx context.Context, fn func(fleet.Sink) error) error {
	return s.b.Update(ctx, func(tx kv.Tx) error { return fn(InTx(tx)) })
}

// InTx is a fleet.Sink writing in tx.
func InTx(tx kv.Tx) fleet.Sink { return txSink{tx} }

type txSink struct{ tx kv.Tx }

func originKey(o fleet.Origin) []byte { return join(o.MirrorID, o.StoreID) }

func join(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func (t txSink) PutAggregate(_ context.Context, o fleet.Origin, asOf time.Time, a fleet.Aggregate) (bool, error) {
	k := join(o.MirrorID, o.StoreID, a.ProductID, a.ReleaseID, string(a.Type))
	b := t.tx.Bucket(bAggs)
	if raw := b.Get(k); raw != nil {
		var cur storedAgg
		if err := json.Unmarshal(raw, &cur); err != nil {
			return false, fmt.Errorf("decode fleet aggregate %q: %w", k, err)
		}
		if a.LastSeq < cur.Aggregate.LastSeq || a.LastSeq == cur.Aggregate.LastSeq && !asOf.After(cur.AsOf) {
			return false, nil
		}
	}
	raw, err := json.Marshal(storedAgg{AsOf: asOf.UTC(), Aggregate: a})
	if err != nil {
		return false, err
	}
	if err := b.Put(k, raw); err != nil {
		return false, err
	}
	return true, t.tx.Bucket(bByRelease).Put(join(a.ReleaseID, o.MirrorID, o.StoreID, a.ProductID, string(a.Type)), []byte{})
}

func (t txSink) PutEvent(_ context.Context, o fleet.Origin, r fleet.Record) (bool, error) {
	k := binary.BigEndian.AppendUint64(append(originKey(o), 0), r.Seq)
	b := t.tx.Bucket(bEvents)
	if b.Get(k) != nil {
		return false, nil
	}
	raw, err := json.Marshal(&r)
	if err != nil {
		return false, err
	}
	return true, b.Put(k, raw)
}

func (t txSink) PutCursor(_ context.Context, o fleet.Origin, through uint64, asOf time.Time) (bool, error) {
	k := originKey(o)
	b := t.tx.Bucket(bCursors)
	c := Cursor{MirrorID: o.MirrorID, StoreID: o.StoreID, TenantID: o.TenantID}
	if raw := b.Get(k); raw != nil {
		if err := json.Unmarshal(raw, &c); err != nil {
			return false, fmt.Errorf("decode fleet cursor %q: %w", k, err)
		}
		if through < c.Through || through == c.Through && !asOf.After(c.AsOf) {
			return false, nil
		}
	}
	c.Through, c.AsOf = max(through, c.Through), asOf.UTC()
	raw, err := json.Marshal(&c)
	if err != nil {
		return false, err
	}
	return true, b.Put(k, raw)
}

// Cursors lists every mirror store that has reported.
func (s *Sink) Cursors(ctx context.Context) ([]Cursor, error) {
	var out []Cursor
	err := s.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		return tx.Bucket(bCursors).ForEach(func(k, v []byte) error {
			var c Cursor
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode fleet cursor %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// Sources returns, for every mirror store that has reported aggregates of
// releaseID, those aggregates and the latest report that carried them:
// the input of fleet.Evaluate (same rules as fleet.MemSink.Sources).
func (s *Sink) Sources(ctx context.Context, releaseID string) ([]fleet.Source, error) {
	var out []fleet.Source
	err := s.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		pfx := append([]byte(releaseID), 0)
		var srcs []*fleet.Source
		idx := map[string]*fleet.Source{}
		c := tx.Bucket(bByRelease).Cursor()
		for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			parts := bytes.Split(k[len(pfx):], []byte{0}) // mirror, store, product, type
			if len(parts) != 4 {
				return fmt.Errorf("fleet release index: malformed key %q", k)
			}
			mirror, store, product, typ := string(parts[0]), string(parts[1]), string(parts[2]), string(parts[3])
			var sa storedAgg
			raw := tx.Bucket(bAggs).Get(join(mirror, store, product, releaseID, typ))
			if raw == nil {
				continue
			}
			if err := json.Unmarshal(raw, &sa); err != nil {
				return fmt.Errorf("decode fleet aggregate: %w", err)
			}
			ok := mirror + "\x00" + store
			src := idx[ok]
			if src == nil {
				src = &fleet.Source{MirrorID: mirror, StoreID: store, AsOf: sa.AsOf}
				idx[ok] = src
				srcs = append(srcs, src)
			}
			if sa.AsOf.After(src.AsOf) {
				src.AsOf = sa.AsOf
			}
			src.Aggregates = append(src.Aggregates, sa.Aggregate)
		}
		for _, src := range srcs {
			fleet.SortAggregates(src.Aggregates)
			out = append(out, *src)
		}
		return nil
	})
	return out, err
}

// Events calls fn for the events held from one mirror store above
// after, in sequence order.
func (s *Sink) Events(ctx context.Context, o fleet.Origin, after uint64, fn func(fleet.Record) error) error {
	return s.b.View(ctx, func(tx kv.Tx) error {
		pfx := append(originKey(o), 0)
		c := tx.Bucket(bEvents).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(pfx), after+1)); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			var r fleet.Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode fleet event %q: %w", k, err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Prune deletes the events received (at their mirror) before before;
// aggregates and cursors are small and kept. It returns how many it
// deleted.
func (s *Sink) Prune(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.b.Update(ctx, func(tx kv.Tx) error {
		n = 0
		b := tx.Bucket(bEvents)
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r struct {
				ReceivedAt time.Time `json:"received_at"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode fleet event %q: %w", k, err)
			}
			if r.ReceivedAt.Before(before) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune fleet events: %w", err)
	}
	return n, nil
}
