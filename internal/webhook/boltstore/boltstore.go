// Package boltstore keeps the webhook outbox (webhook.Store) in bbolt
// buckets prefixed "webhook_", in a daemon's existing database (New) or a
// file of its own (Open). EnqueueTx puts an event in the outbox inside
// the caller's own transaction, so it commits with the change it reports.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/webhook"
)

var (
	bktSubs     = []byte("webhook_subscriptions")
	bktEvents   = []byte("webhook_events")
	bktQueue    = []byte("webhook_queue")      // seq → event id, not yet expanded
	bktDels     = []byte("webhook_deliveries") // id → delivery
	bktDue      = []byte("webhook_due")        // next attempt (unix ns) + id → nil, pending only
	bktAttempts = []byte("webhook_attempts")   // delivery id + 0 + n → attempt
	bktBySub    = []byte("webhook_by_sub")     // subscription id + 0 + delivery id → nil

	allBuckets = [][]byte{bktSubs, bktEvents, bktQueue, bktDels, bktDue, bktAttempts, bktBySub}
)

// Store is a webhook.Store over bbolt.
type Store struct {
	db   *bolt.DB
	owns bool
}

var _ webhook.Store = (*Store)(nil)

// New uses db (the caller keeps and closes it), creating the buckets.
func New(db *bolt.DB) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init webhook store: %w", err)
	}
	return &Store{db: db}, nil
}

// Open opens (creating) a bbolt file of its own; Close closes it.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open webhook store: %w", err)
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

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

func dueKey(t time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
	return append(k, id...)
}

func join(a string, b string) []byte {
	k := append([]byte(a), 0)
	return append(k, b...)
}

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", k, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

func (s *Store) PutSubscription(ctx context.Context, sub webhook.Subscription) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bktSubs), []byte(sub.ID), &sub) })
}

func (s *Store) Subscription(ctx context.Context, id string) (webhook.Subscription, error) {
	var sub webhook.Subscription
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bktSubs), []byte(id), &sub)
		if err == nil && !ok {
			err = fmt.Errorf("subscription %q: %w", id, webhook.ErrNotFound)
		}
		return err
	})
	return sub, err
}

func (s *Store) Subscriptions(ctx context.Context) ([]webhook.Subscription, error) {
	var out []webhook.Subscription
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktSubs).ForEach(func(k, v []byte) error {
			var sub webhook.Subscription
			if err := json.Unmarshal(v, &sub); err != nil {
				return fmt.Errorf("decode subscription %q: %w", k, err)
			}
			out = append(out, sub)
			return nil
		})
	})
	return out, err
}

func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktSubs)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("subscription %q: %w", id, webhook.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// EnqueueTx adds ev to the outbox inside tx (a read-write transaction on
// the database given to New or Open): the event commits or rolls back
// with whatever else tx writes. An event id already there is a no-op.
func EnqueueTx(tx *bolt.Tx, ev webhook.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	events, queue := tx.Bucket(bktEvents), tx.Bucket(bktQueue)
	if events == nil || queue == nil {
		return errors.New("enqueue webhook event: webhook buckets missing (call boltstore.New on this database first)")
	}
	if events.Get([]byte(ev.ID)) != nil {
		return nil
	}
	if err := putJSON(events, []byte(ev.ID), &ev); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	seq, err := queue.NextSequence()
	if err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	return queue.Put(binary.BigEndian.AppendUint64(nil, seq), []byte(ev.ID))
}

func (s *Store) Enqueue(ctx context.Context, ev webhook.Event) error {
	return s.db.Update(func(tx *bolt.Tx) error { return EnqueueTx(tx, ev) })
}

// idle reports, from a read transaction, that bucket holds no key at or
// below upTo (nil: no key at all), so a poll that finds nothing to do
// costs no write transaction (and no fsync).
func (s *Store) idle(bucket, upTo []byte) bool {
	idle := true
	_ = s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucket).Cursor().First()
		idle = k == nil || upTo != nil && bytes.Compare(k[:min(len(k), len(upTo))], upTo) > 0
		return nil
	})
	return idle
}

