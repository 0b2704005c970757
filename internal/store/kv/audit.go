package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// maxAuditPayload caps an appended event's payload.
const maxAuditPayload = 1 << 20

// AppendAudit appends an event that is not a store mutation. EventID,
// CreatedAt and the actor default to a new id, now and the context's
// actor; Seq, PrevHash and Hash are always assigned here.
func (db *Store) AppendAudit(ctx context.Context, ev *catalog.AuditEvent, dedupKey string) (bool, error) {
	if err := checkAudit(ev, dedupKey); err != nil {
		return false, err
	}
	appended := false
	err := db.updateGrouped(ctx, auditKeys, func(w *wtx) error {
		var err error
		appended, err = w.appendAudit(ev, dedupKey)
		return err
	})
	return appended, err
}

// checkAudit validates an event to append (before the transaction) and
// compacts its payload.
func checkAudit(ev *catalog.AuditEvent, dedupKey string) error {
	if err := checkText("event_type", ev.EventType, true); err != nil {
		return err
	}
	if err := checkText("dedup_key", dedupKey, false); err != nil {
		return err
	}
	for field, v := range map[string]string{"tenant_id": ev.TenantID, "actor_type": ev.ActorType, "actor_id": ev.ActorID} {
		if err := checkText(field, v, false); err != nil {
			return err
		}
	}
	if ev.EventID != "" {
		if err := checkID("event_id", ev.EventID); err != nil {
			return err
		}
	}
	if len(ev.Payload) > maxAuditPayload {
		return catalog.Invalid("payload", "must be at most 1 MiB")
	}
	if len(ev.Payload) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, ev.Payload); err != nil {
			return catalog.Invalid("payload", "must be JSON")
		}
		ev.Payload = buf.Bytes()
	}
	return nil
}

