package consoleapp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/webhooktest"
)

// TestBackend_WebhookDeliveries subscribes a real receiver on 127.0.0.1,
// runs the dispatcher over the App's outbox, and checks the console lists
// the subscription and the delivery, and that a redelivery through the
// console reaches the receiver again.
func TestBackend_WebhookDeliveries(t *testing.T) {
	w := setup(t)
	admin := console.WithPrincipal(context.Background(), w.admin)
	recv := webhooktest.NewReceiver(t, "whsec_placeholder_until_subscribed")
	sub, err := w.app.CreateWebhook(w.op, controlplane.WebhookInput{URL: recv.URL(), EventTypes: []string{webhook.ReleasePublished}})
	if err != nil {
		t.Fatal(err)
	}
	recv.SetSecret(sub.Secret)
	d, err := webhook.NewDispatcher(webhook.Config{Store: w.app.WebhookStore(), CheckAddr: webhook.AllowAny, TLSConfig: recv.TLSConfig(),
		BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	_, err = w.app.CreateRelease(w.op, w.product, controlplane.ReleaseInput{Channel: "stable", Version: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	// wait polls: the receiver signals Entered before it counts a
	// delivery as accepted.
	wait := func(t *testing.T, n int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for total(recv.Got()) < n {
			select {
			case <-recv.Entered:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("deliveries accepted = %d, want %d", total(recv.Got()), n)
			}
		}
	}
	wait(t, 1)
	allOK := func(ds []*console.WebhookDelivery) bool {
		for _, d := range ds {
			if !d.OK {
				return false
			}
		}
		return len(ds) > 0
	}

	t.Run("the subscription is listed without its secret", func(t *testing.T) {
		subs, err := w.b.WebhookSubscriptions(admin, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 1 || subs[0].ID != sub.ID || subs[0].URL != recv.URL() {
			t.Fatalf("got %+v, want subscription %s to %s", subs, sub.ID, recv.URL())
		}
	})
	var del *console.WebhookDelivery
	t.Run("the delivery is listed as delivered", func(t *testing.T) {
		var ds []*console.WebhookDelivery
		// The receiver answers before the dispatcher records the attempt;
		// the release published in setup is delivered too (the outbox
		// matches events to subscriptions when it expands them).
		for deadline := time.Now().Add(30 * time.Second); ; {
			if ds, err = w.b.WebhookDeliveries(admin, ""); err != nil {
				t.Fatal(err)
			}
			if allOK(ds) && len(ds) == total(recv.Got()) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(ds) == 0 || len(ds) != total(recv.Got()) {
			t.Fatalf("got %d deliveries, want %d (accepted by the receiver)", len(ds), total(recv.Got()))
		}
		for i := 1; i < len(ds); i++ {
			if ds[i].At.After(ds[i-1].At) {
				t.Errorf("delivery %d is newer than %d, want newest first", i, i-1)
			}
		}
		del = ds[0]
		if !del.OK || del.StatusCode/100 != 2 || del.Attempts != 1 || del.URL != recv.URL() || del.SubscriptionID != sub.ID {
			t.Errorf("got %+v, want one delivered attempt to %s", del, recv.URL())
		}
	})
	if del == nil {
		t.Fatal("no delivery listed")
	}
	t.Run("a tenant session sees webhooks as not available", func(t *testing.T) {
		_, err := w.b.WebhookDeliveries(console.WithPrincipal(context.Background(), w.mine), w.tMine)
		if !errors.Is(err, console.ErrNotImplemented) {
			t.Errorf("got %v, want ErrNotImplemented", err)
		}
		err = w.b.RedeliverWebhook(console.WithPrincipal(context.Background(), w.mine), del.DeliveryID)
		if got := catalog.ErrorCode(err); got != catalog.EFORBIDDEN {
			t.Errorf("redeliver as tenant: got %q, want %q", got, catalog.EFORBIDDEN)
		}
	})
	t.Run("redeliver sends it again", func(t *testing.T) {
		before := total(recv.Got())
		if err := w.b.RedeliverWebhook(admin, del.DeliveryID); err != nil {
			t.Fatal(err)
		}
		d.Notify()
		wait(t, before+1)
		if got := recv.Got()[del.EventID]; got != 2 {
			t.Errorf("event %s accepted %d times, want 2", del.EventID, got)
		}
	})
	t.Run("an unknown delivery is not found", func(t *testing.T) {
		err := w.b.RedeliverWebhook(admin, "evt_nope.whs_nope")
		if got := catalog.ErrorCode(err); got != catalog.ENOTFOUND {
			t.Errorf("got %v, want %q", err, catalog.ENOTFOUND)
		}
	})
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
