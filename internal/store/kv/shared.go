package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Shared writes (issue 18: writes that scale across instances). On a
// backend with a SharedUpdater (PostgreSQL), writes that commute with each
// other run in shared transactions, concurrently across instances,
// instead of one at a time under the backend's write lock. An operation
// may run shared only when
//
//   - every key whose absence or value it checks is one it writes (a
//     new object's id, its unique index key), so that two shared
//     transactions racing past the same check write the same key and the
//     backend makes one of them run again (a Delete of a key found absent
//     does not count: the database sees no write); or
//   - the key is one only exclusive writes change (the product a release
//     names, a tenant's status): shared and exclusive transactions never
//     overlap, and a shared one always reads the state after the
//     exclusive ones that committed before it began; or
//   - the writes that change the key read nothing this write changes
//     (a lease issuance reads the subject's seat assignment, which seat
//     writes change, and they read no lease state): a shared write that
//     read the key before a concurrent change committed is then
//     serialized before that change, as if it had run first, and no
//     cycle can close (a seat write's only conflicts are on the keys it
//     writes).
//
// CreateRelease, AcquireLease, ReleaseLease, AssignSeat, RevokeSeat,
// TouchToken and the Idempotency-Key reservations (Reserve, Complete,
// Release) are shared; every other write stays exclusive.
//
// The audit chain cannot take a new event from concurrent transactions
// (each would extend the same head), so a shared transaction writes the
// events of its calls, in call order, as one row of bAuditPending,
// committed with its changes, and a sequencer
// appends pending events to the chain in batches, one transaction each
// (issue 18's "single sequencer that appends a batch of events per
// transaction"): after every shared batch, in the background; before an
// exclusive transaction appends its own event (so that a change made
// after a shared one comes after it on the chain); and before the audit
// log is read (so that a caller sees the events of its own writes). A
// crash between a shared commit and its sequencing loses nothing: the
// events wait in bAuditPending for the next sequencer run. The chain
// holds every event exactly once and verifies as before; its order among
// concurrent shared transactions is the creation time of their first
// events.

// txState is the state of one backend transaction, shared by the calls of
// a grouped batch.
type txState struct {
	shared  bool // a shared transaction: events go to bAuditPending
	settled bool // pending events were chained in this transaction
	// events: the events of the batch's calls that succeeded, stored in
	// one pending row before the commit (committed: left pending).
	events []*catalog.AuditEvent
}

// updateShared is updateGrouped in a shared transaction, when the backend
// has them (see above for what fn may do); else updateGrouped.
func (db *Store) updateShared(ctx context.Context, keys []BucketKey, fn func(*wtx) error) error {
	return db.updateSharedHot(ctx, keys, nil, fn)
}

// updateSharedHot is updateShared for a write to hot keys, which other
// instances' shared writes are likely to write too (SharedUpdater).
func (db *Store) updateSharedHot(ctx context.Context, keys, hot []BucketKey, fn func(*wtx) error) error {
	return db.updateSharedCall(&groupCall{ctx: ctx, keys: keys, hot: hot, fn: fn})
}

// updateSharedCall is updateShared for a call built by the caller (with
// keys read ahead in two steps: groupCall's then).
func (db *Store) updateSharedCall(c *groupCall) error {
	ctx := c.ctx
	if db.shared == nil {
		return db.updateGrouped(ctx, c.keys, c.fn)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db.sharedGroup.Do(c, db.commitShared)
	return c.err
}

// PendingEvent returns the bAuditPending row that a shared write stored
// for ev before pending records were batched (version 1), for tests that
// stage one. The key orders pending records by creation time, then id.
// The value is version byte 1 and ev's body (pendingBody).
func PendingEvent(ev *catalog.AuditEvent) (key, value []byte, err error) {
	body, err := pendingBody(nil, ev)
	if err != nil {
		return nil, nil, err
	}
	return pendingKey(ev), append([]byte{1}, body...), nil
}

// PendingEvents returns the bAuditPending row of the events of one shared
// transaction, in the order they are to be chained: one row a
// transaction, not one an event, as each row is written once and
// deleted once. Its key is the first event's (PendingEvent). The value
// is version byte 2, the number of events (uvarint), then each event's
// body with its length (uvarint) before it.
func PendingEvents(evs []*catalog.AuditEvent) (key, value []byte, err error) {
	if len(evs) == 0 {
		return nil, nil, errors.New("encode pending audit events: none")
	}
	value = binary.AppendUvarint([]byte{2}, uint64(len(evs)))
	var body []byte
	for _, ev := range evs {
		if body, err = pendingBody(body[:0], ev); err != nil {
			return nil, nil, err
		}
		value = binary.AppendUvarint(value, uint64(len(body)))
		value = append(value, body...)
	}
	return pendingKey(evs[0]), value, nil
}

func pendingKey(ev *catalog.AuditEvent) []byte {
	key := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(ev.EventID)), uint64(ev.CreatedAt.UnixNano()))
	return append(key, ev.EventID...)
}

