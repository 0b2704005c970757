// Package kvstore keeps the webhook outbox (webhook.Store) on the control
// plane's transactional key-value interface (store/kv), so one
// implementation serves both of its backends, bbolt and PostgreSQL.
// EnqueueTx puts an event in the outbox inside a caller's kv.Tx, so it
// commits with the change it reports (for the control plane: with the
// audit event of that change).
package kvstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook"
)

var (
	bSubs     = []byte("webhook_subscriptions")
	bEvents   = []byte("webhook_events")
	bQueue    = []byte("webhook_queue")      // event id → nil, not yet expanded (ids sort by creation)
	bDels     = []byte("webhook_deliveries") // id → delivery
	bDue      = []byte("webhook_due")        // next attempt (unix ns, 8 bytes) + id → nil, pending only
	bAttempts = []byte("webhook_attempts")   // delivery id + 0 + n (4 bytes) → attempt
	bBySub    = []byte("webhook_by_sub")     // subscription id + 0 + delivery id → nil

	// Buckets lists the buckets the outbox uses; a backend that needs its
	// buckets created (bbolt) creates these too. PostgreSQL needs nothing.
	Buckets = [][]byte{bSubs, bEvents, bQueue, bDels, bDue, bAttempts, bBySub}
)

// Store is a webhook.Store on a kv.Backend.
type Store struct{ b kv.Backend }

var _ webhook.Store = (*Store)(nil)

// New returns the outbox on b, whose Buckets must exist.
func New(b kv.Backend) *Store { return &Store{b: b} }

func dueKey(t time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
	return append(k, id...)
}

func join(a, b string) []byte {
	k := append([]byte(a), 0)
	return append(k, b...)
}

func getJSON(b kv.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", k, err)
	}
	return true, nil
}

