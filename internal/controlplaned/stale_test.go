package controlplaned_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/webhooktest"
)

// TestControlPlane_MirrorStaleWebhook moves the control plane's clock past
// mirror_stale_after for a registered mirror: one mirror.stale event per
// silent period, however many rounds look, delivered signed to a real
// receiver on 127.0.0.1; a sync report starts a new period.
func TestControlPlane_MirrorStaleWebhook(t *testing.T) {
	base := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	app, db := boltApp(t, controlplane.Config{AllowPrivateWebhooks: true, MirrorStaleAfter: time.Hour}, clock)
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})

	recv := webhooktest.NewReceiver(t, "whsec_placeholder_until_subscribed")
	sub, err := app.CreateWebhook(op, controlplane.WebhookInput{URL: recv.URL(), EventTypes: []string{webhook.MirrorStale, webhook.MirrorSynced}})
	if err != nil {
		t.Fatal(err)
	}
	recv.SetSecret(sub.Secret)
	ten, err := app.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := app.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{Name: "site-a", AllowedChannels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	off, err := app.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{Name: "site-b", AllowedChannels: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.DeactivateMirror(op, off.MirrorID); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, app, db, controlplaned.WebhookConfig{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond, TLSConfig: recv.TLSConfig()})

	eventsOf := func(t *testing.T, typ string) []*catalog.AuditEvent {
		t.Helper()
		evs, _, err := app.AuditEvents(op, store.AuditFilter{EventType: typ}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	staleEvents := func(t *testing.T) []*catalog.AuditEvent { return eventsOf(t, controlplane.EventMirrorStale) }
	reportSync := func(t *testing.T, at time.Duration) {
		t.Helper()
		offset.Store(int64(at))
		cur, err := app.Mirror(op, m.MirrorID) // as the credential check loads it
		if err != nil {
			t.Fatal(err)
		}
		mctx := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: controlplane.RoleMirror, Mirror: cur})
		if _, err := app.ReportSync(mctx, controlplane.SyncReport{}); err != nil {
			t.Fatal(err)
		}
	}
	// check runs a round at +at and wants wantRecorded new mirror.stale
	// events. The daemon's housekeeping runs the same rounds on the same
	// clock, so who records an event varies: count the events, not this
	// call's Recorded flags.
	total := 0
	check := func(t *testing.T, at time.Duration, wantRecorded int) {
		t.Helper()
		offset.Store(int64(at))
		got, err := app.CheckStaleMirrors(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.MirrorID != m.MirrorID {
				t.Errorf("stale: %s, want only %s (the other is deactivated)", s.MirrorID, m.MirrorID)
			}
		}
		total += wantRecorded
		if n := len(staleEvents(t)); n != total {
			t.Errorf("at +%s: %d mirror.stale events in all, want %d (found %+v)", at, n, total, got)
		}
	}

	t.Run("silent within the limit: nothing", func(t *testing.T) {
		check(t, 30*time.Minute, 0)
		if n := len(staleEvents(t)); n != 0 {
			t.Fatalf("mirror.stale events = %d, want 0", n)
		}
	})
	t.Run("silent past the limit: one event, however many rounds", func(t *testing.T) {
		check(t, 2*time.Hour, 1)
		check(t, 3*time.Hour, 0)
		check(t, 5*time.Hour, 0)
		if n := len(staleEvents(t)); n != 1 {
			t.Fatalf("mirror.stale events = %d, want 1", n)
		}
	})
	t.Run("a sync report after the silence: mirror.synced, once", func(t *testing.T) {
		reportSync(t, 5*time.Hour)
		reportSync(t, 5*time.Hour+10*time.Minute) // not silent: nothing
		if n := len(eventsOf(t, controlplane.EventMirrorRecovered)); n != 1 {
			t.Fatalf("mirror.recovered events = %d, want 1", n)
		}
	})
	t.Run("a sync report starts a new period", func(t *testing.T) {
		check(t, 5*time.Hour+30*time.Minute, 0)
		check(t, 6*time.Hour+11*time.Minute, 1)
		check(t, 7*time.Hour, 0)
		if n := len(staleEvents(t)); n != 2 {
			t.Fatalf("mirror.stale events = %d, want 2", n)
		}
	})
	t.Run("each event delivered once, signed", func(t *testing.T) {
		reportSync(t, 8*time.Hour) // the second recovery
		evs := append(staleEvents(t), eventsOf(t, controlplane.EventMirrorRecovered)...)
		if len(evs) != 4 {
			t.Fatalf("stale and recovered events = %d, want 2 of each", len(evs))
		}
		deadline := time.After(30 * time.Second)
		for _, ev := range evs {
			for recv.Got()[ev.EventID] == 0 {
				select {
				case <-recv.Entered:
				case <-time.After(10 * time.Millisecond):
				case <-deadline:
					t.Fatalf("event %s never accepted; got %v", ev.EventID, recv.Got())
				}
			}
		}
		got := recv.Got()
		for _, ev := range evs {
			if got[ev.EventID] != 1 {
				t.Errorf("event %s accepted %d times, want 1", ev.EventID, got[ev.EventID])
			}
		}
		if len(got) != len(evs) {
			t.Errorf("receiver accepted %d events, want %d", len(got), len(evs))
		}
		if _, bad := recv.Counts(); bad != 0 {
			t.Errorf("bad signatures = %d, want 0", bad)
		}
	})
}