// pendingBody appends ev's body to b: the creation time (unix ns, 8
// bytes big-endian), five strings (event id, tenant id, actor type,
// actor id, event type; uvarint length, bytes) and the payload as it was
// encoded: the sequencer chains it without decoding or encoding JSON.
func pendingBody(b []byte, ev *catalog.AuditEvent) ([]byte, error) {
	if err := checkPendingTime(ev); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint64(b, uint64(ev.CreatedAt.UnixNano()))
	for _, f := range []string{ev.EventID, ev.TenantID, ev.ActorType, ev.ActorID, ev.EventType} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return append(b, ev.Payload...), nil
}

// decodePending reads a bAuditPending value of either version.
func decodePending(v []byte) ([]*catalog.AuditEvent, error) {
	if len(v) == 0 {
		return nil, errors.New("empty")
	}
	switch v[0] {
	case 1:
		ev, err := decodeBody(v[1:])
		if err != nil {
			return nil, err
		}
		return []*catalog.AuditEvent{ev}, nil
	case 2:
		n, m := binary.Uvarint(v[1:])
		v = v[1+max(m, 0):]
		// Each body takes 14 bytes at least: a bound before allocating.
		if m <= 0 || n == 0 || n > uint64(len(v)/14) {
			return nil, errors.New("bad event count")
		}
		evs := make([]*catalog.AuditEvent, 0, n)
		for range n {
			l, m := binary.Uvarint(v)
			if m <= 0 || l > uint64(len(v)-m) {
				return nil, errors.New("bad event length")
			}
			ev, err := decodeBody(v[m : m+int(l)])
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", len(evs)+1, err)
			}
			evs = append(evs, ev)
			v = v[m+int(l):]
		}
		if len(v) > 0 {
			return nil, errors.New("trailing bytes")
		}
		return evs, nil
	}
	return nil, fmt.Errorf("unknown encoding %d", v[0])
}

// decodeBody reads a pendingBody.
func decodeBody(v []byte) (*catalog.AuditEvent, error) {
	if len(v) < 8 {
		return nil, errors.New("short")
	}
	ev := &catalog.AuditEvent{CreatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))).UTC()}
	v = v[8:]
	for _, f := range []*string{&ev.EventID, &ev.TenantID, &ev.ActorType, &ev.ActorID, &ev.EventType} {
		n, m := binary.Uvarint(v)
		if m <= 0 || n > uint64(len(v)-m) {
			return nil, errors.New("bad field length")
		}
		*f = string(v[m : m+int(n)])
		v = v[m+int(n):]
	}
	if len(v) > 0 {
		ev.Payload = bytes.Clone(v)
	}
	return ev, nil
}

// queueEvent keeps the event of a call in a shared transaction; the
// batch stores its calls' events in one pending row (putPending).
// The time is checked here, so that a call whose event cannot be stored
// fails alone rather than its batch.
func (w *wtx) queueEvent(ev *catalog.AuditEvent) error {
	if err := checkPendingTime(ev); err != nil {
		return err
	}
	w.events = append(w.events, ev)
	return nil
}

// checkPendingTime: a pending record holds the creation time in unix
// nanoseconds, which cover the years 1678 to 2261.
func checkPendingTime(ev *catalog.AuditEvent) error {
	if y := ev.CreatedAt.Year(); y < 1678 || y > 2261 {
		return fmt.Errorf("encode pending audit event: created_at %v out of range", ev.CreatedAt)
	}
	return nil
}

