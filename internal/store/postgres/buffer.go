package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/outpost/outpost/internal/store/kv"
)

// Round trips. Every Get, Put and Delete of the kv emulation was one
// round trip, and writers hold the chain-head lock across all of them, so
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
//     its read cache: while the transaction holds the chain-head lock no
//     other writer changes a row, so a value read once stays true until
//     this transaction changes it.
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

func (t *kvTx) remember(bucket string, k, v []byte) {
	if !t.write {
		return
	}
	if t.reads == nil {
		t.reads = map[string][]byte{}
	}
	if len(t.reads) < maxCached {
		t.reads[cacheKey(bucket, k)] = v
	}
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

// lockChainHead is the statement every read-write transaction starts with.
const lockChainHead = "SELECT id FROM outpost_chain_head WHERE id = 1 FOR UPDATE"

// prelude queues BEGIN and the chain-head lock ahead of the rest of batch
// when the transaction has not begun, and returns how many it queued.
func (t *kvTx) prelude(batch *pgx.Batch) int {
	if !t.lazy || t.begun {
		return 0
	}
	t.begun = true
	batch.Queue("BEGIN")
	batch.Queue(lockChainHead)
	return 2
}

// conn begins the transaction if it has not (one round trip) and returns
// what to query; the caller checks t.err before using it.
func (t *kvTx) conn() querier {
	if t.err == nil && t.lazy && !t.begun {
		batch := &pgx.Batch{}
		t.prelude(batch)
		if err := t.q.SendBatch(t.ctx, batch).Close(); err != nil {
			t.fail(fmt.Errorf("lock chain head: %w", err))
		}
	}
	return t.q
}

// queueWrites moves the buffered writes into batch.
func (t *kvTx) queueWrites(batch *pgx.Batch) {
	if len(t.pending) == 0 {
		return
	}
	var (
		pb, db   []string
		pk, pv   [][]byte
		dk       [][]byte
		deleting bool
	)
	for _, op := range t.pending {
		if op.del {
			db, dk, deleting = append(db, op.bucket), append(dk, op.k), true
			continue
		}
		pb, pk, pv = append(pb, op.bucket), append(pk, op.k), append(pv, op.v)
	}
	// Once sent, the rows are what the buffer said: keep them as reads.
	for ck, op := range t.pending {
		if len(t.reads) >= maxCached {
			break
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
	if deleting {
		batch.Queue(`DELETE FROM outpost_kv USING unnest($1::text[], $2::bytea[]) AS d(b, k)
			WHERE outpost_kv.bucket = d.b AND outpost_kv.k = d.k`, db, dk)
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
	br := t.q.SendBatch(t.ctx, batch)
	var tag pgconn.CommandTag
	var err error
	for range batch.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
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
		bs   []string
		ks   [][]byte
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
	batch.Queue(`SELECT o.bucket, o.k, o.v FROM outpost_kv o
		JOIN unnest($1::text[], $2::bytea[]) AS q(b, k) ON o.bucket = q.b AND o.k = q.k`, bs, ks)
	br := t.q.SendBatch(t.ctx, batch)
	defer func() {
		if err := br.Close(); err != nil {
			t.fail(fmt.Errorf("prefetch: %w", err))
		}
	}()
	for range n {
		if _, err := br.Exec(); err != nil {
			t.fail(fmt.Errorf("lock chain head: %w", err))
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
