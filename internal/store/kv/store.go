// Package kv holds the store logic shared by store/bolt and store/postgres:
// store.Store written once against a small transactional key/value API (the
// part of bbolt's that the logic uses), which each backend adapts. Every
// mutation runs in one read-write transaction that checks the data model's
// constraints against the current state, writes, and appends its audit
// event, so a constraint can never be raced past.
//
// Layout: objects are JSON under their id in one bucket per kind; index
// buckets ("idx_…") hold composite keys joined by a NUL byte; audit events
// are JSON in bucket "audit" under their sequence as 8 big-endian bytes,
// and the chain head is meta["audit_head"].
package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// Bucket names.
var (
	bMeta         = []byte("meta")
	bTokens       = []byte("tokens")
	bTenants      = []byte("tenants")
	bProducts     = []byte("products")
	bArtifacts    = []byte("artifacts")
	bReleases     = []byte("releases")
	bRelArts      = []byte("release_artifacts")
	bPolicyVers   = []byte("policy_versions") // policy id \0 %010d version
	bPolicies     = []byte("policies")        // policy id -> latest version
	bBlocked      = []byte("blocked_versions")
	bRollouts     = []byte("rollouts")
	bEntitlements = []byte("entitlements")
	bSeats        = []byte("seats")
	bLeases       = []byte("leases")
	bSnapshots    = []byte("snapshots")
	bEnvelopes    = []byte("snapshot_envelopes")
	bMirrors      = []byte("mirrors")
	bAudit        = []byte("audit") // seq (8 bytes BE) -> event
	bIdempotency  = []byte("idempotency")
	// Audit events of shared transactions, not yet on the chain: key =
	// created_at (8 bytes BE, unix ns) + event id -> event (shared.go).
	bAuditPending = []byte("audit_pending")

	iTokenHash      = []byte("idx_token_hash")        // hash -> token id
	iReleasePCV     = []byte("idx_release_pcv")       // product \0 channel \0 version -> release id
	iReleaseProduct = []byte("idx_release_product")   // product \0 release id
	iRelArtRelease  = []byte("idx_relart_release")    // release \0 release artifact id
	iRelArtTarget   = []byte("idx_relart_target")     // release \0 platform \0 arch \0 installer -> id
	iPolicyTenant   = []byte("idx_policy_tenant")     // tenant \0 policy id
	iBlockedTPV     = []byte("idx_blocked_tpv")       // tenant \0 product \0 version -> id
	iBlockedTenant  = []byte("idx_blocked_tenant")    // tenant \0 id
	iRolloutProduct = []byte("idx_rollout_product")   // product \0 id
	iEntTenant      = []byte("idx_ent_tenant")        // tenant \0 id
	iEntTP          = []byte("idx_ent_tp")            // tenant \0 product \0 id
	iSeatEnt        = []byte("idx_seat_ent")          // entitlement \0 seat id
	iSeatActive     = []byte("idx_seat_active")       // entitlement \0 type \0 subject -> seat id
	iLeaseEnt       = []byte("idx_lease_ent")         // entitlement \0 lease id
	iLeaseActive    = []byte("idx_lease_active")      // entitlement \0 type \0 subject -> lease id
	iSnapSeq        = []byte("idx_snapshot_seq")      // tenant \0 seq (8 bytes BE) -> id
	iSnapTenant     = []byte("idx_snapshot_tenant")   // tenant \0 id
	iMirrorCred     = []byte("idx_mirror_cred")       // credential hash -> mirror id
	iMirrorTenant   = []byte("idx_mirror_tenant")     // tenant \0 id
	iAuditTenant    = []byte("idx_audit_tenant")      // tenant \0 seq
	iAuditType      = []byte("idx_audit_type")        // event type \0 seq
	iAuditTenantTy  = []byte("idx_audit_tenant_type") // tenant \0 event type \0 seq
	iAuditDedup     = []byte("idx_audit_dedup")       // dedup key -> seq

	// Buckets lists every bucket; a backend creates them before use.
	Buckets = [][]byte{
		bMeta, bTokens, bTenants, bProducts, bArtifacts, bReleases, bRelArts,
		bPolicyVers, bPolicies, bBlocked, bRollouts, bEntitlements, bSeats,
		bLeases, bSnapshots, bEnvelopes, bMirrors, bAudit, bIdempotency,
		iTokenHash, iReleasePCV, iReleaseProduct, iRelArtRelease, iRelArtTarget,
		iPolicyTenant, iBlockedTPV, iBlockedTenant, iRolloutProduct, iEntTenant,
		iEntTP, iSeatEnt, iSeatActive, iLeaseEnt, iLeaseActive, iSnapSeq,
		iSnapTenant, iMirrorCred, iMirrorTenant, iAuditTenant, iAuditType,
		iAuditDedup, iAuditTenantTy, bLeaseCounts, bSeatCounts, iLeaseExpiry,
		bAuditPending,
	}

	kAuditHead = []byte("audit_head")
	// kAuditTenantTyped marks idx_audit_tenant_type complete (backfilled
	// for events written before it existed).
	kAuditTenantTyped = []byte("audit_tenant_type_indexed")
)

