package boltstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/boltstore"
	"github.com/outpost/outpost/internal/webhook/webhooktest"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dispatcher(t *testing.T, s webhook.Store, recv *webhooktest.Receiver) *webhook.Dispatcher {
	t.Helper()
	d, err := webhook.NewDispatcher(webhook.Config{Store: s, CheckAddr: webhook.AllowAny, TLSConfig: recv.TLSConfig(),
		Timeout: 300 * time.Millisecond, Lease: 400 * time.Millisecond, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond,
		PollInterval: 5 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDispatcher_StoppedMidDeliveryLosesNothing: events are enqueued in
// the caller's own bbolt transactions; the receiver blocks, so deliveries
// are in flight when the dispatcher is stopped and the database closed
// without any attempt recorded (a crash, as far as the outbox knows). A
// new dispatcher over the reopened file delivers every event.
func TestDispatcher_StoppedMidDeliveryLosesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "controlplane.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := webhook.NewSubscription("https://placeholder.invalid/", []string{webhook.RolloutHalted}, "", false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	recv := webhooktest.NewReceiver(t, sub.Secret)
	sub.URL = recv.URL()
	if err := s.PutSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 10; i++ {
		ev, err := webhook.NewEvent(webhook.RolloutHalted, "", map[string]int{"n": i}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The change the event reports and the event commit together.
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("rollouts"))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(ev.ID), []byte("halted")); err != nil {
				return err
			}
			return boltstore.EnqueueTx(tx, ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}

	recv.Block()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = dispatcher(t, s, recv).Run(runCtx) }()
	<-recv.Entered
	<-recv.Entered // two deliveries in flight
	stop()
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	recv.Release()
	if got := recv.Got(); len(got) != 0 {
		t.Fatalf("receiver accepted %v before the crash, want nothing", got)
	}

	s2, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ds, err := s2.Deliveries(ctx, sub.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if n, _ := s2.Attempts(ctx, d.ID); len(n) != 0 {
			t.Errorf("delivery %s has %d attempts logged, want none (stopped mid-flight)", d.ID, len(n))
		}
	}
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	wg.Add(1)
	go func() { defer wg.Done(); _ = dispatcher(t, s2, recv).Run(runCtx) }()
	waitFor(t, "every event after the restart", func() bool {
		got := recv.Got()
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, "every delivery recorded", func() bool {
		ds, _ := s2.Deliveries(ctx, sub.ID, 0)
		n := 0
		for _, d := range ds {
			if d.State == webhook.Delivered {
				n++
			}
		}
		return n == len(ids)
	})
	stop()
	wg.Wait()
}