func (s *Store) Expand(ctx context.Context, now time.Time, limit int, match func(*webhook.Subscription, *webhook.Event) bool) (int, error) {
	if s.idle(bktQueue, nil) {
		return 0, nil
	}
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		queue := tx.Bucket(bktQueue)
		var subs []webhook.Subscription
		err := tx.Bucket(bktSubs).ForEach(func(k, v []byte) error {
			var sub webhook.Subscription
			if err := json.Unmarshal(v, &sub); err != nil {
				return fmt.Errorf("decode subscription %q: %w", k, err)
			}
			subs = append(subs, sub)
			return nil
		})
		if err != nil {
			return err
		}
		cur := queue.Cursor()
		for k, v := cur.First(); k != nil && n < limit; k, v = cur.First() {
			var ev webhook.Event
			ok, err := getJSON(tx.Bucket(bktEvents), v, &ev)
			if err != nil {
				return err
			}
			if ok {
				for i := range subs {
					if !match(&subs[i], &ev) {
						continue
					}
					d := webhook.Delivery{ID: webhook.DeliveryID(ev.ID, subs[i].ID), EventID: ev.ID, SubscriptionID: subs[i].ID,
						State: webhook.Pending, NextAttempt: now, CreatedAt: now}
					if tx.Bucket(bktDels).Get([]byte(d.ID)) != nil {
						continue
					}
					if err := putDelivery(tx, nil, &d); err != nil {
						return err
					}
					if err := tx.Bucket(bktBySub).Put(join(d.SubscriptionID, d.ID), nil); err != nil {
						return err
					}
				}
			}
			if err := cur.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expand webhook events: %w", err)
	}
	return n, nil
}

// putDelivery writes d and keeps the due index: old is the stored version
// (nil when new).
func putDelivery(tx *bolt.Tx, old, d *webhook.Delivery) error {
	due := tx.Bucket(bktDue)
	if old != nil && old.State == webhook.Pending {
		if err := due.Delete(dueKey(old.NextAttempt, old.ID)); err != nil {
			return err
		}
	}
	if d.State == webhook.Pending {
		if err := due.Put(dueKey(d.NextAttempt, d.ID), nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bktDels), []byte(d.ID), d)
}

func (s *Store) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]webhook.Claimed, error) {
	if limit <= 0 || s.idle(bktDue, binary.BigEndian.AppendUint64(nil, uint64(max(now.UnixNano(), 0)))) {
		return nil, nil
	}
	var out []webhook.Claimed
	err := s.db.Update(func(tx *bolt.Tx) error {
		end := binary.BigEndian.AppendUint64(nil, uint64(max(now.UnixNano(), 0)))
		// Collect first: the loop below rewrites the due index.
		var ids []string
		c := tx.Bucket(bktDue).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			ids = append(ids, string(k[8:]))
		}
		subs := map[string]*webhook.Subscription{}
		for _, id := range ids {
			if len(out) >= limit {
				break
			}
			var d webhook.Delivery
			if ok, err := getJSON(tx.Bucket(bktDels), []byte(id), &d); err != nil || !ok {
				return fmt.Errorf("due delivery %q: missing or unreadable: %v", id, err)
			}
			old := d
			sub, seen := subs[d.SubscriptionID]
			if !seen {
				var sv webhook.Subscription
				ok, err := getJSON(tx.Bucket(bktSubs), []byte(d.SubscriptionID), &sv)
				if err != nil {
					return err
				}
				if ok {
					sub = &sv
				}
				subs[d.SubscriptionID] = sub
			}
			if sub == nil {
				d.State, d.LastError = webhook.Failed, "subscription deleted"
				if err := putDelivery(tx, &old, &d); err != nil {
					return err
				}
				continue
			}
			if sub.Disabled {
				continue
			}
			var ev webhook.Event
			if ok, err := getJSON(tx.Bucket(bktEvents), []byte(d.EventID), &ev); err != nil || !ok {
				return fmt.Errorf("event %q of delivery %q: missing or unreadable: %v", d.EventID, id, err)
			}
			d.NextAttempt = leaseUntil
			if err := putDelivery(tx, &old, &d); err != nil {
				return err
			}
			out = append(out, webhook.Claimed{Delivery: d, Event: ev, Subscription: *sub})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return out, nil
}

func (s *Store) Record(ctx context.Context, d webhook.Delivery, a webhook.Attempt, update func(*webhook.Subscription)) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var old webhook.Delivery
		ok, err := getJSON(tx.Bucket(bktDels), []byte(d.ID), &old)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("delivery %q: %w", d.ID, webhook.ErrNotFound)
		}
		att := tx.Bucket(bktAttempts)
		// Number the attempt after the last one logged (a delivery has
		// few: MaxAttempts per queueing).
		pfx := join(d.ID, "")
		n := 1
		c := att.Cursor()
		for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			n++
		}
		a.DeliveryID, a.N = d.ID, n
		if err := putJSON(att, binary.BigEndian.AppendUint32(bytes.Clone(pfx), uint32(n)), &a); err != nil {
			return err
		}
		if err := putDelivery(tx, &old, &d); err != nil {
			return err
		}
		if update == nil {
			return nil
		}
		var sub webhook.Subscription
		ok, err = getJSON(tx.Bucket(bktSubs), []byte(d.SubscriptionID), &sub)
		if err != nil || !ok {
			return err
		}
		update(&sub)
		return putJSON(tx.Bucket(bktSubs), []byte(sub.ID), &sub)
	})
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