// Options tunes New.
type Options struct {
	// Cache keeps the decoded vendor-wide catalog in memory for snapshot
	// builds (cache.go). Only for a backend that this process alone writes.
	Cache bool
	// NoWarm skips decoding the cached catalog in the background at New;
	// the first snapshot build then decodes it (about a second for
	// 100,000 releases). For short-lived commands that build no snapshot.
	NoWarm bool
}

// Store is store.Store on a Backend.
type Store struct {
	b     Backend
	cache bool

	// mu is held across every read-write transaction and the cache update
	// after it (cache.go); it guards global and warm.
	mu sync.Mutex
	// global caches the decoded vendor-wide catalog for snapshot builds,
	// kept current by every committed write to its buckets; nil until
	// loaded.
	global *globalSet
	warm   *warmer       // the background load started by New, if running
	gen    atomic.Uint64 // counts committed writes to the cached buckets
	hook   hookSlot      // SetAuditHook (backend.go)
	// counted: the lease and seat counters are complete (leasecount.go).
	counted atomic.Bool
	group   groupCommit // lease writes (group.go)
	// shared: the backend's SharedUpdater, when it has one and the store
	// keeps no cache; sharedGroup batches its calls and seq chains
	// their audit events (shared.go).
	shared      SharedUpdater
	sharedGroup groupCommit
	seq         *sequencer
	leaseEnts   leaseEnts // of leases issued here (license.go)
}

var _ store.Store = (*Store)(nil)

// New returns the store on b, whose buckets (Buckets) must exist.
func New(b Backend, opts Options) *Store {
	db := &Store{b: b, cache: opts.Cache}
	if su, ok := b.(SharedUpdater); ok && !opts.Cache {
		db.shared = su
		startSequencer(db)
	}
	db.indexAuditByTenantType()
	db.countLeases()
	if opts.Cache && !opts.NoWarm {
		db.startWarm()
	}
	return db
}

// Close stops the background load, if running; the caller closes the
// backend.
func (db *Store) Close() error {
	if db.seq != nil {
		db.seq.stop()
	}
	db.mu.Lock()
	db.stopWarm()
	db.mu.Unlock()
	return nil
}

// seqKey is the key of sequence number seq: 8 bytes big-endian, so keys
// sort in sequence order.
func seqKey(seq int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(seq))
	return k[:]
}

// key joins parts with NUL bytes.
func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// prefix is key(parts...) plus a trailing separator.
func prefix(parts ...string) []byte { return append(key(parts...), 0) }

// wtx is a read-write transaction with the request's context.
type wtx struct {
	Tx
	db  *Store
	ctx context.Context
	now time.Time
	ops []cacheOp // writes to cached buckets, applied after commit
	// afterCommit runs once the transaction has committed.
	afterCommit []func()
	// st is the state of the backend transaction, shared by the calls of
	// a batch (shared.go).
	st *txState
	// events: this call's audit events in a shared transaction, pending
	// until the batch stores them (txState.putPending).
	events []*catalog.AuditEvent
}

func (db *Store) update(ctx context.Context, fn func(*wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	var w *wtx
	ran := false // fn succeeded: an error after it is the commit's
	err := db.b.Update(ctx, func(tx Tx) error {
		w = &wtx{Tx: tx, db: db, ctx: ctx, now: time.Now().UTC(), st: &txState{}}
		if err := fn(w); err != nil {
			return err
		}
		if err := w.markAttempt(); err != nil {
			return err
		}
		ran = true
		return nil
	})
	switch {
	case err == nil:
		db.applyCache(w.ops)
		for _, f := range w.afterCommit {
			f()
		}
	case ran && len(w.ops) > 0:
		db.invalidate()
	}
	return err
}

func (db *Store) view(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.b.View(ctx, fn)
}

// getJSON decodes bucket[k] into v; false when absent.
func getJSON(tx Tx, bucket, k []byte, v any) (bool, error) {
	raw := tx.Bucket(bucket).Get(k)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %s %q: %w", bucket, k, err)
	}
	return true, nil
}

