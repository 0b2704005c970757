package controlplaned_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/webhooktest"
)

// webhookApp is an App over a fresh bbolt store (directly: the outbox
// lives on its backend), with private webhook endpoints allowed or not.
func webhookApp(t *testing.T, allowPrivate bool) (*controlplane.App, *bolt.DB) {
	t.Helper()
	return boltApp(t, controlplane.Config{AllowPrivateWebhooks: allowPrivate}, nil)
}

// boltApp is an App over a fresh bbolt store, disk blobs, a generated
// keyring and a random data key, with cfg and the clock now (nil: the
// real one).
func boltApp(t *testing.T, cfg controlplane.Config, now func() time.Time) (*controlplane.App, *bolt.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	app := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer,
		Now: now, Config: cfg})
	return app, db
}

// runDaemon runs the control plane daemon over app until the test ends.
func runDaemon(t *testing.T, app *controlplane.App, db *bolt.DB, w controlplaned.WebhookConfig) {
	t.Helper()
	cp, err := controlplaned.New(app, db, controlplaned.Config{Listen: "127.0.0.1:0", Webhooks: w})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		cp.Close(context.Background())
	})
}

// TestControlPlane_WebhooksDelivered runs the daemon with a subscription
// to a real receiver on 127.0.0.1 that fails its first requests: every
// event the catalog changes make (published releases, built snapshots)
// arrives signed once the outbox drains, and the failures are in the
// delivery log.
func TestControlPlane_WebhooksDelivered(t *testing.T) {
	app, db := webhookApp(t, true)
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})

	recv := webhooktest.NewReceiver(t, "whsec_placeholder_until_subscribed")
	sub, err := app.CreateWebhook(op, controlplane.WebhookInput{URL: recv.URL(), EventTypes: []string{webhook.ReleasePublished, webhook.SnapshotBuilt}})
	if err != nil {
		t.Fatal(err)
	}
	recv.SetSecret(sub.Secret)
	recv.FailNext(3)

	t.Run("the secret is shown once and stored sealed", func(t *testing.T) {
		subs, err := app.Webhooks(op)
		if err != nil || len(subs) != 1 || subs[0].Secret != "" {
			t.Fatalf("list = %+v (%v), want one subscription without its secret", subs, err)
		}
		raw, err := app.WebhookStore().(interface {
			Unwrap() webhook.Store
		}).Unwrap().Subscription(context.Background(), sub.ID)
		if err != nil || raw.Secret == sub.Secret || !strings.HasPrefix(raw.Secret, "sealed:") {
			t.Fatalf("stored secret %q (%v), want it sealed", raw.Secret, err)
		}
	})

	runDaemon(t, app, db, controlplaned.WebhookConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond, TLSConfig: recv.TLSConfig()})

	prod, err := app.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	ten, err := app.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if _, err := app.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.BuildSnapshot(op, ten.TenantID); err != nil {
		t.Fatal(err)
	}
	evs, _, err := app.AuditEvents(op, store.AuditFilter{}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.EventType == "release.created" || ev.EventType == "snapshot.created" {
			want = append(want, ev.EventID)
		}
	}
	if len(want) != 4 {
		t.Fatalf("audit events to mirror = %d, want 4", len(want))
	}
	for _, id := range want {
		// Polled: the receiver signals Entered before it counts the
		// delivery as accepted.
		deadline := time.After(30 * time.Second)
		for recv.Got()[id] == 0 {
			select {
			case <-recv.Entered:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("event %s never accepted; got %v", id, recv.Got())
			}
		}
	}
	if _, bad := recv.Counts(); bad != 0 {
		t.Fatalf("bad signatures = %d, want 0", bad)
	}
	dels, err := app.WebhookDeliveries(op, sub.ID, 0)
	if err != nil || len(dels) != 4 {
		t.Fatalf("deliveries = %d (%v), want 4", len(dels), err)
	}
	failed := 0
	for _, d := range dels {
		atts, err := app.WebhookAttempts(op, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			if a.Status == 500 {
				failed++
			}
		}
	}
	if failed != 3 {
		t.Fatalf("failed attempts logged = %d, want 3", failed)
	}
	t.Run("manual redelivery sends it again", func(t *testing.T) {
		id := dels[0].EventID
		before := recv.Got()[id]
		if err := app.RedeliverWebhook(op, dels[0].ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for recv.Got()[id] == before {
			select {
			case <-recv.Entered:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatal("redelivery never arrived")
			}
		}
	})
}

// TestControlPlane_WebhooksRefusePrivateAddresses: without
// allow_private_webhooks a plain http:// endpoint is refused at creation,
// and an https endpoint on 127.0.0.1 is never contacted: the attempt is
// logged with the refusal naming the address.
func TestControlPlane_WebhooksRefusePrivateAddresses(t *testing.T) {
	app, db := webhookApp(t, false)
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	recv := webhooktest.NewReceiver(t, "whsec_placeholder_until_subscribed")
	if _, err := app.CreateWebhook(op, controlplane.WebhookInput{URL: "http://example.com/hook", EventTypes: []string{webhook.AllTypes}}); catalog.ErrorCode(err) != catalog.EINVALID {
		t.Fatalf("http:// endpoint: err = %v, want invalid", err)
	}
	sub, err := app.CreateWebhook(op, controlplane.WebhookInput{URL: recv.URL(), EventTypes: []string{webhook.AllTypes}})
	if err != nil {
		t.Fatal(err)
	}
	recv.SetSecret(sub.Secret)
	runDaemon(t, app, db, controlplaned.WebhookConfig{BaseDelay: time.Hour, PollInterval: 10 * time.Millisecond, TLSConfig: recv.TLSConfig()})
	prod, err := app.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dels, err := app.WebhookDeliveries(op, sub.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(dels) == 1 && dels[0].Attempts > 0 {
			if !strings.Contains(dels[0].LastError, "127.0.0.1") || dels[0].State != webhook.Pending {
				t.Fatalf("delivery = %+v, want pending with a refusal naming 127.0.0.1", dels[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt in 30s: %+v", dels)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, _ := recv.Counts(); n != 0 {
		t.Fatalf("the receiver on 127.0.0.1 got %d requests, want 0", n)
	}
}
