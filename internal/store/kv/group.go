package kv

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/outpost/outpost/internal/groupcommit"
	"github.com/outpost/outpost/internal/store"
)

// Group commit for the hot lease writes and the small audited catalog
// writes (tokens, tenants, products, artifacts, releases, policies,
// blocked versions, rollouts, entitlements, appended audit events,
// idempotency records). On bbolt every write transaction
// ends with an fsync (a few milliseconds), and on PostgreSQL with a WAL
// flush in the write gate, so one transaction per lease caps
// issuance at a few hundred per second however cheap the lease itself is.
// updateGrouped runs concurrent calls in one write transaction: a batch
// starts as soon as the previous one committed and takes every call
// queued meanwhile (no timer, unlike bbolt's Batch), so the disk never
// idles while calls wait and a lone call costs what update costs.
//
// Each call still sees the writes of the calls before it in the batch and
// is checked against them, exactly as if the transactions ran one after
// the other (they do, inside the shared one); they commit together, so a
// crash keeps all or none of a batch and no caller has had an answer
// before its commit. A call refused before it wrote anything (the usual
// refusal: a full entitlement, a wrong holder secret) drops out of the
// batch without harming it; a call that fails after writing aborts the
// shared transaction, and then every call of the batch runs again alone
// (update), so fn must reset its outputs on entry. A failed COMMIT is
// never redone (it may have happened: the answer lost with the
// connection); every call that wrote gets its error.
//
// On PostgreSQL the writes of 16 writers share one hold of the write gate
// and one WAL flush; exclusive batches of several instances alternate on
// the gate, shared ones (shared.go) run side by side. Long writes
// (snapshot builds, pruning, imports) stay on update.
type groupCommit = groupcommit.Group[*groupCall]

type groupCall struct {
	ctx  context.Context
	keys []BucketKey // read ahead for the whole batch (Prefetcher)
	// then, if set, names more keys from what keys read (a lease's
	// subject and counter, once the lease is read): read ahead for the
	// whole batch in a second round trip, not one a call.
	then func(Tx) []BucketKey
	hot  []BucketKey // of a shared call: SharedUpdater's hot keys
	fn   func(*wtx) error
	w    *wtx // its transaction view, when fn succeeded in the batch
	err  error
}

// readAhead is what to read ahead for c: its keys, and the reservation
// of the Idempotency-Key it runs under (markAttempt reads it).
func (c *groupCall) readAhead() []BucketKey {
	if key, _, ok := store.IdempotencyAttempt(c.ctx); ok {
		return append(slices.Clip(c.keys), bk(bIdempotency, key))
	}
	return c.keys
}

// auditKeys is the prefetch hint of a grouped write that appends an audit
// event: the chain head, which every such call of a batch reads.
var auditKeys = []BucketKey{{bMeta, kAuditHead}}

// auditAnd is auditKeys and keys: the read-ahead of a grouped write that
// appends an audit event and reads keys (an exclusive write holds the
// write gate, which every instance's writes wait for, through its round
// trips: one for all its reads, not one a read).
func auditAnd(keys ...BucketKey) []BucketKey {
	return append(slices.Clip(auditKeys), keys...)
}

// bk is the BucketKey of id (or of an index key joined from parts) in
// bucket.
func bk(bucket []byte, parts ...string) BucketKey { return BucketKey{bucket, key(parts...)} }

// errRedo aborts a shared transaction that a failed call wrote to.
var errRedo = errors.New("kv: group commit: a call failed after writing")

// updateGrouped is update, committed together with concurrent calls.
// keys are what fn will read, prefetched for the whole batch in one round
// trip on a backend that can (Prefetcher); a hint only.
func (db *Store) updateGrouped(ctx context.Context, keys []BucketKey, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &groupCall{ctx: ctx, keys: keys, fn: fn}
	db.group.Do(c, db.commitGroup)
	return c.err
}

// commitGroup runs batch in one transaction, or each call alone when a
// call failed after writing (the shared transaction never committed). A
// failed commit is not redone: it may have committed.
func (db *Store) commitGroup(batch []*groupCall) {
	if len(batch) == 1 {
		c := batch[0]
		c.err = db.update(c.ctx, func(w *wtx) error {
			if p, ok := w.Tx.(Prefetcher); ok {
				if keys := c.readAhead(); len(keys) > 0 {
					p.Prefetch(keys)
				}
			}
			return c.fn(w)
		})
		return
	}
	db.mu.Lock()
	redo, _ := db.commitBatch(batch, nil, db.b.Update, false)
	db.mu.Unlock()
	if redo {
		for _, c := range batch {
			c.err = db.update(c.ctx, c.fn)
		}
	}
}

// commitShared is commitGroup for shared calls (shared.go): one shared
// transaction, which the backend may run again on a conflict.
//
// Its transaction may wait before it begins: for the locks of its hot
// keys, which another instance's batch holds (SharedUpdater). The calls
// that queue meanwhile join it when it begins, if it holds the locks
// they need, instead of waiting for the next batch. Without that, two
// instances writing one entitlement alternate on its lock with half of
// their calls each, and together ran at about 0.7x of one instance.
func (db *Store) commitShared(batch []*groupCall) { db.commitSharedJoin(batch, true) }