// mustGet decodes bucket[id] into v or returns catalog.NotFound(kind, id).
func mustGet(tx Tx, bucket []byte, kind, id string, v any) error {
	ok, err := getJSON(tx, bucket, []byte(id), v)
	if err != nil {
		return err
	}
	if !ok {
		return catalog.NotFound(kind, id)
	}
	return nil
}

func putJSON(tx Tx, bucket, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", bucket, err)
	}
	return tx.Bucket(bucket).Put(k, b)
}

func putIdx(tx Tx, bucket, k []byte, v string) error {
	return tx.Bucket(bucket).Put(k, []byte(v))
}

// put stores an object; every object write goes through here so that a
// write to a cached bucket reaches the cache.
func (w *wtx) put(bucket, k []byte, v any) error {
	_, err := w.putEncoded(bucket, k, v)
	return err
}

// putEncoded is put, returning the stored encoding.
func (w *wtx) putEncoded(bucket, k []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", bucket, err)
	}
	if w.db.cache && globalBucket(bucket) {
		if err := w.note(bucket, b); err != nil {
			return nil, err
		}
	}
	return b, w.Bucket(bucket).Put(k, b)
}

// insert stores a new object, refusing an id already taken.
func (w *wtx) insert(bucket []byte, kind, id string, v any) error {
	_, err := w.insertEncoded(bucket, kind, id, v)
	return err
}

// insertEncoded is insert, returning the stored encoding (the payload of
// the change's event, as event would encode it).
func (w *wtx) insertEncoded(bucket []byte, kind, id string, v any) ([]byte, error) {
	if w.Bucket(bucket).Get([]byte(id)) != nil {
		return nil, catalog.Errorf(catalog.ECONFLICT, "%s %q already exists", kind, id)
	}
	return w.putEncoded(bucket, []byte(id), v)
}

// event appends the audit event of this transaction's change.
func (w *wtx) event(tenantID, eventType string, obj any) error {
	payload, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode audit payload: %w", err)
	}
	return w.eventEncoded(tenantID, eventType, payload)
}

// eventEncoded is event with the payload encoded (json.Marshal's output).
func (w *wtx) eventEncoded(tenantID, eventType string, payload []byte) error {
	actor := catalog.ActorFrom(w.ctx)
	ev := &catalog.AuditEvent{
		EventID:   catalog.NewID(catalog.PrefixEvent),
		TenantID:  tenantID,
		ActorType: actor.Type,
		ActorID:   actor.ID,
		EventType: eventType,
		Payload:   payload,
		CreatedAt: w.now,
	}
	if w.st.shared {
		return w.queueEvent(ev)
	}
	if err := w.settle(); err != nil {
		return err
	}
	if err := appendEvent(w.Tx, ev); err != nil {
		return err
	}
	return w.db.appended(w.Tx, ev)
}

// appendEvent seals ev onto the chain head and stores it with its indexes.
func appendEvent(tx Tx, ev *catalog.AuditEvent) error {
	return appendEvents(tx, []*catalog.AuditEvent{ev})
}

// appendEvents seals evs onto the chain head in order and stores them with
// their indexes; the head is read and written once.
func appendEvents(tx Tx, evs []*catalog.AuditEvent) error {
	meta := tx.Bucket(bMeta)
	var prev *catalog.AuditEvent
	if h := meta.Get(kAuditHead); h != nil {
		prev = &catalog.AuditEvent{}
		if err := json.Unmarshal(h, prev); err != nil {
			return fmt.Errorf("decode audit head: %w", err)
		}
	}
	events, byTenant, byTenantType, byType := tx.Bucket(bAudit), tx.Bucket(iAuditTenant), tx.Bucket(iAuditTenantTy), tx.Bucket(iAuditType)
	for _, ev := range evs {
		raw, err := audit.SealEncode(prev, ev)
		if err != nil {
			return fmt.Errorf("encode audit event: %w", err)
		}
		sk := seqKey(ev.Seq)
		if err := events.Put(sk, raw); err != nil {
			return err
		}
		if ev.TenantID != "" {
			if err := byTenant.Put(append(prefix(ev.TenantID), sk...), nil); err != nil {
				return err
			}
			if err := byTenantType.Put(append(prefix(ev.TenantID, ev.EventType), sk...), nil); err != nil {
				return err
			}
		}
		if err := byType.Put(append(prefix(ev.EventType), sk...), nil); err != nil {
			return err
		}
		prev = ev
	}
	if prev == nil {
		return nil
	}
	head, _ := json.Marshal(struct {
		Seq  int64  `json:"seq"`
		Hash string `json:"hash"`
	}{prev.Seq, prev.Hash})
	return meta.Put(kAuditHead, head)
}

