// Package storetest is the contract every webhook.Store passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
)

// Factory makes stores for the suite. Reopen, when set, closes s and opens
// the same storage again; the suite then checks durability.
type Factory struct {
	New    func(t *testing.T) webhook.Store
	Reopen func(t *testing.T, s webhook.Store) webhook.Store
}

var t0 = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

func sub(id string, types ...string) webhook.Subscription {
	return webhook.Subscription{ID: id, URL: "https://hooks.example.com/" + id, EventTypes: types, Secret: "whsec_0123456789abcdef", CreatedAt: t0}
}

func event(id, typ string) webhook.Event {
	return webhook.Event{ID: id, Type: typ, CreatedAt: t0, Data: []byte(`{"n":1}`)}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func claimIDs(t *testing.T, s webhook.Store, now time.Time, limit int) []string {
	t.Helper()
	cs, err := s.Claim(context.Background(), now, now.Add(time.Minute), limit)
	must(t, err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Delivery.ID)
		if c.Event.ID != c.Delivery.EventID || c.Subscription.ID != c.Delivery.SubscriptionID {
			t.Errorf("claimed %s with event %s and subscription %s", c.Delivery.ID, c.Event.ID, c.Subscription.ID)
		}
	}
	return ids
}

// Run runs the contract.
func Run(t *testing.T, f Factory) {
	ctx := context.Background()
	t.Run("Subscriptions", func(t *testing.T) {
		s := f.New(t)
		must(t, s.PutSubscription(ctx, sub("whk_b", "*")))
		must(t, s.PutSubscription(ctx, sub("whk_a", webhook.ReleasePublished)))
		got, err := s.Subscriptions(ctx)
		if err != nil || len(got) != 2 || got[0].ID != "whk_a" || got[1].Secret != "whsec_0123456789abcdef" {
			t.Errorf("Subscriptions = %+v, %v; want whk_a, whk_b with secrets", got, err)
		}
		must(t, s.DeleteSubscription(ctx, "whk_a"))
		if _, err := s.Subscription(ctx, "whk_a"); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("Subscription after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteSubscription(ctx, "whk_a"); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("second delete = %v, want ErrNotFound", err)
		}
	})
	t.Run("ExpandMatchesAndIsIdempotent", func(t *testing.T) {
		s := f.New(t)
		must(t, s.PutSubscription(ctx, sub("whk_all", "*")))
		must(t, s.PutSubscription(ctx, sub("whk_rel", webhook.ReleasePublished)))
		must(t, s.Enqueue(ctx, event("evt_1", webhook.ReleasePublished)))
		must(t, s.Enqueue(ctx, event("evt_2", webhook.RolloutHalted)))
		must(t, s.Enqueue(ctx, event("evt_1", webhook.ReleasePublished))) // repeat: no-op
		n, err := s.Expand(ctx, t0, 10, webhook.Matches)
		if err != nil || n != 2 {
			t.Fatalf("Expand = %d, %v; want 2", n, err)
		}
		if n, _ := s.Expand(ctx, t0, 10, webhook.Matches); n != 0 {
			t.Errorf("second Expand = %d, want 0", n)
		}
		got := claimIDs(t, s, t0, 10)
		want := []string{"evt_1.whk_all", "evt_1.whk_rel", "evt_2.whk_all"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("claimed %v, want %v", got, want)
		}
		ds, err := s.Deliveries(ctx, "whk_all", 0)
		if err != nil || len(ds) != 2 {
			t.Errorf("Deliveries(whk_all) = %d, %v; want 2", len(ds), err)
		}
	})
	t.Run("ExpandLimitKeepsOrder", func(t *testing.T) {
		s := f.New(t)
		must(t, s.PutSubscription(ctx, sub("whk_all", "*")))
		for i := 1; i <= 3; i++ {
			must(t, s.Enqueue(ctx, event(fmt.Sprintf("evt_%d", i), webhook.SnapshotBuilt)))
		}
		if n, _ := s.Expand(ctx, t0, 2, webhook.Matches); n != 2 {
			t.Fatalf("Expand(limit 2) = %d", n)
		}
		if got := claimIDs(t, s, t0, 10); fmt.Sprint(got) != "[evt_1.whk_all evt_2.whk_all]" {
			t.Errorf("claimed %v after the first expand", got)
		}
		if n, _ := s.Expand(ctx, t0, 2, webhook.Matches); n != 1 {
			t.Errorf("second Expand = %d, want 1", n)
		}
		// Expansion follows id order, not enqueue order.
		must(t, s.Enqueue(ctx, event("evt_9", webhook.SnapshotBuilt)))
		must(t, s.Enqueue(ctx, event("evt_5", webhook.SnapshotBuilt)))
		if n, _ := s.Expand(ctx, t0.Add(time.Hour), 1, webhook.Matches); n != 1 {
			t.Fatalf("Expand(limit 1) = %d", n)
		}
		if _, err := s.Delivery(ctx, "evt_5.whk_all"); err != nil {
			t.Errorf("the first expanded event is not evt_5 (the lower id): %v", err)
		}
	})
	t.Run("ClaimLeaseRecordRedeliver", func(t *testing.T) {
		s := f.New(t)
		must(t, s.PutSubscription(ctx, sub("whk_a", "*")))
		must(t, s.Enqueue(ctx, event("evt_1", webhook.SnapshotBuilt)))
		_, err := s.Expand(ctx, t0, 10, webhook.Matches)
		must(t, err)
		if got := claimIDs(t, s, t0.Add(-time.Second), 10); len(got) != 0 {
			t.Errorf("claimed %v before it was due", got)
		}
		if got := claimIDs(t, s, t0, 10); len(got) != 1 {
			t.Fatalf("claimed %v, want 1", got)
		}
		if got := claimIDs(t, s, t0.Add(30*time.Second), 10); len(got) != 0 {
			t.Errorf("claimed %v again inside the lease", got)
		}
		// The lease lapses (the dispatcher died): claimable again.
		if got := claimIDs(t, s, t0.Add(2*time.Minute), 10); len(got) != 1 {
			t.Fatalf("after the lease: claimed %v, want 1", got)
		}
		d, err := s.Delivery(ctx, "evt_1.whk_a")
		must(t, err)
		lease := d.NextAttempt
		d.Attempts, d.LastError, d.NextAttempt = 1, "status 500", t0.Add(time.Hour)
		must(t, s.Record(ctx, d, lease, webhook.Attempt{At: t0, Status: 500, Error: "status 500", Duration: time.Millisecond}, func(s *webhook.Subscription) { s.FailureStreak++ }))
		if got, _ := s.Delivery(ctx, d.ID); got.Attempts != 1 || !got.NextAttempt.Equal(t0.Add(time.Hour)) {
			t.Errorf("after Record: %+v, want 1 attempt, next at %s", got, t0.Add(time.Hour))
		}
		lease = d.NextAttempt
		d.Attempts, d.State, d.LastError = 2, webhook.Delivered, ""
		must(t, s.Record(ctx, d, lease, webhook.Attempt{At: t0.Add(time.Hour), Status: 204}, func(s *webhook.Subscription) { s.FailureStreak += 10 }))
		as, err := s.Attempts(ctx, d.ID)
		if err != nil || len(as) != 2 || as[0].N != 1 || as[1].N != 2 || as[0].Status != 500 || as[0].Duration != time.Millisecond || as[1].DeliveryID != d.ID {
			t.Errorf("Attempts = %+v, %v; want two, numbered 1 and 2", as, err)
		}
		if sb, _ := s.Subscription(ctx, "whk_a"); sb.FailureStreak != 11 {
			t.Errorf("streak = %d, want 11 (both updates applied)", sb.FailureStreak)
		}
		if got := claimIDs(t, s, t0.Add(48*time.Hour), 10); len(got) != 0 {
			t.Errorf("claimed a delivered delivery: %v", got)
		}
		must(t, s.Redeliver(ctx, d.ID, t0.Add(49*time.Hour)))
		if got := claimIDs(t, s, t0.Add(49*time.Hour), 10); len(got) != 1 {
			t.Errorf("after Redeliver: claimed %v, want 1", got)
		}
		if d, _ := s.Delivery(ctx, d.ID); d.State != webhook.Pending || d.Attempts != 0 {
			t.Errorf("redelivered = %+v, want pending with 0 attempts", d)
		}
		if err := s.Redeliver(ctx, "evt_x.whk_a", t0); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("Redeliver(unknown) = %v, want ErrNotFound", err)
		}
		// An attempt that ends after the delivery was requeued by hand (or
		// claimed again) is logged but does not overwrite it.
		d, err = s.Delivery(ctx, d.ID)
		must(t, err)
		stale := d
		stale.State = webhook.Delivered
		must(t, s.Record(ctx, stale, d.NextAttempt.Add(-time.Second), webhook.Attempt{At: t0, Status: 204}, nil))
		if got, _ := s.Delivery(ctx, d.ID); got.State != webhook.Pending {
			t.Errorf("a stale Record overwrote the delivery: %s, want pending", got.State)
		}
		if as, _ := s.Attempts(ctx, d.ID); len(as) != 3 {
			t.Errorf("attempts = %d, want 3 (the stale one logged)", len(as))
		}
	})
	t.Run("DisabledAndDeletedSubscriptions", func(t *testing.T) {
		s := f.New(t)
		off := sub("whk_off", "*")
		must(t, s.PutSubscription(ctx, off))
		must(t, s.PutSubscription(ctx, sub("whk_gone", "*")))
		must(t, s.Enqueue(ctx, event("evt_1", webhook.SnapshotBuilt)))
		_, err := s.Expand(ctx, t0, 10, webhook.Matches)
		must(t, err)
		off.Disabled = true
		must(t, s.PutSubscription(ctx, off))
		must(t, s.DeleteSubscription(ctx, "whk_gone"))
		if got := claimIDs(t, s, t0, 10); len(got) != 0 {
			t.Errorf("claimed %v, want none", got)
		}
		if d, _ := s.Delivery(ctx, "evt_1.whk_gone"); d.State != webhook.Failed {
			t.Errorf("delivery of a deleted subscription = %s, want failed", d.State)
		}
		off.Disabled = false
		must(t, s.PutSubscription(ctx, off))
		if got := claimIDs(t, s, t0, 10); fmt.Sprint(got) != "[evt_1.whk_off]" {
			t.Errorf("after re-enabling: claimed %v, want the kept delivery", got)
		}
	})
	t.Run("Prune", func(t *testing.T) {
		s := f.New(t)
		must(t, s.PutSubscription(ctx, sub("whk_a", "*")))
		for _, id := range []string{"evt_1_old_ok", "evt_2_old_pending", "evt_3_new_ok"} {
			must(t, s.Enqueue(ctx, event(id, webhook.SnapshotBuilt)))
		}
		_, err := s.Expand(ctx, t0, 2, webhook.Matches) // evt_old_*, created at t0
		must(t, err)
		_, err = s.Expand(ctx, t0.Add(48*time.Hour), 10, webhook.Matches) // evt_3_new_ok
		must(t, err)
		must(t, s.Enqueue(ctx, event("evt_4_unexpanded", webhook.SnapshotBuilt)))
		for _, id := range []string{"evt_1_old_ok.whk_a", "evt_3_new_ok.whk_a"} {
			d, err := s.Delivery(ctx, id)
			must(t, err)
			lease := d.NextAttempt
			d.State, d.Attempts = webhook.Delivered, 1
			must(t, s.Record(ctx, d, lease, webhook.Attempt{At: t0, Status: 204}, nil))
		}
		n, err := s.Prune(ctx, t0.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v; want 1 (the old delivered one)", n, err)
		}
		if _, err := s.Delivery(ctx, "evt_1_old_ok.whk_a"); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("pruned delivery: %v, want ErrNotFound", err)
		}
		if _, err := s.Attempts(ctx, "evt_1_old_ok.whk_a"); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("pruned delivery's attempts: %v, want ErrNotFound", err)
		}
		for _, id := range []string{"evt_2_old_pending.whk_a", "evt_3_new_ok.whk_a"} {
			if _, err := s.Delivery(ctx, id); err != nil {
				t.Errorf("kept delivery %s: %v", id, err)
			}
		}
		if ds, _ := s.Deliveries(ctx, "whk_a", 0); len(ds) != 2 {
			t.Errorf("Deliveries after prune = %d, want 2", len(ds))
		}
		// The pending delivery's event is still deliverable, and so is the
		// event not expanded yet.
		if got := claimIDs(t, s, t0.Add(72*time.Hour), 10); fmt.Sprint(got) != "[evt_2_old_pending.whk_a]" {
			t.Errorf("claimed %v after prune, want the pending one", got)
		}
		if n, _ := s.Expand(ctx, t0, 10, webhook.Matches); n != 1 {
			t.Errorf("expanding the queued event after prune = %d, want 1", n)
		}
	})
	t.Run("EnqueueValidates", func(t *testing.T) {
		s := f.New(t)
		if err := s.Enqueue(ctx, event("evt_1", "no.such")); err == nil {
			t.Errorf("Enqueue of an unknown type = nil, want an error")
		}
	})
	if f.Reopen != nil {
		t.Run("Durable", func(t *testing.T) {
			s := f.New(t)
			must(t, s.PutSubscription(ctx, sub("whk_a", "*")))
			must(t, s.Enqueue(ctx, event("evt_1", webhook.SnapshotBuilt)))
			must(t, s.Enqueue(ctx, event("evt_2", webhook.SnapshotBuilt)))
			_, err := s.Expand(ctx, t0, 1, webhook.Matches)
			must(t, err)
			s = f.Reopen(t, s)
			_, err = s.Expand(ctx, t0, 10, webhook.Matches)
			must(t, err)
			if got := claimIDs(t, s, t0, 10); fmt.Sprint(got) != "[evt_1.whk_a evt_2.whk_a]" {
				t.Errorf("after reopen: claimed %v, want both", got)
			}
		})
	}
}