func (db *Store) commitSharedJoin(batch []*groupCall, join bool) {
	var hot []BucketKey
	for _, c := range batch {
		hot = append(hot, c.hot...)
	}
	run := func(ctx context.Context, fn func(Tx) error) error { return db.shared.UpdateShared(ctx, hot, fn) }
	var more func() []*groupCall
	if join {
		more = func() []*groupCall {
			return db.sharedGroup.Join(func(c *groupCall) bool { return len(c.hot) > 0 && covers(hot, c.hot) })
		}
	}
	redo, batch := db.commitBatch(batch, more, run, true)
	if redo {
		// The calls that joined run again alone too; none joins these.
		for _, c := range batch {
			db.commitSharedJoin([]*groupCall{c}, false)
		}
	}
}

// covers reports whether every key of keys is in set.
func covers(set, keys []BucketKey) bool {
	for _, k := range keys {
		if !slices.ContainsFunc(set, func(s BucketKey) bool {
			return bytes.Equal(s.Bucket, k.Bucket) && bytes.Equal(s.Key, k.Key)
		}) {
			return false
		}
	}
	return true
}

// commitBatch runs batch in one transaction of run; see commitGroup. It
// reports whether the calls must run again one by one (a call failed
// after writing, so the transaction was not committed).
//
// more, if set, returns calls to add to the batch as each run of its
// transaction begins (groupcommit's Join); batch is returned with them.
func (db *Store) commitBatch(batch []*groupCall, more func() []*groupCall, run func(context.Context, func(Tx) error) error, shared bool) (redo bool, all []*groupCall) {
	ran := false // the batch's calls all ran: an error after is the commit's
	var st *txState
	err := run(context.WithoutCancel(batch[0].ctx), func(tx Tx) error {
		ran = false
		if more != nil {
			batch = append(batch, more()...)
		}
		st = &txState{shared: shared}
		if p, ok := tx.(Prefetcher); ok {
			var keys []BucketKey
			for _, c := range batch {
				keys = append(keys, c.readAhead()...)
			}
			if len(keys) > 0 {
				p.Prefetch(keys)
			}
			var next []BucketKey
			for _, c := range batch {
				if c.then != nil {
					next = append(next, c.then(tx)...)
				}
			}
			if len(next) > 0 {
				p.Prefetch(next)
			}
		}
		for _, c := range batch {
			c.w, c.err = nil, nil
			if err := c.ctx.Err(); err != nil {
				c.err = err
				continue
			}
			dt := &dirtyTx{Tx: tx}
			w := &wtx{Tx: dt, db: db, ctx: c.ctx, now: time.Now().UTC(), st: st}
			err := c.fn(w)
			if err == nil {
				err = w.markAttempt()
			}
			switch {
			case err == nil:
				c.w = w
				st.events = append(st.events, w.events...)
			case dt.dirty && len(batch) == 1:
				c.err = err
				return err
			case dt.dirty:
				return errRedo
			default:
				c.err = err
			}
		}
		if err := st.putPending(tx); err != nil {
			return err
		}
		ran = true
		return nil
	})
	if err == nil {
		for _, c := range batch {
			if c.w != nil {
				db.applyCache(c.w.ops)
				for _, f := range c.w.afterCommit {
					f()
				}
			}
		}
		if st != nil && len(st.events) > 0 {
			db.seq.poke()
		}
		return false, batch
	}
	for _, c := range batch {
		if c.w != nil && len(c.w.ops) > 0 {
			db.invalidate()
			break
		}
	}
	if errors.Is(err, ErrAborted) {
		// A query failed: nothing committed, and a call that concluded
		// "not found" from a value it could not read was not answered
		// by the store. Every call gets the failure (a retry may pass).
		for _, c := range batch {
			c.w, c.err = nil, err
		}
		return false, batch
	}
	if ran && !errors.Is(err, ErrRefused) {
		// The commit failed, and it may have happened all the same (the
		// answer to COMMIT lost with the connection): running the calls
		// again could do twice what was done once (a tenant created, then
		// "already exists" remembered as the answer to its Idempotency-Key).
		// Each call that wrote gets the error; its caller decides.
		for _, c := range batch {
			if c.w != nil {
				c.w, c.err = nil, err
			}
		}
		return false, batch
	}
	// Nothing committed (a call failed after writing, or the database
	// refused the commit): alone, the call gets the error; in a batch,
	// each call runs again by itself.
	if len(batch) == 1 {
		if batch[0].err == nil {
			batch[0].w, batch[0].err = nil, err
		}
		return false, batch
	}
	return true, batch
}

// dirtyTx notes whether anything was written through it.
type dirtyTx struct {
	Tx
	dirty bool
}

func (t *dirtyTx) Bucket(name []byte) Bucket { return dirtyBucket{t.Tx.Bucket(name), t} }

type dirtyBucket struct {
	Bucket
	t *dirtyTx
}

func (b dirtyBucket) Put(k, v []byte) error { b.t.dirty = true; return b.Bucket.Put(k, v) }

func (b dirtyBucket) Delete(k []byte) error { b.t.dirty = true; return b.Bucket.Delete(k) }

func (b dirtyBucket) TakeAll() (keys, values [][]byte, err error) {
	b.t.dirty = true
	return takeAll(b.Bucket)
}