// appendAudit appends a checked event (checkAudit) in w, once per
// dedupKey: false when an event with that key exists.
func (w *wtx) appendAudit(ev *catalog.AuditEvent, dedupKey string) (bool, error) {
	dedup := w.Bucket(iAuditDedup)
	if dedupKey != "" && dedup.Get([]byte(dedupKey)) != nil {
		return false, nil
	}
	if ev.EventID == "" {
		ev.EventID = catalog.NewID(catalog.PrefixEvent)
	}
	if ev.ActorType == "" && ev.ActorID == "" {
		a := catalog.ActorFrom(w.ctx)
		ev.ActorType, ev.ActorID = a.Type, a.ID
	}
	ev.CreatedAt = orNow(ev.CreatedAt, w.now).UTC()
	if err := w.settle(); err != nil {
		return false, err
	}
	if err := appendEvent(w.Tx, ev); err != nil {
		return false, err
	}
	if err := w.db.appended(w.Tx, ev); err != nil {
		return false, err
	}
	if dedupKey != "" {
		if err := dedup.Put([]byte(dedupKey), seqKey(ev.Seq)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// AuditEvents lists events in sequence order, filtered by tenant and event
// type. The cursor is the last returned event's sequence number.
func (db *Store) AuditEvents(ctx context.Context, f store.AuditFilter, p store.Page) (out []*catalog.AuditEvent, next string, err error) {
	p = p.Normalize()
	var after int64
	if p.Cursor != "" {
		after, err = strconv.ParseInt(p.Cursor, 10, 64)
		if err != nil || after < 0 {
			return nil, "", catalog.Invalid("cursor", "is not a cursor this endpoint returned")
		}
	}
	if err := db.settle(ctx); err != nil {
		return nil, "", err
	}
	err = db.view(ctx, func(tx Tx) error {
		events := tx.Bucket(bAudit)
		var c Cursor
		var pfx []byte
		switch {
		case f.TenantID != "" && f.EventType != "" && tx.Bucket(bMeta).Get(kAuditTenantTyped) != nil:
			c, pfx = tx.Bucket(iAuditTenantTy).Cursor(), prefix(f.TenantID, f.EventType)
		case f.TenantID != "":
			c, pfx = tx.Bucket(iAuditTenant).Cursor(), prefix(f.TenantID)
		case f.EventType != "":
			c, pfx = tx.Bucket(iAuditType).Cursor(), prefix(f.EventType)
		default:
			c = events.Cursor()
		}
		seek := append(append([]byte(nil), pfx...), seqKey(after+1)...)
		for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			seqKey := k[len(pfx):]
			if pfx != nil {
				v = events.Get(seqKey)
				if v == nil {
					return fmt.Errorf("audit index names missing event %d", binary.BigEndian.Uint64(seqKey))
				}
			}
			var ev catalog.AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %x: %w", seqKey, err)
			}
			if f.EventType != "" && ev.EventType != f.EventType {
				continue
			}
			if len(out) == p.Limit {
				next = strconv.FormatInt(out[len(out)-1].Seq, 10)
				return nil
			}
			out = append(out, &ev)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// WalkAudit calls fn for every event in chain order, in one read
// transaction.
func (db *Store) WalkAudit(ctx context.Context, fn func(*catalog.AuditEvent) error) error {
	if err := db.settle(ctx); err != nil {
		return err
	}
	return db.view(ctx, func(tx Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var ev catalog.AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %x: %w", k, err)
			}
			if err := fn(&ev); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Idempotency returns the record stored under key.
func (db *Store) Idempotency(ctx context.Context, key string) (*store.IdempotencyRecord, error) {
	var r store.IdempotencyRecord
	err := db.view(ctx, func(tx Tx) error {
		ok, err := getJSON(tx, bIdempotency, []byte(key), &r)
		if err != nil {
			return err
		}
		if !ok {
			return catalog.Errorf(catalog.ENOTFOUND, "idempotency key not found")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// PutIdempotency stores the first answer under key; a second is ECONFLICT.
func (db *Store) PutIdempotency(ctx context.Context, key string, r *store.IdempotencyRecord) error {
	if err := checkText("idempotency_key", key, true); err != nil {
		return err
	}
	if r == nil {
		return catalog.Invalid("record", "is required")
	}
	return db.updateGrouped(ctx, auditAnd(bk(bIdempotency, key)), func(w *wtx) error {
		b := w.Bucket(bIdempotency)
		if b.Get([]byte(key)) != nil {
			return catalog.Errorf(catalog.ECONFLICT, "idempotency key already used")
		}
		rec := *r
		if rec.CreatedAt.IsZero() {
			rec.CreatedAt = w.now
		}
		return w.put(bIdempotency, []byte(key), &rec)
	})
}

// ReserveIdempotency implements store.Store. The check and the insert
// cannot be raced past by another instance: on bbolt writers are
// serialized; on PostgreSQL it is a shared write (shared.go) that writes
// the key it checks, so of two racing reservations one commits and the
// other runs again and finds it. Complete and Release are shared on the
// same rule, so a request with an Idempotency-Key takes no exclusive
// transaction on its way (its operation may).
func (db *Store) ReserveIdempotency(ctx context.Context, key, requestHash, attempt string, staleBefore time.Time) (*store.IdempotencyRecord, error) {
	if err := checkText("idempotency_key", key, true); err != nil {
		return nil, err
	}
	if requestHash == "" || attempt == "" {
		return nil, catalog.Invalid("request_hash", "and attempt are required")
	}
	var held *store.IdempotencyRecord
	err := db.updateShared(ctx, idempotencyKeys(key), func(w *wtx) error {
		held = nil
		var cur store.IdempotencyRecord
		ok, err := getJSON(w, bIdempotency, []byte(key), &cur)
		if err != nil {
			return err
		}
		if ok && !(cur.Pending() && !cur.Committed && cur.CreatedAt.Before(staleBefore)) {
			held = &cur
			return nil
		}
		return w.put(bIdempotency, []byte(key), &store.IdempotencyRecord{RequestHash: requestHash, Attempt: attempt, CreatedAt: w.now})
	})
	if err != nil {
		return nil, err
	}
	return held, nil
}

// CompleteIdempotency implements store.Store.
func (db *Store) CompleteIdempotency(ctx context.Context, key string, r *store.IdempotencyRecord) error {
	if r == nil || r.Pending() {
		return catalog.Invalid("record", "an answer with a status is required")
	}
	return db.updateShared(ctx, idempotencyKeys(key), func(w *wtx) error {
		var cur store.IdempotencyRecord
		ok, err := getJSON(w, bIdempotency, []byte(key), &cur)
		if err != nil {
			return err
		}
		if !ok || !cur.Pending() || cur.Attempt != r.Attempt || cur.RequestHash != r.RequestHash {
			return catalog.Errorf(catalog.ECONFLICT, "idempotency key is not reserved for this request")
		}
		rec := *r
		rec.Attempt, rec.Committed = "", false
		if rec.CreatedAt.IsZero() {
			rec.CreatedAt = w.now
		}
		return w.put(bIdempotency, []byte(key), &rec)
	})
}

// ReleaseIdempotency implements store.Store.
func (db *Store) ReleaseIdempotency(ctx context.Context, key, attempt string) error {
	return db.updateShared(ctx, idempotencyKeys(key), func(w *wtx) error {
		var cur store.IdempotencyRecord
		ok, err := getJSON(w, bIdempotency, []byte(key), &cur)
		if err != nil || !ok || !cur.Pending() || cur.Committed || cur.Attempt != attempt {
			return err
		}
		return w.Bucket(bIdempotency).Delete([]byte(key))
	})
}

func idempotencyKeys(key string) []BucketKey { return []BucketKey{{bIdempotency, []byte(key)}} }

// markAttempt runs at the end of every write transaction whose ctx carries
// store.WithIdempotencyAttempt: the reservation must still be the
// attempt's (else the transaction fails, nothing written), and is marked
// Committed in the same transaction.
func (w *wtx) markAttempt() error {
	key, attempt, ok := store.IdempotencyAttempt(w.ctx)
	if !ok {
		return nil
	}
	var cur store.IdempotencyRecord
	found, err := getJSON(w, bIdempotency, []byte(key), &cur)
	if err != nil {
		return err
	}
	if !found || !cur.Pending() || cur.Attempt != attempt {
		return catalog.Errorf(catalog.ECONFLICT, "the Idempotency-Key reservation of this request was lost (taken over after it went stale); nothing was written")
	}
	if cur.Committed {
		return nil
	}
	cur.Committed = true
	return w.put(bIdempotency, []byte(key), &cur)
}

// ExpireIdempotency deletes idempotency records created before before.
// Records are keyed by token and key, not time, so this is one scan; it
// runs rarely (the control plane's hourly housekeeping).
func (db *Store) ExpireIdempotency(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := db.update(ctx, func(w *wtx) error {
		n = 0
		b := w.Bucket(bIdempotency)
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r store.IdempotencyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode idempotency record: %w", err)
			}
			if r.CreatedAt.Before(before) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// indexAuditByTenantType backfills idx_audit_tenant_type for events
// written before it existed, once (kAuditTenantTyped marks it done; every
// event appended since writes its entry). Until it is done, a tenant's
// events of one type are found by a walk of the tenant's events. A
// failure is left for the next open.
func (db *Store) indexAuditByTenantType() {
	db.mu.Lock()
	defer db.mu.Unlock()
	_ = db.b.Update(context.Background(), func(tx Tx) error {
		meta := tx.Bucket(bMeta)
		if meta.Get(kAuditTenantTyped) != nil {
			return nil
		}
		events, idx := tx.Bucket(bAudit), tx.Bucket(iAuditTenantTy)
		c := events.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var ev struct {
				TenantID  string `json:"tenant_id"`
				EventType string `json:"event_type"`
			}
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode audit event %x: %w", k, err)
			}
			if ev.TenantID == "" {
				continue
			}
			if err := idx.Put(append(prefix(ev.TenantID, ev.EventType), k...), nil); err != nil {
				return err
			}
		}
		return meta.Put(kAuditTenantTyped, []byte("1"))
	})
}

// AppendMirrorAudit appends a batch of a mirror's events and moves its
// accepted head (see store.Store), one write transaction per batch.
func (db *Store) AppendMirrorAudit(ctx context.Context, mirrorID string, from, to catalog.AuditHead, events []*catalog.AuditEvent) error {
	for _, ev := range events {
		if err := checkText("event_type", ev.EventType, true); err != nil {
			return err
		}
		if len(ev.Payload) > maxAuditPayload || !json.Valid(ev.Payload) {
			return catalog.Invalid("payload", "must be JSON of at most 1 MiB")
		}
	}
	return db.update(ctx, func(w *wtx) error {
		var rec mirrorRecord
		if err := mustGet(w.Tx, bMirrors, "mirror", mirrorID, &rec); err != nil {
			return err
		}
		if rec.AuditHead != from {
			return catalog.Errorf(catalog.ECONFLICT, "mirror %s audit head moved (another upload was accepted): retry", mirrorID)
		}
		if err := w.settle(); err != nil {
			return err
		}
		for _, ev := range events {
			if ev.EventID == "" {
				ev.EventID = catalog.NewID(catalog.PrefixEvent)
			}
			ev.TenantID = rec.TenantID
			ev.CreatedAt = orNow(ev.CreatedAt, w.now).UTC()
			if err := appendEvent(w.Tx, ev); err != nil {
				return err
			}
		}
		rec.AuditHead = to
		return w.put(bMirrors, []byte(mirrorID), &rec)
	})
}
