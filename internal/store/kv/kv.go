package kv

import (
	"context"
	"errors"
)

// Backend runs transactions. Update runs fn in a read-write transaction,
// committed when fn returns nil, one at a time; View runs fn in a read-only
// transaction that sees one consistent state.
type Backend interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
}

// ErrAborted marks a backend's error for a transaction that failed before
// its commit was attempted (a query of it failed): nothing was committed,
// and what fn concluded from the values it could not read is void. A
// backend whose reads cannot fail (bbolt) never returns it.
var ErrAborted = errors.New("transaction aborted")

// ErrRefused marks a backend's error for a commit the database refused
// for a rule of its own (PostgreSQL's constraints: an entitlement that
// overlaps another, one naming no tenant): nothing was committed. A
// grouped batch's calls run again one by one, so that only the call that
// broke the rule fails; the error carries a catalog error for its caller.
var ErrRefused = errors.New("refused by the database")

// Tx is a transaction: a set of named buckets (every name in Buckets
// exists). Values it returns are valid until the transaction ends and must
// not be modified.
type Tx interface {
	Bucket(name []byte) Bucket
}

// Bucket is an ordered map of byte keys (sorted byte-wise) to values.
type Bucket interface {
	// Get returns the value of k, or nil when absent (never nil when
	// present: an empty value is a zero-length slice).
	Get(k []byte) []byte
	Put(k, v []byte) error
	// Delete removes k; an absent key is no error.
	Delete(k []byte) error
	// ForEach calls fn for every key in order.
	ForEach(fn func(k, v []byte) error) error
	Cursor() Cursor
}

// Cursor walks a bucket in key order; every move returns the key and value
// it lands on, or nil, nil past either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	// Seek moves to the first key >= seek.
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
}

// IndexReader is an optional Tx fast path: the values of bucket named by the
// keys of bucket idx under pfx (key = pfx + id), in index order. A backend
// with a round trip per Get implements it.
type IndexReader interface {
	Indexed(idx, bucket, pfx []byte) ([][]byte, error)
}

// PrefixCounter is an optional Bucket fast path: the number of keys under
// pfx.
type PrefixCounter interface {
	CountPrefix(pfx []byte) int
}

// Taker is an optional Bucket fast path: remove every key and return the
// keys and values in key order, in one round trip.
type Taker interface {
	TakeAll() (keys, values [][]byte, err error)
}

// BucketKey names one key of one bucket.
type BucketKey struct{ Bucket, Key []byte }

// Prefetcher is an optional Tx fast path: read keys ahead, in one round
// trip, so that the Gets of them that follow are answered locally. A
// backend with a round trip per Get implements it.
type Prefetcher interface {
	Prefetch(keys []BucketKey)
}

// SharedUpdater is an optional Backend mode for writes that commute with
// each other (shared.go): UpdateShared runs fn in a read-write transaction
// that may run concurrently with other shared ones, never with an Update.
// Two shared transactions that write the same key cannot both commit as
// written: the backend detects it and runs the loser's fn again on a
// fresh state, so fn must reset its outputs on entry. hot names keys fn
// will write that shared transactions elsewhere (other instances) are
// likely to write at the same time, such as a counter: the backend may
// make such transactions wait for each other before they begin, rather
// than run one again after the other commits. A backend whose writers
// are serialized anyway (bbolt) does not implement it.
type SharedUpdater interface {
	UpdateShared(ctx context.Context, hot []BucketKey, fn func(Tx) error) error
	// TryUpdateSolo is UpdateShared for one caller at a time across every
	// process (the audit sequencer): false, and fn not run, while another
	// holds it.
	TryUpdateSolo(ctx context.Context, fn func(Tx) error) (bool, error)
}
