// Package postgres is the implementation of store.Store on PostgreSQL, for
// deployments that run several control plane instances against one
// database.
//
// It is the shared logic of store/kv on one table of (bucket, key, value)
// rows, so bolt and postgres enforce the data model's constraints with the
// same code. Writes take the write gate (buffer.go). Most are exclusive:
// they run one at a time across every process, exactly as bbolt runs
// them, so a constraint checked in a transaction cannot be raced past and
// the audit chain never forks. Writes that commute (kv's shared writes:
// new releases) run concurrently in REPEATABLE READ transactions, across
// instances; the database makes one of two that touch the same key run
// again, and their audit events reach the chain through kv's sequencer.
// Reads run in REPEATABLE READ read-only transactions and see one
// consistent state.
//
// Writers also scale by sharing transactions: kv's group commit runs the
// concurrent writes of an instance in one transaction (one gate hold, one
// WAL flush), and a read-write transaction spends two round trips in the
// gate (BEGIN + gate + the batch's prefetch; the buffered writes +
// COMMIT).
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/kv"
)

// Options tunes Open.
type Options struct {
	// Schema, if set, is created if missing and used as the search_path,
	// so that several stores (or tests) can share one database.
	Schema string
	// MaxConns bounds the connection pool (default pgxpool's).
	MaxConns int32
}

// DB is a PostgreSQL-backed store.Store.
type DB struct {
	*kv.Store
	pool *pgxpool.Pool
	// Read-write transactions run and the time they held the write gate
	// (WriteStats); shared transactions run again after a conflict.
	writeTxs, txTime, retries atomic.Int64
	// hotUntil: until then (unix ns) shared transactions with hot keys
	// take their locks first (hotLocks).
	hotUntil atomic.Int64
}

// WriteStats says how many read-write transactions this DB ran, how long
// they spent in all from their first statement to their commit (waits
// for the write gate included) and how many shared transactions ran again
// after a conflict.
func (db *DB) WriteStats() (txs int64, held time.Duration, retries int64) {
	return db.writeTxs.Load(), time.Duration(db.txTime.Load()), db.retries.Load()
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or a DSN),
// creates the schema if needed and checks its version.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open store: parse url: %w", err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerByteaArray(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := migrate(ctx, pool, opts.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := &DB{pool: pool}
	// No catalog cache: other instances write to the same database.
	db.Store = kv.New(backend{db}, kv.Options{})
	return db, nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	db.Store.Close()
	db.pool.Close()
	return nil
}

// backend is the kv.Backend on the pool.
type backend struct{ db *DB }

// Backend is the kv.Backend on the pool, for other state kept in the same
// database and transactions (the webhook outbox: webhook/kvstore).
func (db *DB) Backend() kv.Backend { return backend{db} }

func (b backend) Update(ctx context.Context, fn func(kv.Tx) error) error {
	return b.db.update(ctx, modeExclusive, nil, func(tx *kvTx) error { return fn(tx) })
}

// UpdateShared implements kv.SharedUpdater: fn runs again, on a fresh
// snapshot, when the database refuses its transaction for a conflict
// with another (a serialization failure or a deadlock), until it commits,
// ctx ends or maxAttempts runs have lost.
func (b backend) UpdateShared(ctx context.Context, hot []kv.BucketKey, fn func(kv.Tx) error) error {
	return b.db.updateShared(ctx, modeShared, hot, fn)
}

// TryUpdateSolo implements kv.SharedUpdater: UpdateShared that also takes
// the advisory lock soloLock, without waiting.
func (b backend) TryUpdateSolo(ctx context.Context, fn func(kv.Tx) error) (bool, error) {
	err := b.db.updateShared(ctx, modeSolo, nil, fn)
	if errors.Is(err, errBusy) {
		return false, nil
	}
	return err == nil, err
}

// errBusy: another transaction holds soloLock.
var errBusy = errors.New("held by another instance")