func (s *Store) Delivery(ctx context.Context, id string) (webhook.Delivery, error) {
	var d webhook.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bktDels), []byte(id), &d)
		if err == nil && !ok {
			err = fmt.Errorf("delivery %q: %w", id, webhook.ErrNotFound)
		}
		return err
	})
	return d, err
}

func (s *Store) Deliveries(ctx context.Context, subID string, limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		pfx := join(subID, "")
		c := tx.Bucket(bktBySub).Cursor()
		for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var d webhook.Delivery
			if ok, err := getJSON(tx.Bucket(bktDels), k[len(pfx):], &d); err != nil || !ok {
				return fmt.Errorf("delivery %q: missing or unreadable: %v", k[len(pfx):], err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	var out []webhook.Attempt
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bktDels).Get([]byte(deliveryID)) == nil {
			return fmt.Errorf("delivery %q: %w", deliveryID, webhook.ErrNotFound)
		}
		pfx := join(deliveryID, "")
		c := tx.Bucket(bktAttempts).Cursor()
		for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			var a webhook.Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode attempt %q: %w", k, err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

func (s *Store) Redeliver(ctx context.Context, id string, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var d webhook.Delivery
		ok, err := getJSON(tx.Bucket(bktDels), []byte(id), &d)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("delivery %q: %w", id, webhook.ErrNotFound)
		}
		old := d
		d.State, d.Attempts, d.NextAttempt = webhook.Pending, 0, now
		return putDelivery(tx, &old, &d)
	})
}

func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		dels, att, bySub := tx.Bucket(bktDels), tx.Bucket(bktAttempts), tx.Bucket(bktBySub)
		live := map[string]bool{}
		var doomed []webhook.Delivery
		err := dels.ForEach(func(k, v []byte) error {
			var d webhook.Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode delivery %q: %w", k, err)
			}
			if d.State != webhook.Pending && d.CreatedAt.Before(before) {
				doomed = append(doomed, d)
			} else {
				live[d.EventID] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range doomed {
			pfx := join(d.ID, "")
			c := att.Cursor()
			for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Seek(pfx) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			if err := bySub.Delete(join(d.SubscriptionID, d.ID)); err != nil {
				return err
			}
			if err := dels.Delete([]byte(d.ID)); err != nil {
				return err
			}
			n++
		}
		if err := tx.Bucket(bktQueue).ForEach(func(_, v []byte) error { live[string(v)] = true; return nil }); err != nil {
			return err
		}
		events := tx.Bucket(bktEvents)
		var dead [][]byte
		err = events.ForEach(func(k, v []byte) error {
			if live[string(k)] {
				return nil
			}
			var ev webhook.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %q: %w", k, err)
			}
			if ev.CreatedAt.Before(before) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := events.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook outbox: %w", err)
	}
	return n, nil
}
