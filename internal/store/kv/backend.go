package kv

import (
	"sync/atomic"

	"github.com/outpost/outpost/internal/catalog"
)

// Backend is the transactional key/value backend the store runs on, for
// the parts of the control plane that keep their own buckets beside the
// catalog's (fleet reports, the webhook outbox) and must commit with it.
func (db *Store) Backend() Backend { return db.b }

// AuditHook runs inside the transaction that appends an audit event, once
// the event is sealed onto the chain: what it writes commits with the
// change and its event, or not at all (the webhook outbox). An error
// aborts the whole transaction.
type AuditHook func(tx Tx, ev *catalog.AuditEvent) error

// SetAuditHook installs h (nil removes it) for every later transaction.
func (db *Store) SetAuditHook(h AuditHook) {
	if h == nil {
		db.hook.Store(nil)
		return
	}
	db.hook.Store(&h)
}

// appended runs the audit hook, if any, on ev in tx.
func (db *Store) appended(tx Tx, ev *catalog.AuditEvent) error {
	if h := db.hook.Load(); h != nil {
		return (*h)(tx, ev)
	}
	return nil
}

type hookSlot = atomic.Pointer[AuditHook]