// maxAttempts bounds the runs of a shared transaction that keeps losing
// conflicts (each loss waits for a winner's commit, so the system moves
// on; this caller then gets the conflict's error and may retry).
const maxAttempts = 64

func (db *DB) updateShared(ctx context.Context, mode txMode, hot []kv.BucketKey, fn func(kv.Tx) error) error {
	locks := hotLocks(hot)
	for attempt := 1; ; attempt++ {
		var take []int64
		if time.Now().UnixNano() < db.hotUntil.Load() {
			take = locks
		}
		err := db.update(ctx, mode, take, func(tx *kvTx) error { return fn(tx) })
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		db.retries.Add(1)
		if len(locks) > 0 {
			db.hotUntil.Store(time.Now().Add(hotFor).UnixNano())
		}
		// A short random pause, growing with the attempts, so that the
		// same two transactions do not collide again at once.
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt-1, 6)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// Hot keys (kv.SharedUpdater). Shared transactions that write the same
// key from two instances at once do not both commit: the second fails
// once the first commits, and runs again. For a key that many writes
// touch (an entitlement's lease counter, when one entitlement takes
// leases from several instances) that wastes about every other
// transaction's work. So, once a shared transaction with hot keys has
// lost a conflict, for hotFor, this instance's shared transactions with
// hot keys first take a session advisory lock per hot key, in key order,
// before they begin: they wait for each other before their snapshot is
// taken (the lock is taken in a statement of its own, whose snapshot is
// not the transaction's), and then read what the last one committed. An
// instance without conflicts pays nothing; under contention, a
// transaction pays two round trips (take, release) instead of losing.
// The locks are released after the commit or the rollback, or with the
// connection.
const hotFor = time.Second

// hotLocks returns the advisory lock ids of hot keys, sorted, once each.
func hotLocks(hot []kv.BucketKey) []int64 {
	if len(hot) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(hot))
	for _, bk := range hot {
		h := fnv.New64a()
		h.Write(bk.Bucket)
		h.Write([]byte{0})
		h.Write(bk.Key)
		ids = append(ids, int64(h.Sum64()))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// retryable: the transaction failed for a conflict and never committed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (b backend) View(ctx context.Context, fn func(kv.Tx) error) error {
	return b.db.view(ctx, func(tx *kvTx) error { return fn(tx) })
}

// txMode is how a read-write transaction takes the write gate.
type txMode int

const (
	modeExclusive txMode = iota
	modeShared
	modeSolo // shared, and alone among solo transactions (soloLock)
)

// update runs fn in a read-write transaction that holds the write gate,
// exclusive or shared (buffer.go).
//
// The transaction is driven by hand on one connection to save round
// trips while the gate is held (they bound the write rate of every
// instance together): BEGIN and the gate go out with the transaction's
// first query (a batch's prefetch, usually), and the buffered writes with
// the COMMIT, so a grouped batch holds the gate for two round trips plus
// its own work.
func (db *DB) update(ctx context.Context, mode txMode, locks []int64, fn func(*kvTx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Release()
	kt := &kvTx{q: conn, ctx: ctx, write: true, lazy: true, shared: mode != modeExclusive}
	if len(locks) > 0 {
		// Before BEGIN, in a statement of its own (hotLocks).
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(k) FROM unnest($1::bigint[]) AS k", locks); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // whatever it holds goes with it
			return fmt.Errorf("take hot-key locks: %w", err)
		}
		kt.locked = true
		// Registered first, so it runs after the rollback below.
		defer func() {
			if !kt.locked {
				return
			}
			if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock_all()"); uerr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}()
	}
	defer func() {
		if err != nil && kt.begun {
			// The transaction is aborted or still open: end it, or drop
			// the connection when even that fails.
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}
	}()
	start := time.Now()
	if mode == modeSolo {
		if err := kt.trySolo(); err != nil {
			return err
		}
	}
	defer func() {
		if kt.begun || err == nil {
			db.writeTxs.Add(1)
			db.txTime.Add(int64(time.Since(start)))
		}
	}()
	err = fn(kt)
	// A failed query makes the transaction useless: report it rather
	// than whatever fn concluded from the missing value.
	if kt.err != nil {
		return fmt.Errorf("%w: %w", kv.ErrAborted, kt.err)
	}
	if err != nil {
		return err
	}
	return kt.commit()
}

// view runs fn in a read-only transaction on one consistent snapshot.
func (db *DB) view(ctx context.Context, fn func(*kvTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	kt := &kvTx{q: tx, ctx: ctx}
	err = fn(kt)
	if kt.err != nil {
		return kt.err
	}
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// kvTx is the kv.Tx on outpost_kv. Get and cursor moves cannot return an
// error; the first one is kept and fails the transaction.
type kvTx struct {
	q   querier
	ctx context.Context
	err error
	// lazy: a read-write transaction not begun yet (update); begun: BEGIN
	// has been sent; shared: it takes the write gate shared.
	lazy, begun, shared bool
	// locked: it holds session advisory locks on hot keys (hotLocks),
	// released with its commit or after it ends.
	locked bool
	// A read-write transaction buffers its writes and caches its reads
	// (buffer.go).
	write       bool
	pending     map[string]*pendingOp
	pendingSize int
	reads       map[string][]byte
	// present: of a shared transaction, the keys it knows to be rows now
	// (read as present, or written by it), true, or not (read as absent,
	// or deleted by it), false; a write of a present one is an update
	// (queueWrites).
	present map[string]bool
}

func (t *kvTx) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// Bucket returns the bucket called name; buckets always exist.
func (t *kvTx) Bucket(name []byte) kv.Bucket {
	return &kvBucket{tx: t, name: string(name)}
}

type kvBucket struct {
	tx   *kvTx
	name string
}

// Get returns the value of k, or nil when absent (never nil when present).
func (b *kvBucket) Get(k []byte) []byte {
	if b.tx.err != nil {
		return nil
	}
	if v, ok := b.tx.buffered(b.name, k); ok {
		return v
	}
	if v, ok := b.tx.cached(b.name, k); ok {
		return v
	}
	q := b.tx.conn()
	if b.tx.err != nil {
		return nil
	}
	var v []byte
	err := q.QueryRow(b.tx.ctx, "SELECT v FROM outpost_kv WHERE bucket = $1 AND k = $2", b.name, k).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		b.tx.remember(b.name, k, nil)
		return nil
	}
	if err != nil {
		b.tx.fail(fmt.Errorf("get %s: %w", b.name, err))
		return nil
	}
	if v == nil {
		v = []byte{}
	}
	b.tx.remember(b.name, k, v)
	return v
}

// Put sets k to v.
func (b *kvBucket) Put(k, v []byte) error {
	if b.tx.err != nil {
		return b.tx.err
	}
	if v == nil {
		v = []byte{}
	}
	b.tx.buffer(&pendingOp{bucket: b.name, k: k, v: v})
	return b.tx.err
}

// Delete removes k; absent keys are no error.
func (b *kvBucket) Delete(k []byte) error {
	if b.tx.err != nil {
		return b.tx.err
	}
	b.tx.buffer(&pendingOp{bucket: b.name, k: k, del: true})
	return b.tx.err
}

// ForEach calls fn for every key in order; fn may modify the bucket.
func (b *kvBucket) ForEach(fn func(k, v []byte) error) error {
	c := &kvCursor{b: b}
	var rows []row
	for k, v := c.First(); k != nil; k, v = c.Next() {
		rows = append(rows, row{k, v})
	}
	if b.tx.err != nil {
		return b.tx.err
	}
	for _, r := range rows {
		if err := fn(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// Cursor returns a cursor over the bucket in key order.
func (b *kvBucket) Cursor() kv.Cursor { return &kvCursor{b: b} }

type row struct{ k, v []byte }

// A cursor reads cursorBatch rows per query at first and doubles that, up
// to maxBatch, while the scan goes on: short seeks stay cheap and long
// scans take few round trips.
const (
	cursorBatch = 64
	maxBatch    = 8192
)

// kvCursor reads rows in batches. Like bbolt's, it is positioned on one
// key; it does not see writes made after the batch holding it was read.
type kvCursor struct {
	b     *kvBucket
	buf   []row
	pos   int
	more  bool // rows may follow the buffer
	batch int  // the size of the next forward read
}

func (c *kvCursor) load(q string, arg []byte, batch int) {
	c.buf, c.pos, c.more = nil, 0, false
	c.b.tx.flush()
	conn := c.b.tx.conn()
	if c.b.tx.err != nil {
		return
	}
	var args []any
	if arg != nil {
		args = []any{c.b.name, arg, batch}
	} else {
		args = []any{c.b.name, batch}
	}
	rows, err := conn.Query(c.b.tx.ctx, q, args...)
	if err != nil {
		c.b.tx.fail(fmt.Errorf("scan %s: %w", c.b.name, err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.k, &r.v); err != nil {
			c.b.tx.fail(fmt.Errorf("scan %s: %w", c.b.name, err))
			return
		}
		if r.v == nil {
			r.v = []byte{}
		}
		c.b.tx.note(cacheKey(c.b.name, r.k), true)
		c.buf = append(c.buf, r)
	}
	if err := rows.Err(); err != nil {
		c.b.tx.fail(fmt.Errorf("scan %s: %w", c.b.name, err))
		c.buf = nil
		return
	}
	c.more = len(c.buf) == batch
}

func (c *kvCursor) cur() ([]byte, []byte) {
	if c.pos < 0 || c.pos >= len(c.buf) {
		return nil, nil
	}
	r := c.buf[c.pos]
	return r.k, r.v
}

// First moves to the first key.
func (c *kvCursor) First() ([]byte, []byte) { return c.Seek([]byte{}) }

// Seek moves to the first key >= seek.
func (c *kvCursor) Seek(seek []byte) ([]byte, []byte) {
	if seek == nil {
		seek = []byte{}
	}
	c.batch = cursorBatch
	c.load("SELECT k, v FROM outpost_kv WHERE bucket = $1 AND k >= $2 ORDER BY k LIMIT $3", seek, c.batch)
	return c.cur()
}

// Next moves to the key after the current one.
func (c *kvCursor) Next() ([]byte, []byte) {
	if c.pos >= len(c.buf) {
		return nil, nil
	}
	c.pos++
	if c.pos < len(c.buf) {
		return c.cur()
	}
	if !c.more {
		return nil, nil
	}
	last := c.buf[len(c.buf)-1].k
	c.batch = min(max(c.batch*2, cursorBatch), maxBatch)
	c.load("SELECT k, v FROM outpost_kv WHERE bucket = $1 AND k > $2 ORDER BY k LIMIT $3", last, c.batch)
	return c.cur()
}

// Last moves to the last key.
func (c *kvCursor) Last() ([]byte, []byte) {
	c.load("SELECT k, v FROM outpost_kv WHERE bucket = $1 ORDER BY k DESC LIMIT $2", nil, 1)
	c.more = true
	return c.cur()
}

// Prev moves to the key before the current one.
func (c *kvCursor) Prev() ([]byte, []byte) {
	k, _ := c.cur()
	if k == nil {
		return nil, nil
	}
	c.load("SELECT k, v FROM outpost_kv WHERE bucket = $1 AND k < $2 ORDER BY k DESC LIMIT $3", k, 1)
	c.more = true
	return c.cur()
}

// Indexed returns the values in bucket named by the keys of index idx under
// pfx (key = pfx + id), in index order, in one query instead of one per id.
func (t *kvTx) Indexed(idx, bucket, pfx []byte) ([][]byte, error) {
	t.flush()
	q := t.conn()
	if t.err != nil {
		return nil, t.err
	}
	rows, err := q.Query(t.ctx, `SELECT substring(i.k from $3::int + 1), d.v
		FROM outpost_kv i
		LEFT JOIN outpost_kv d ON d.bucket = $2 AND d.k = substring(i.k from $3::int + 1)
		WHERE i.bucket = $1 AND i.k >= $4 AND substring(i.k from 1 for $3::int) = $4
		ORDER BY i.k`, string(idx), string(bucket), len(pfx), pfx)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", idx, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var id, v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("scan %s: %w", idx, err)
		}
		if v == nil {
			return nil, fmt.Errorf("index %s names missing %s %q", idx, bucket, id)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan %s: %w", idx, err)
	}
	return out, nil
}

// CountPrefix counts the keys of b under pfx in one query.
func (b *kvBucket) CountPrefix(pfx []byte) int {
	b.tx.flush()
	q := b.tx.conn()
	if b.tx.err != nil {
		return 0
	}
	var n int
	err := q.QueryRow(b.tx.ctx, `SELECT count(*) FROM outpost_kv
		WHERE bucket = $1 AND k >= $3 AND substring(k from 1 for $2::int) = $3`, b.name, len(pfx), pfx).Scan(&n)
	if err != nil {
		b.tx.fail(fmt.Errorf("count %s: %w", b.name, err))
		return 0
	}
	return n
}

// TakeAll removes every key of the bucket and returns the keys and values
// in key order, in one statement (kv.Taker): the audit sequencer empties
// the pending queue with it.
func (b *kvBucket) TakeAll() (keys, values [][]byte, err error) {
	b.tx.flush()
	q := b.tx.conn()
	if b.tx.err != nil {
		return nil, nil, b.tx.err
	}
	rows, err := q.Query(b.tx.ctx, "DELETE FROM outpost_kv WHERE bucket = $1 RETURNING k, v", b.name)
	if err != nil {
		b.tx.fail(fmt.Errorf("take %s: %w", b.name, err))
		return nil, nil, b.tx.err
	}
	var taken []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.k, &r.v); err != nil {
			rows.Close()
			b.tx.fail(fmt.Errorf("take %s: %w", b.name, err))
			return nil, nil, b.tx.err
		}
		if r.v == nil {
			r.v = []byte{}
		}
		taken = append(taken, r)
	}
	if err := rows.Err(); err != nil {
		b.tx.fail(fmt.Errorf("take %s: %w", b.name, err))
		return nil, nil, b.tx.err
	}
	slices.SortFunc(taken, func(x, y row) int { return bytes.Compare(x.k, y.k) })
	keys, values = make([][]byte, len(taken)), make([][]byte, len(taken))
	for i, r := range taken {
		keys[i], values[i] = r.k, r.v
		ck := cacheKey(b.name, r.k)
		if b.tx.reads != nil {
			b.tx.reads[ck] = nil
		}
		b.tx.note(ck, false)
	}
	return keys, values, nil
}

// PutMany sets keys[i] to values[i] in one statement (kv.BulkPutter).
func (b *kvBucket) PutMany(keys, values [][]byte) error {
	b.tx.flush()
	q := b.tx.conn()
	if b.tx.err != nil {
		return b.tx.err
	}
	for _, k := range keys {
		ck := cacheKey(b.name, k)
		delete(b.tx.reads, ck)
		b.tx.note(ck, true)
	}
	for i := range values {
		if values[i] == nil {
			values[i] = []byte{}
		}
	}
	_, err := q.Exec(b.tx.ctx, `INSERT INTO outpost_kv (bucket, k, v)
		SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS t(k, v)
		ON CONFLICT (bucket, k) DO UPDATE SET v = excluded.v`, b.name, keys, values)
	if err != nil {
		err = fmt.Errorf("put %s: %w", b.name, err)
		b.tx.fail(err)
	}
	return err
}
