package webhook

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Claimed is a delivery handed to a dispatcher, with what it needs to send.
type Claimed struct {
	Delivery     Delivery
	Event        Event
	Subscription Subscription
}

// Store is the durable outbox. Implementations: MemStore here and
// boltstore (bbolt); storetest.Run is their shared contract. Every method
// is one transaction.
//
// Putting an event in the outbox in the same transaction as the change it
// reports is the point of an outbox: Enqueue here is that write in a
// transaction of its own, and boltstore.EnqueueTx is the same write inside
// a caller's *bbolt.Tx. Enqueueing only stores the event; expanding it
// into deliveries (which reads the subscriptions) is the dispatcher's job.
type Store interface {
	PutSubscription(ctx context.Context, s Subscription) error
	Subscription(ctx context.Context, id string) (Subscription, error)
	Subscriptions(ctx context.Context) ([]Subscription, error)
	// DeleteSubscription removes s; its pending deliveries fail when
	// claimed ("subscription deleted").
	DeleteSubscription(ctx context.Context, id string) error

	// Enqueue adds ev to the outbox; an event id already there is a no-op.
	Enqueue(ctx context.Context, ev Event) error
	// Expand takes up to limit enqueued events, in id order (catalog ids
	// sort by creation time; the order is best effort), and creates a
	// pending delivery due at now for every subscription match accepts.
	// It returns how many events it expanded.
	Expand(ctx context.Context, now time.Time, limit int, match func(*Subscription, *Event) bool) (int, error)
	// Claim returns up to limit pending deliveries due at now whose
	// subscription is enabled, earliest due first, and moves them to
	// leaseUntil: a dispatcher that dies before Record leaves them to come
	// due again (at least once). Deliveries of deleted subscriptions are
	// failed instead.
	Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Claimed, error)
	// Record logs attempt a (numbering it), stores d as given, and applies
	// update to d's subscription as it is now (if it still exists). lease
	// is the NextAttempt the claim set: if the stored delivery no longer
	// has it, or is no longer pending (redelivered by hand meanwhile, or
	// claimed again after the lease lapsed), the attempt is logged and the
	// subscription updated, but the delivery is left as it is.
	Record(ctx context.Context, d Delivery, lease time.Time, a Attempt, update func(*Subscription)) error

	Delivery(ctx context.Context, id string) (Delivery, error)
	// Deliveries lists a subscription's deliveries in id order (event
	// ids sort by time); limit 0 means all.
	Deliveries(ctx context.Context, subID string, limit int) ([]Delivery, error)
	Attempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// Redeliver requeues a delivery (any state) due at now, with its
	// attempt count since queueing reset; the log keeps every attempt.
	Redeliver(ctx context.Context, id string, now time.Time) error
	// Prune bounds the outbox: it deletes delivered and failed deliveries
	// created before before, with their attempts, then the expanded events
	// created before before that no delivery refers to any more. It
	// returns how many deliveries it deleted.
	Prune(ctx context.Context, before time.Time) (int, error)
}

// MemStore is a Store in memory, for tests.
type MemStore struct {
	mu       sync.Mutex
	subs     map[string]Subscription
	events   map[string]Event
	queue    []string
	dels     map[string]Delivery
	attempts map[string][]Attempt
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{subs: map[string]Subscription{}, events: map[string]Event{}, dels: map[string]Delivery{}, attempts: map[string][]Attempt{}}
}

func (m *MemStore) PutSubscription(ctx context.Context, s Subscription) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.EventTypes = append([]string(nil), s.EventTypes...)
	m.subs[s.ID] = s
	return nil
}

func (m *MemStore) Subscription(ctx context.Context, id string) (Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return Subscription{}, fmt.Errorf("subscription %q: %w", id, ErrNotFound)
	}
	return s, nil
}

func (m *MemStore) Subscriptions(ctx context.Context) ([]Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Subscription, 0, len(m.subs))
	for _, s := range m.subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *MemStore) DeleteSubscription(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[id]; !ok {
		return fmt.Errorf("subscription %q: %w", id, ErrNotFound)
	}
	delete(m.subs, id)
	return nil
}

