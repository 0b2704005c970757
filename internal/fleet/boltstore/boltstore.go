// Package boltstore keeps fleet state (fleet.Store) in bbolt buckets
// prefixed "fleet_", so it can live in a daemon's existing database file
// (New) or in a file of its own (Open).
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/fleet"
)

var (
	bktMeta   = []byte("fleet_meta")
	bktAggs   = []byte("fleet_aggregates")
	bktEvents = []byte("fleet_events")

	keyStoreID = []byte("store_id")
	keyLastSeq = []byte("last_seq")
	keyAcked   = []byte("acked")
)

// Store is a fleet.Store over bbolt.
type Store struct {
	db   *bolt.DB
	owns bool
}

var _ fleet.Store = (*Store)(nil)

// New uses db (which the caller keeps and closes), creating the buckets
// and the store id when absent.
func New(db *bolt.DB) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktMeta, bktAggs, bktEvents} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		if meta.Get(keyStoreID) == nil {
			return meta.Put(keyStoreID, []byte(fleet.NewStoreID()))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init fleet store: %w", err)
	}
	return &Store{db: db}, nil
}

// Open opens (creating) a bbolt file of its own at path; Close closes it.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open fleet store: %w", err)
	}
	s, err := New(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.owns = true
	return s, nil
}

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.owns {
		return s.db.Close()
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func aggKey(k fleet.AggregateKey) []byte {
	b := make([]byte, 0, len(k.ProductID)+len(k.ReleaseID)+len(k.Type)+2)
	b = append(b, k.ProductID...)
	b = append(b, 0)
	b = append(b, k.ReleaseID...)
	b = append(b, 0)
	return append(b, k.Type...)
}

func (s *Store) Meta(ctx context.Context) (fleet.Meta, error) {
	var m fleet.Meta
	err := s.db.View(func(tx *bolt.Tx) error {
		m = readMeta(tx)
		return nil
	})
	return m, err
}

func readMeta(tx *bolt.Tx) fleet.Meta {
	meta := tx.Bucket(bktMeta)
	m := fleet.Meta{StoreID: string(meta.Get(keyStoreID)), LastSeq: getUint(meta, keyLastSeq), Acked: getUint(meta, keyAcked)}
	if k, _ := tx.Bucket(bktEvents).Cursor().First(); len(k) == 8 {
		m.OldestSeq = binary.BigEndian.Uint64(k)
	}
	return m
}

func (s *Store) Commit(ctx context.Context, c fleet.Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, aggs, events := tx.Bucket(bktMeta), tx.Bucket(bktAggs), tx.Bucket(bktEvents)
		// Keys only ever grow: fill pages instead of splitting them in half.
		events.FillPercent = 0.95
		next := getUint(meta, keyLastSeq) + 1
		for i := range c.Records {
			if c.Records[i].Seq != next+uint64(i) {
				return fmt.Errorf("%w: record %d has sequence %d, want %d", fleet.ErrSequence, i, c.Records[i].Seq, next+uint64(i))
			}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for i := range c.Records {
			buf.Reset()
			if err := enc.Encode(&c.Records[i]); err != nil {
				return err
			}
			if err := events.Put(seqKey(c.Records[i].Seq), bytes.Clone(buf.Bytes())); err != nil {
				return err
			}
		}
		if n := len(c.Records); n > 0 {
			if err := meta.Put(keyLastSeq, seqKey(c.Records[n-1].Seq)); err != nil {
				return err
			}
		}
		for i := range c.Put {
			v, err := json.Marshal(&c.Put[i])
			if err != nil {
				return err
			}
			if err := aggs.Put(aggKey(c.Put[i].Key()), v); err != nil {
				return err
			}
		}
		for _, k := range c.Drop {
			if err := aggs.Delete(aggKey(k)); err != nil {
				return err
			}
		}
		if c.TrimBefore > 0 {
			cur := events.Cursor()
			for k, _ := cur.First(); k != nil && binary.BigEndian.Uint64(k) < c.TrimBefore; k, _ = cur.First() {
				if err := cur.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit fleet state: %w", err)
	}
	return nil
}

func (s *Store) Aggregates(ctx context.Context, fn func(fleet.Aggregate) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktAggs).ForEach(func(k, v []byte) error {
			var a fleet.Aggregate
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode fleet aggregate %q: %w", k, err)
			}
			return fn(a)
		})
	})
}

func (s *Store) Records(ctx context.Context, after uint64, fn func(fleet.Record) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bktEvents).Cursor()
		n := 0
		for k, v := cur.Seek(seqKey(after + 1)); k != nil; k, v = cur.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var r fleet.Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode fleet event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) Ack(ctx context.Context, seq uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if last := getUint(meta, keyLastSeq); seq > last {
			return fmt.Errorf("%w: %d, last is %d", fleet.ErrAckAhead, seq, last)
		}
		if seq <= getUint(meta, keyAcked) {
			return nil
		}
		return meta.Put(keyAcked, seqKey(seq))
	})
}

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }
