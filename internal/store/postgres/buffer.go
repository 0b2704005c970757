package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/kv"
)

// Round trips. Every Get, Put and Delete of the kv emulation was one
// round trip, and writers hold the write gate across all of them, so
// the round trips of a write transaction bound the write rate (a lease
// issuance took 17). A read-write kvTx therefore
//
//   - buffers its writes (the last value or deletion of each key) and
//     sends them in one batch, before anything that reads a range (a
//     cursor, Indexed, CountPrefix, PutMany), when the buffer is large,
//     and before the commit;
//   - answers a Get of a key it wrote from the buffer, and a Get it
//     already made (or prefetched: Prefetch, kv.Prefetcher, one round
//     trip for every key a batch of grouped lease writes will read) from
//     its read cache: while an exclusive transaction holds the write gate
//     no other writer changes a row, and a shared one reads one snapshot
//     (a row another changes fails its write), so a value read once
//     stays true until this transaction changes it.
//
// A write that fails in the batch fails the transaction (kvTx.err), as a
// failed Put did.

// maxPending flushes the write buffer when it holds this many keys or
// pendingBytes bytes, so a large transaction does not build one huge
// statement.
const (
	maxPending   = 2048
	pendingBytes = 8 << 20
	maxCached    = 4096 // Get results kept per transaction
)

type pendingOp struct {
	bucket string
	k, v   []byte
	del    bool
}

// cacheKey names bucket's key k (bucket names hold no NUL byte).
func cacheKey(bucket string, k []byte) string { return bucket + "\x00" + string(k) }

// buffered returns the buffered state of bucket's k: found, and its value
// (nil when deleted).
func (t *kvTx) buffered(bucket string, k []byte) ([]byte, bool) {
	if t.pending == nil {
		return nil, false
	}
	op, ok := t.pending[cacheKey(bucket, k)]
	if !ok {
		return nil, false
	}
	if op.del {
		return nil, true
	}
	return op.v, true
}

// cached returns a Get already answered in this transaction.
func (t *kvTx) cached(bucket string, k []byte) ([]byte, bool) {
	v, ok := t.reads[cacheKey(bucket, k)]
	return v, ok
}

// remember keeps a value read from the database (nil: absent) as a read,
// and, in a shared transaction, whether the key is a row.
func (t *kvTx) remember(bucket string, k, v []byte) {
	if !t.write {
		return
	}
	ck := cacheKey(bucket, k)
	if len(t.reads) < maxCached {
		if t.reads == nil {
			t.reads = map[string][]byte{}
		}
		t.reads[ck] = v
	}
	t.note(ck, v != nil)
}

// note records, in a shared transaction, whether the key ck is a row.
func (t *kvTx) note(ck string, present bool) {
	if !t.shared {
		return
	}
	if t.present == nil {
		t.present = map[string]bool{}
	}
	t.present[ck] = present
}

// buffer records a write; it is sent by flush.
func (t *kvTx) buffer(op *pendingOp) {
	if t.pending == nil {
		t.pending = map[string]*pendingOp{}
	}
	ck := cacheKey(op.bucket, op.k)
	if old, ok := t.pending[ck]; ok {
		t.pendingSize -= len(old.v)
	}
	delete(t.reads, ck)
	t.pending[ck] = op
	t.pendingSize += len(op.v) + len(op.k)
	if len(t.pending) >= maxPending || t.pendingSize >= pendingBytes {
		t.flush()
	}
}

// querier is what a kvTx runs its statements on: the pgx.Tx of a view,
// the connection of an update (which drives its transaction by hand).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// The write gate (migration 3) is a table lock on outpost_write_gate, a
// table nothing reads or writes. An exclusive transaction (kv.Backend's
// Update) takes it in EXCLUSIVE mode: writers run one at a time across
// every instance, as bbolt runs them. A shared transaction
// (kv.SharedUpdater) runs in REPEATABLE READ and takes it in SHARE mode,
// which admits other shared transactions and no exclusive one; the lock
// manager queues a request behind a waiting one it conflicts with, so a
// stream of shared transactions does not starve an exclusive writer.
// LOCK TABLE is the one statement that takes no snapshot: a shared
// transaction's snapshot is taken by its next statement, after the wait
// for any exclusive writer, and so includes what that writer committed.
// Two shared transactions that write one key fail with a serialization
// error, once the first has committed, and the loser runs again on a
// fresh snapshot (UpdateShared); they write their keys in one order, so
// they do not deadlock.
var (
	exclusivePrelude = []string{"BEGIN", "LOCK TABLE outpost_write_gate IN EXCLUSIVE MODE"}
	sharedPrelude    = []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "LOCK TABLE outpost_write_gate IN SHARE MODE"}
)

// soloLock is the advisory lock of solo transactions (kv's audit
// sequencer), taken without waiting by TryUpdateSolo.
const soloLock = 0x6f7574706f736571 // "outposeq"

// prelude queues the statements that begin the transaction and take the
// write gate ahead of the rest of batch when the transaction has not
// begun, and returns how many it queued.
func (t *kvTx) prelude(batch *pgx.Batch) int {
	if !t.lazy || t.begun {
		return 0
	}
	t.begun = true
	p := exclusivePrelude
	if t.shared {
		p = sharedPrelude
	}
	for _, q := range p {
		batch.Queue(q)
	}
	return len(p)
}

// trySolo begins the transaction with soloLock, in one round trip, or
// returns errBusy.
func (t *kvTx) trySolo() error {
	batch := &pgx.Batch{}
	n := t.prelude(batch)
	batch.Queue("SELECT pg_try_advisory_xact_lock(" + fmt.Sprint(soloLock) + ")")
	br := t.q.SendBatch(t.ctx, batch)
	var got bool
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if err == nil {
		err = br.QueryRow().Scan(&got)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("take the write gate: %w", err)
	case !got:
		return errBusy
	}
	return nil
}

// conn begins the transaction if it has not (one round trip) and returns
// what to query; the caller checks t.err before using it.
func (t *kvTx) conn() querier {
	if t.err == nil && t.lazy && !t.begun {
		batch := &pgx.Batch{}
		t.prelude(batch)
		if err := t.q.SendBatch(t.ctx, batch).Close(); err != nil {
			t.fail(fmt.Errorf("take the write gate: %w", err))
		}
	}
	return t.q
}

// queueWrites moves the buffered writes into batch.
func (t *kvTx) queueWrites(batch *pgx.Batch) {
	if len(t.pending) == 0 {
		return
	}
	// In key order, so that two transactions writing some of the same
	// keys lock them in the same order (no deadlock).
	ops := make([]*pendingOp, 0, len(t.pending))
	for _, op := range t.pending {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b *pendingOp) int {
		if c := strings.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		return bytes.Compare(a.k, b.k)
	})
	var (
		// FlatArray: pgx encodes it without reflection; byteaArray in
		// one pass (bytea.go).
		pb     pgtype.FlatArray[string]
		pk, pv byteaArray
		ub     pgtype.FlatArray[string]
		uk, uv byteaArray
		db     []string
		dk     [][]byte
	)
	for _, op := range ops {
		switch {
		case op.del:
			db, dk = append(db, op.bucket), append(dk, op.k)
		case t.present[cacheKey(op.bucket, op.k)]:
			// A shared transaction's write of a row it read: an update,
			// which fails if another transaction deleted the row since
			// (migration 5; an upsert would put it back).
			ub, uk, uv = append(ub, op.bucket), append(uk, op.k), append(uv, op.v)
		default:
			pb, pk, pv = append(pb, op.bucket), append(pk, op.k), append(pv, op.v)
		}
	}
	// Once sent, the rows are what the buffer said: keep them as reads.
	for ck, op := range t.pending {
		t.note(ck, !op.del)
		if len(t.reads) >= maxCached {
			continue
		}
		if t.reads == nil {
			t.reads = map[string][]byte{}
		}
		if op.del {
			t.reads[ck] = nil
		} else {
			t.reads[ck] = op.v
		}
	}
	t.pending, t.pendingSize = nil, 0
	if len(pb) > 0 {
		batch.Queue(`INSERT INTO outpost_kv (bucket, k, v)
			SELECT b, k, v FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS t(b, k, v)
			ON CONFLICT (bucket, k) DO UPDATE SET v = excluded.v`, pb, pk, pv)
	}
	if len(ub) > 0 {
		batch.Queue(`SELECT outpost_update_rows($1::text[], $2::bytea[], $3::bytea[])`, ub, uk, uv)
	}
	// One statement per key: a point delete is an index lookup whatever
	// the planner believes of the table's size (a join with the unnested
	// keys was planned, while the table was new and small, as a hash join
	// over a scan of the whole table, and that plan stayed cached).
	if len(db) > 0 {
		for i := range db {
			batch.Queue(`DELETE FROM outpost_kv WHERE bucket = $1 AND k = $2`, db[i], dk[i])
		}
	}
}

