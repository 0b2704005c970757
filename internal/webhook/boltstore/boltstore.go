// Package boltstore keeps the webhook outbox (webhook.Store) in bbolt:
// the kvstore logic on kv.Bolt, in a daemon's existing database (New) or
// a file of its own (Open). EnqueueTx puts an event in the outbox inside
// the caller's own *bbolt.Tx, so it commits with the change it reports.
package boltstore

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/kvstore"
)

// Store is a webhook.Store over bbolt.
type Store struct {
	*kvstore.Store
	db   *bolt.DB
	owns bool
}

var _ webhook.Store = (*Store)(nil)

// New uses db (the caller keeps and closes it), creating the buckets
// (kvstore.Buckets, all prefixed "webhook_").
func New(db *bolt.DB) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range kvstore.Buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init webhook store: %w", err)
	}
	return &Store{Store: kvstore.New(kv.Bolt(db)), db: db}, nil
}

// Open opens (creating) a bbolt file of its own; Close closes it.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open webhook store: %w", err)
	}
	s, err := New(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.owns = true
	return s, nil
}

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.owns {
		return s.db.Close()
	}
	return nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// EnqueueTx adds ev to the outbox inside tx (a read-write transaction on
// a database New has initialised): the event commits or rolls back with
// whatever else tx writes. An event id already there is a no-op.
func EnqueueTx(tx *bolt.Tx, ev webhook.Event) error {
	for _, b := range kvstore.Buckets {
		if tx.Bucket(b) == nil {
			return errors.New("enqueue webhook event: webhook buckets missing (call boltstore.New on this database first)")
		}
	}
	return kvstore.EnqueueTx(kv.BoltTx(tx), ev)
}
