package kvstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/kvstore"
	"github.com/outpost/outpost/internal/webhook/storetest"
)

// TestStore_ContractBolt runs the contract on kv.Bolt (the boltstore
// package runs it again with reopen; this keeps kvstore's own coverage).
func TestStore_ContractBolt(t *testing.T) {
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) webhook.Store {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range kvstore.Buckets {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return kvstore.New(kv.Bolt(db))
	}})
}

// TestEnqueueTx_RollsBackWithTheCaller: an event enqueued in a
// transaction that fails is not in the outbox.
func TestEnqueueTx_RollsBackWithTheCaller(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.Update(func(tx *bolt.Tx) error {
		for _, b := range kvstore.Buckets {
			_, _ = tx.CreateBucket(b)
		}
		return nil
	})
	b := kv.Bolt(db)
	s := kvstore.New(b)
	sub, _ := webhook.NewSubscription("https://hooks.example.com/x", []string{"*"}, "", false, t0())
	if err := s.PutSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	ev, _ := webhook.NewEvent(webhook.ReleasePublished, "", map[string]int{}, t0())
	failed := b.Update(ctx, func(tx kv.Tx) error {
		if err := kvstore.EnqueueTx(tx, ev); err != nil {
			return err
		}
		return os.ErrInvalid // the change the event reports fails
	})
	if failed == nil {
		t.Fatal("the failing transaction committed")
	}
	if n, _ := s.Expand(ctx, t0(), 10, webhook.Matches); n != 0 {
		t.Errorf("Expand after a rolled-back enqueue = %d, want 0", n)
	}
	if err := b.Update(ctx, func(tx kv.Tx) error { return kvstore.EnqueueTx(tx, ev) }); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Expand(ctx, t0(), 10, webhook.Matches); n != 1 {
		t.Errorf("Expand after a committed enqueue = %d, want 1", n)
	}
}

func t0() time.Time { return time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC) }