func putJSON(b kv.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

// keys returns the keys of b under pfx (collected first: callers delete).
func keys(b kv.Bucket, pfx []byte) [][]byte {
	var out [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		out = append(out, bytes.Clone(k))
	}
	return out
}

func (s *Store) PutSubscription(ctx context.Context, sub webhook.Subscription) error {
	return s.b.Update(ctx, func(tx kv.Tx) error { return putJSON(tx.Bucket(bSubs), []byte(sub.ID), &sub) })
}

func (s *Store) Subscription(ctx context.Context, id string) (webhook.Subscription, error) {
	var sub webhook.Subscription
	err := s.b.View(ctx, func(tx kv.Tx) error {
		ok, err := getJSON(tx.Bucket(bSubs), []byte(id), &sub)
		if err == nil && !ok {
			err = fmt.Errorf("subscription %q: %w", id, webhook.ErrNotFound)
		}
		return err
	})
	return sub, err
}

func subscriptions(tx kv.Tx) ([]webhook.Subscription, error) {
	var out []webhook.Subscription
	err := tx.Bucket(bSubs).ForEach(func(k, v []byte) error {
		var sub webhook.Subscription
		if err := json.Unmarshal(v, &sub); err != nil {
			return fmt.Errorf("decode subscription %q: %w", k, err)
		}
		out = append(out, sub)
		return nil
	})
	return out, err
}

func (s *Store) Subscriptions(ctx context.Context) ([]webhook.Subscription, error) {
	var out []webhook.Subscription
	err := s.b.View(ctx, func(tx kv.Tx) error {
		var err error
		out, err = subscriptions(tx)
		return err
	})
	return out, err
}

func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.b.Update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket(bSubs)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("subscription %q: %w", id, webhook.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// EnqueueTx adds ev to the outbox inside tx, a read-write transaction of
// the backend the Store is on: the event commits or rolls back with
// whatever else tx writes. An event id already there is a no-op. The
// outbox expands events in id order (catalog ids sort by creation time).
func EnqueueTx(tx kv.Tx, ev webhook.Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	events := tx.Bucket(bEvents)
	if events.Get([]byte(ev.ID)) != nil {
		return nil
	}
	if err := putJSON(events, []byte(ev.ID), &ev); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	if err := tx.Bucket(bQueue).Put([]byte(ev.ID), []byte{}); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	return nil
}

func (s *Store) Enqueue(ctx context.Context, ev webhook.Event) error {
	return s.b.Update(ctx, func(tx kv.Tx) error { return EnqueueTx(tx, ev) })
}

// idle reports, from a read transaction, that bucket holds no key at or
// below upTo (nil: no key at all), so a poll that finds nothing to do
// costs no write transaction.
func (s *Store) idle(ctx context.Context, bucket, upTo []byte) bool {
	idle := true
	_ = s.b.View(ctx, func(tx kv.Tx) error {
		k, _ := tx.Bucket(bucket).Cursor().First()
		idle = k == nil || upTo != nil && bytes.Compare(k[:min(len(k), len(upTo))], upTo) > 0
		return nil
	})
	return idle
}

func (s *Store) Expand(ctx context.Context, now time.Time, limit int, match func(*webhook.Subscription, *webhook.Event) bool) (int, error) {
	if limit <= 0 || s.idle(ctx, bQueue, nil) {
		return 0, nil
	}
	n := 0
	err := s.b.Update(ctx, func(tx kv.Tx) error {
		n = 0
		subs, err := subscriptions(tx)
		if err != nil {
			return err
		}
		queue := tx.Bucket(bQueue)
		var ids [][]byte
		c := queue.Cursor()
		for k, _ := c.First(); k != nil && len(ids) < limit; k, _ = c.Next() {
			ids = append(ids, bytes.Clone(k))
		}
		for _, id := range ids {
			var ev webhook.Event
			ok, err := getJSON(tx.Bucket(bEvents), id, &ev)
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
					if tx.Bucket(bDels).Get([]byte(d.ID)) != nil {
						continue
					}
					if err := putDelivery(tx, nil, &d); err != nil {
						return err
					}
					if err := tx.Bucket(bBySub).Put(join(d.SubscriptionID, d.ID), []byte{}); err != nil {
						return err
					}
				}
			}
			if err := queue.Delete(id); err != nil {
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

// putDelivery writes d and keeps the due index; old is the stored version
// (nil when new).
func putDelivery(tx kv.Tx, old, d *webhook.Delivery) error {
	due := tx.Bucket(bDue)
	if old != nil && old.State == webhook.Pending {
		if err := due.Delete(dueKey(old.NextAttempt, old.ID)); err != nil {
			return err
		}
	}
	if d.State == webhook.Pending {
		if err := due.Put(dueKey(d.NextAttempt, d.ID), []byte{}); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bDels), []byte(d.ID), d)
}

func (s *Store) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]webhook.Claimed, error) {
	end := binary.BigEndian.AppendUint64(nil, uint64(max(now.UnixNano(), 0)))
	if limit <= 0 || s.idle(ctx, bDue, end) {
		return nil, nil
	}
	var out []webhook.Claimed
	err := s.b.Update(ctx, func(tx kv.Tx) error {
		out = nil
		// Collect first: the loop below rewrites the due index.
		var ids []string
		c := tx.Bucket(bDue).Cursor()
		for k, _ := c.First(); len(k) > 8 && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			ids = append(ids, string(k[8:]))
		}
		subs := map[string]*webhook.Subscription{}
		for _, id := range ids {
			if len(out) >= limit {
				break
			}
			var d webhook.Delivery
			if ok, err := getJSON(tx.Bucket(bDels), []byte(id), &d); err != nil || !ok {
				return fmt.Errorf("due delivery %q: missing or unreadable: %v", id, err)
			}
			old := d
			sub, seen := subs[d.SubscriptionID]
			if !seen {
				var sv webhook.Subscription
				ok, err := getJSON(tx.Bucket(bSubs), []byte(d.SubscriptionID), &sv)
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
			if ok, err := getJSON(tx.Bucket(bEvents), []byte(d.EventID), &ev); err != nil || !ok {
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

func (s *Store) Record(ctx context.Context, d webhook.Delivery, lease time.Time, a webhook.Attempt, update func(*webhook.Subscription)) error {
	err := s.b.Update(ctx, func(tx kv.Tx) error {
		var old webhook.Delivery
		ok, err := getJSON(tx.Bucket(bDels), []byte(d.ID), &old)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("delivery %q: %w", d.ID, webhook.ErrNotFound)
		}
		// Number the attempt after those logged (a delivery has few:
		// MaxAttempts per queueing).
		att := tx.Bucket(bAttempts)
		pfx := join(d.ID, "")
		a.DeliveryID, a.N = d.ID, len(keys(att, pfx))+1
		if err := putJSON(att, binary.BigEndian.AppendUint32(bytes.Clone(pfx), uint32(a.N)), &a); err != nil {
			return err
		}
		if old.State == webhook.Pending && old.NextAttempt.Equal(lease) {
			if err := putDelivery(tx, &old, &d); err != nil {
				return err
			}
		}
		if update == nil {
			return nil
		}
		var sub webhook.Subscription
		ok, err = getJSON(tx.Bucket(bSubs), []byte(d.SubscriptionID), &sub)
		if err != nil || !ok {
			return err
		}
		update(&sub)
		return putJSON(tx.Bucket(bSubs), []byte(sub.ID), &sub)
	})
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

func (s *Store) Delivery(ctx context.Context, id string) (webhook.Delivery, error) {
	var d webhook.Delivery
	err := s.b.View(ctx, func(tx kv.Tx) error {
		ok, err := getJSON(tx.Bucket(bDels), []byte(id), &d)
		if err == nil && !ok {
			err = fmt.Errorf("delivery %q: %w", id, webhook.ErrNotFound)
		}
		return err
	})
	return d, err
}

func (s *Store) Deliveries(ctx context.Context, subID string, limit int) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	err := s.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		pfx := join(subID, "")
		c := tx.Bucket(bBySub).Cursor()
		for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var d webhook.Delivery
			if ok, err := getJSON(tx.Bucket(bDels), k[len(pfx):], &d); err != nil || !ok {
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
	err := s.b.View(ctx, func(tx kv.Tx) error {
		out = nil
		if tx.Bucket(bDels).Get([]byte(deliveryID)) == nil {
			return fmt.Errorf("delivery %q: %w", deliveryID, webhook.ErrNotFound)
		}
		pfx := join(deliveryID, "")
		c := tx.Bucket(bAttempts).Cursor()
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
	return s.b.Update(ctx, func(tx kv.Tx) error {
		var d webhook.Delivery
		ok, err := getJSON(tx.Bucket(bDels), []byte(id), &d)
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
	err := s.b.Update(ctx, func(tx kv.Tx) error {
		n = 0
		dels, att, bySub := tx.Bucket(bDels), tx.Bucket(bAttempts), tx.Bucket(bBySub)
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
			for _, k := range keys(att, join(d.ID, "")) {
				if err := att.Delete(k); err != nil {
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
		if err := tx.Bucket(bQueue).ForEach(func(k, _ []byte) error { live[string(k)] = true; return nil }); err != nil {
			return err
		}
		events := tx.Bucket(bEvents)
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

// RewriteSubscriptionsTx calls fn for every subscription inside tx and
// stores those it reports changed; it returns how many it stored. The
// control plane re-seals the subscriptions' secrets with it when its
// data-encryption key rotates.
func RewriteSubscriptionsTx(tx kv.Tx, fn func(*webhook.Subscription) (bool, error)) (int, error) {
	subs, err := subscriptions(tx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range subs {
		changed, err := fn(&subs[i])
		if err != nil {
			return n, fmt.Errorf("subscription %q: %w", subs[i].ID, err)
		}
		if !changed {
			continue
		}
		if err := putJSON(tx.Bucket(bSubs), []byte(subs[i].ID), &subs[i]); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