// listPage walks index keys under pfx in order, starting after cursor (the
// id suffix of the last key returned). load turns a key/value into an item
// and its id. The next cursor is "" when nothing follows.
func listPage[T any](b Bucket, pfx []byte, p store.Page, load func(k, v []byte) (*T, string, error)) ([]*T, string, error) {
	p = p.Normalize()
	seek := append(append([]byte(nil), pfx...), p.Cursor...)
	c := b.Cursor()
	k, v := c.Seek(seek)
	if p.Cursor != "" && k != nil && bytes.Equal(k, seek) {
		k, v = c.Next()
	}
	out := make([]*T, 0, min(p.Limit, 64))
	last := ""
	for ; k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		if len(out) == p.Limit {
			return out, last, nil
		}
		item, id, err := load(k, v)
		if err != nil {
			return nil, "", err
		}
		out = append(out, item)
		last = id
	}
	return out, "", nil
}

// listObjects pages over a bucket of objects keyed by id.
func listObjects[T any](tx Tx, bucket []byte, p store.Page, id func(*T) string) ([]*T, string, error) {
	return listPage(tx.Bucket(bucket), nil, p, func(k, v []byte) (*T, string, error) {
		var t T
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, "", fmt.Errorf("decode %s %q: %w", bucket, k, err)
		}
		return &t, id(&t), nil
	})
}

// listByIndex pages over index keys pfx+id, loading each id from bucket.
func listByIndex[T any](tx Tx, idx, bucket []byte, pfx []byte, p store.Page) ([]*T, string, error) {
	data := tx.Bucket(bucket)
	return listPage(tx.Bucket(idx), pfx, p, func(k, _ []byte) (*T, string, error) {
		id := k[len(pfx):]
		raw := data.Get(id)
		if raw == nil {
			return nil, "", fmt.Errorf("index %s names missing %s %q", idx, bucket, id)
		}
		var t T
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, "", fmt.Errorf("decode %s %q: %w", bucket, id, err)
		}
		return &t, string(id), nil
	})
}

// exists returns catalog.NotFound unless bucket holds id.
func exists(tx Tx, bucket []byte, kind, id string) error {
	if id == "" || tx.Bucket(bucket).Get([]byte(id)) == nil {
		return catalog.NotFound(kind, id)
	}
	return nil
}

// liveTenant returns catalog.NotFound unless the tenant exists, and
// ECONFLICT when it is deleted: nothing new is created under a deleted
// tenant (it can never be served again).
func liveTenant(tx Tx, id string) error {
	var t catalog.Tenant
	if err := mustGet(tx, bTenants, "tenant", id, &t); err != nil {
		return err
	}
	if t.Status == catalog.TenantDeleted {
		return catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", id)
	}
	return nil
}

// checkID validates an id the caller supplies: non-empty, bounded and free
// of the NUL byte that separates index key parts.
func checkID(field, id string) error {
	if id == "" {
		return catalog.Invalid(field, "is required")
	}
	if len(id) > 128 || bytes.IndexByte([]byte(id), 0) >= 0 {
		return catalog.Invalid(field, "must be at most 128 bytes without NUL")
	}
	return nil
}

// checkText bounds a free-text key part.
func checkText(field, s string, required bool) error {
	if s == "" {
		if required {
			return catalog.Invalid(field, "is required")
		}
		return nil
	}
	if len(s) > 1024 || bytes.IndexByte([]byte(s), 0) >= 0 {
		return catalog.Invalid(field, "must be at most 1024 bytes without NUL")
	}
	return nil
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

func metadata(raw json.RawMessage) (json.RawMessage, error) {
	return catalog.NormalizeMetadata("metadata", raw)
}

func immutable(field string) error {
	return catalog.Invalid(field, "cannot be changed")
}
