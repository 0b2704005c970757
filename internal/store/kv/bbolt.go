package kv

import (
	"context"

	"go.etcd.io/bbolt"
)

// Bolt is the Backend on an open bbolt file. bbolt serializes writers
// itself; its read transactions see a fixed view.
func Bolt(db *bbolt.DB) Backend { return boltBackend{db} }

type boltBackend struct{ db *bbolt.DB }

func (b boltBackend) Update(_ context.Context, fn func(Tx) error) error {
	return b.db.Update(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

func (b boltBackend) View(_ context.Context, fn func(Tx) error) error {
	return b.db.View(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

type boltTx struct{ tx *bbolt.Tx }

func (t boltTx) Bucket(name []byte) Bucket { return boltBucket{t.tx.Bucket(name)} }

// boltBucket is *bbolt.Bucket with Cursor returning the interface.
type boltBucket struct{ *bbolt.Bucket }

func (b boltBucket) Cursor() Cursor { return b.Bucket.Cursor() }

// BoltTx adapts a read-write bbolt transaction opened by another package
// on the same file (the webhook outbox enqueues inside the caller's
// transaction), so kv-based logic can write in it.
func BoltTx(tx *bbolt.Tx) Tx { return boltTx{tx} }