func (m *MemStore) Enqueue(ctx context.Context, ev Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("enqueue webhook event: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.events[ev.ID]; ok {
		return nil
	}
	m.events[ev.ID] = ev
	i := sort.SearchStrings(m.queue, ev.ID) // kept in id order, as the contract says
	m.queue = append(m.queue, "")
	copy(m.queue[i+1:], m.queue[i:])
	m.queue[i] = ev.ID
	return nil
}

func (m *MemStore) Expand(ctx context.Context, now time.Time, limit int, match func(*Subscription, *Event) bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(limit, len(m.queue))
	subs := make([]Subscription, 0, len(m.subs))
	for _, s := range m.subs {
		subs = append(subs, s)
	}
	for _, id := range m.queue[:n] {
		ev := m.events[id]
		for i := range subs {
			if !match(&subs[i], &ev) {
				continue
			}
			did := DeliveryID(ev.ID, subs[i].ID)
			if _, ok := m.dels[did]; !ok {
				m.dels[did] = Delivery{ID: did, EventID: ev.ID, SubscriptionID: subs[i].ID, State: Pending, NextAttempt: now, CreatedAt: now}
			}
		}
	}
	m.queue = append([]string(nil), m.queue[n:]...)
	return n, nil
}

func (m *MemStore) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Claimed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []Delivery
	for _, d := range m.dels {
		if d.State == Pending && !d.NextAttempt.After(now) {
			due = append(due, d)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].NextAttempt.Equal(due[j].NextAttempt) {
			return due[i].NextAttempt.Before(due[j].NextAttempt)
		}
		return due[i].ID < due[j].ID
	})
	var out []Claimed
	for _, d := range due {
		if len(out) >= limit {
			break
		}
		s, ok := m.subs[d.SubscriptionID]
		if !ok {
			d.State, d.LastError = Failed, "subscription deleted"
			m.dels[d.ID] = d
			continue
		}
		if s.Disabled {
			continue
		}
		d.NextAttempt = leaseUntil
		m.dels[d.ID] = d
		out = append(out, Claimed{Delivery: d, Event: m.events[d.EventID], Subscription: s})
	}
	return out, nil
}

func (m *MemStore) Record(ctx context.Context, d Delivery, lease time.Time, a Attempt, update func(*Subscription)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.dels[d.ID]
	if !ok {
		return fmt.Errorf("delivery %q: %w", d.ID, ErrNotFound)
	}
	a.DeliveryID = d.ID
	a.N = len(m.attempts[d.ID]) + 1
	m.attempts[d.ID] = append(m.attempts[d.ID], a)
	if old.State == Pending && old.NextAttempt.Equal(lease) {
		m.dels[d.ID] = d
	}
	if s, ok := m.subs[d.SubscriptionID]; ok && update != nil {
		update(&s)
		m.subs[s.ID] = s
	}
	return nil
}

func (m *MemStore) Delivery(ctx context.Context, id string) (Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dels[id]
	if !ok {
		return Delivery{}, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	return d, nil
}

func (m *MemStore) Deliveries(ctx context.Context, subID string, limit int) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Delivery
	for _, d := range m.dels {
		if d.SubscriptionID == subID {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *MemStore) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.dels[deliveryID]; !ok {
		return nil, fmt.Errorf("delivery %q: %w", deliveryID, ErrNotFound)
	}
	return append([]Attempt(nil), m.attempts[deliveryID]...), nil
}

func (m *MemStore) Redeliver(ctx context.Context, id string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dels[id]
	if !ok {
		return fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	d.State, d.Attempts, d.NextAttempt = Pending, 0, now
	m.dels[id] = d
	return nil
}

func (m *MemStore) Prune(ctx context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	live := map[string]bool{}
	for id, d := range m.dels {
		if d.State != Pending && d.CreatedAt.Before(before) {
			delete(m.dels, id)
			delete(m.attempts, id)
			n++
			continue
		}
		live[d.EventID] = true
	}
	for _, id := range m.queue {
		live[id] = true
	}
	for id, ev := range m.events {
		if !live[id] && ev.CreatedAt.Before(before) {
			delete(m.events, id)
		}
	}
	return n, nil
}