// putPending stores the events of a shared transaction's calls, in call
// order, for the sequencer.
func (st *txState) putPending(tx Tx) error {
	if len(st.events) == 0 {
		return nil
	}
	k, v, err := PendingEvents(st.events)
	if err != nil {
		return err
	}
	return tx.Bucket(bAuditPending).Put(k, v)
}

// settle chains the pending events, once per transaction, before an
// exclusive transaction appends an event.
func (w *wtx) settle() error {
	if w.db.shared == nil || w.st.settled || w.st.shared {
		return nil
	}
	w.st.settled = true
	return w.db.drain(w.Tx)
}

// drain appends every pending event to the chain in tx, in key order, and
// runs the audit hook on each, as an exclusive append would have.
func (db *Store) drain(tx Tx) error {
	keys, values, err := takeAll(tx.Bucket(bAuditPending))
	if err != nil {
		return err
	}
	var evs []*catalog.AuditEvent
	for i, v := range values {
		got, err := decodePending(v)
		if err != nil {
			return fmt.Errorf("decode pending audit events %x: %w", keys[i], err)
		}
		evs = append(evs, got...)
	}
	if err := appendEvents(tx, evs); err != nil {
		return err
	}
	for _, ev := range evs {
		if err := db.appended(tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// takeAll removes every key of b and returns the keys and values in key
// order (Taker, or a walk and a delete per key).
func takeAll(b Bucket) (keys, values [][]byte, err error) {
	if t, ok := b.(Taker); ok {
		return t.TakeAll()
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return nil, nil, err
		}
	}
	return keys, values, nil
}

// sequence chains the pending events in a shared transaction of its own,
// which runs beside shared writes and, across instances, alone (false:
// another instance's sequencer is running).
func (db *Store) sequence(ctx context.Context) (bool, error) {
	db.seq.mu.Lock()
	defer db.seq.mu.Unlock()
	return db.shared.TryUpdateSolo(ctx, db.drain)
}

// settle chains the events pending now, if any: before the audit log is
// read, so that a caller sees the events of its own writes. One run of
// the sequencer that starts after settle did is enough, whatever is
// queued after it.
func (db *Store) settle(ctx context.Context) error {
	if db.shared == nil {
		return nil
	}
	waiting := false
	err := db.view(ctx, func(tx Tx) error {
		k, _ := tx.Bucket(bAuditPending).Cursor().First()
		waiting = k != nil
		return nil
	})
	if err != nil || !waiting {
		return err
	}
	return db.sequenceOnce(ctx, time.Millisecond)
}

// sequenceOnce returns after one run of the sequencer here, trying again
// after pause while another instance's runs: every event pending when it
// was called is then on the chain.
func (db *Store) sequenceOnce(ctx context.Context, pause time.Duration) error {
	for {
		ran, err := db.sequence(ctx)
		if err != nil || ran {
			return err
		}
		// Another instance is sequencing: what it does not take, the
		// next run here will.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// sequencer chains pending events in the background after shared
// batches; it owns its goroutine (stop).
type sequencer struct {
	db     *Store
	mu     sync.Mutex // one sequence at a time in this process
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// retryAfter is the pause after a failed sequencer run; gather is how
// long a run waits after its poke for the events of more shared batches,
// so that one sequencer transaction (one WAL flush, one conflict with the
// other instances' sequencers) chains many (readers do not wait for it:
// they settle).
const (
	retryAfter = time.Second
	gather     = 10 * time.Millisecond
)

// startSequencer sets db.seq and starts its goroutine.
func startSequencer(db *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sequencer{db: db, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	db.seq = s
	go s.run(ctx)
	s.poke() // events left pending by a crash
}

// poke asks for a run; pokes while one is queued coalesce.
func (s *sequencer) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *sequencer) run(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gather):
		}
		// While another instance runs, try again a gather later, not at
		// once: its run takes most of what is pending here too.
		if err := s.db.sequenceOnce(ctx, gather); err != nil && ctx.Err() == nil {
			slog.Warn("audit sequencer: pending events not chained yet, retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryAfter):
			}
			s.poke()
		}
	}
}

// stop ends the goroutine; events still pending stay for the next run.
func (s *sequencer) stop() {
	s.cancel()
	<-s.done
}