// flush sends the buffered writes in one round trip.
func (t *kvTx) flush() {
	if len(t.pending) == 0 || t.err != nil {
		return
	}
	batch := &pgx.Batch{}
	t.prelude(batch)
	t.queueWrites(batch)
	if err := t.q.SendBatch(t.ctx, batch).Close(); err != nil {
		t.fail(fmt.Errorf("write: %w", err))
	}
}

// commit sends the buffered writes and COMMIT in one round trip. A
// transaction that read and wrote nothing has nothing to commit.
func (t *kvTx) commit() error {
	batch := &pgx.Batch{}
	if len(t.pending) > 0 {
		t.prelude(batch)
	}
	if !t.begun {
		return nil
	}
	t.queueWrites(batch)
	batch.Queue("COMMIT")
	commitAt := batch.Len() - 1
	if t.locked {
		batch.Queue("SELECT pg_advisory_unlock_all()")
	}
	br := t.q.SendBatch(t.ctx, batch)
	var tag pgconn.CommandTag
	var err error
	for i := range batch.Len() {
		var tg pgconn.CommandTag
		if tg, err = br.Exec(); err != nil {
			break
		}
		switch i {
		case commitAt:
			tag = tg
		case commitAt + 1:
			t.locked = false
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commit: %w", refused(err))
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: the transaction was rolled back (%s)", tag)
	}
	t.begun = false // ended: nothing to roll back
	return nil
}

// Prefetch reads keys in one round trip into the read cache
// (kv.Prefetcher); keys this transaction wrote or read already are
// skipped.
func (t *kvTx) Prefetch(keys []kv.BucketKey) {
	if !t.write || t.err != nil {
		return
	}
	var (
		bs   pgtype.FlatArray[string]
		ks   pgtype.FlatArray[[]byte]
		seen = map[string]bool{}
	)
	for _, bk := range keys {
		b := string(bk.Bucket)
		ck := cacheKey(b, bk.Key)
		if seen[ck] {
			continue
		}
		seen[ck] = true
		if _, ok := t.buffered(b, bk.Key); ok {
			continue
		}
		if _, ok := t.cached(b, bk.Key); ok {
			continue
		}
		bs, ks = append(bs, b), append(ks, bk.Key)
	}
	if len(bs) == 0 {
		return
	}
	// The first query of a transaction: BEGIN and the lock go with it.
	batch := &pgx.Batch{}
	n := t.prelude(batch)
	// A lookup per key (LATERAL, kept from being flattened into a join
	// by its LIMIT): a join could be planned over a scan of the table.
	batch.Queue(`SELECT q.b, q.k, o.v FROM unnest($1::text[], $2::bytea[]) AS q(b, k)
		CROSS JOIN LATERAL (SELECT v FROM outpost_kv WHERE bucket = q.b AND k = q.k LIMIT 1) o`, bs, ks)
	br := t.q.SendBatch(t.ctx, batch)
	defer func() {
		if err := br.Close(); err != nil {
			t.fail(fmt.Errorf("prefetch: %w", err))
		}
	}()
	for range n {
		if _, err := br.Exec(); err != nil {
			t.fail(fmt.Errorf("take the write gate: %w", err))
			return
		}
	}
	rows, err := br.Query()
	if err != nil {
		t.fail(fmt.Errorf("prefetch: %w", err))
		return
	}
	defer rows.Close()
	found := map[string][]byte{}
	for rows.Next() {
		var (
			b    string
			k, v []byte
		)
		if err := rows.Scan(&b, &k, &v); err != nil {
			t.fail(fmt.Errorf("prefetch: %w", err))
			return
		}
		if v == nil {
			v = []byte{}
		}
		found[cacheKey(b, k)] = v
	}
	if err := rows.Err(); err != nil {
		t.fail(fmt.Errorf("prefetch: %w", err))
		return
	}
	for i := range bs {
		t.remember(bs[i], ks[i], found[cacheKey(bs[i], ks[i])]) // nil: absent
	}
}

// refused marks err kv.ErrRefused, with a conflict for the caller, when the
// database refused the writes for a rule of its own (an integrity
// constraint, class 23, or a value it cannot take, class 22: migration
// 4's checks): the transaction certainly did not commit. Any other error
// is returned as it is.
func refused(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "22") && !strings.HasPrefix(pe.Code, "23") {
		return err
	}
	msg := pe.Message
	if pe.ConstraintName != "" && !strings.Contains(msg, pe.ConstraintName) {
		msg += " (" + pe.ConstraintName + ")"
	}
	return fmt.Errorf("%w: %w", kv.ErrRefused, catalog.Errorf(catalog.ECONFLICT, "the database refused the write: %s", msg))
}
