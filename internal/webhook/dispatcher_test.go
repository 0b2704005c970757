package webhook_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/webhooktest"
)

// waitFor polls cond until it holds; the deadline only guards against a
// hang, it asserts nothing about speed.
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

type rig struct {
	store *webhook.MemStore
	recv  *webhooktest.Receiver
	sub   webhook.Subscription
	disp  *webhook.Dispatcher
}

func newRig(t *testing.T, mod func(c *webhook.Config)) *rig {
	t.Helper()
	r := &rig{store: webhook.NewMemStore()}
	sub, err := webhook.NewSubscription("https://placeholder.invalid/", []string{"*"}, "", false, t0)
	if err != nil {
		t.Fatal(err)
	}
	r.recv = webhooktest.NewReceiver(t, sub.Secret)
	sub.URL = r.recv.URL()
	r.sub = sub
	if err := r.store.PutSubscription(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	cfg := webhook.Config{Store: r.store, CheckAddr: webhook.AllowAny, TLSConfig: r.recv.TLSConfig(), Timeout: 5 * time.Second,
		BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond, Concurrency: 3}
	if mod != nil {
		mod(&cfg)
	}
	r.disp, err = webhook.NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts the dispatcher; the returned func stops it and waits.
func (r *rig) run(t *testing.T) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.disp.Run(ctx) }()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func (r *rig) enqueue(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		ev, err := webhook.NewEvent(webhook.ReleasePublished, "", map[string]int{"n": i}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.store.Enqueue(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	r.disp.Notify()
	return ids
}

func (r *rig) states(t *testing.T) map[webhook.State]int {
	ds, err := r.store.Deliveries(context.Background(), r.sub.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[webhook.State]int{}
	for _, d := range ds {
		out[d.State]++
	}
	return out
}

func TestDispatcher_SignatureVerifies(t *testing.T) {
	r := newRig(t, nil)
	r.run(t)
	ids := r.enqueue(t, 1)
	waitFor(t, "the delivery", func() bool { return r.recv.Got()[ids[0]] > 0 })
	if _, bad := r.recv.Counts(); bad != 0 {
		t.Errorf("receiver saw %d bad signatures", bad)
	}
	waitFor(t, "the delivery to be recorded", func() bool { return r.states(t)[webhook.Delivered] == 1 })
	as, _ := r.store.Attempts(context.Background(), webhook.DeliveryID(ids[0], r.sub.ID))
	if len(as) != 1 || as[0].Status != 204 || as[0].Error != "" || as[0].N != 1 {
		t.Errorf("attempt log = %+v, want one attempt with status 204", as)
	}
}

func TestDispatcher_FailingReceiverGetsEverything(t *testing.T) {
	r := newRig(t, nil)
	r.recv.FailNext(7)
	r.run(t)
	ids := r.enqueue(t, 20)
	waitFor(t, "the outbox to drain", func() bool { return r.states(t)[webhook.Delivered] == len(ids) })
	got := r.recv.Got()
	for _, id := range ids {
		if got[id] == 0 {
			t.Errorf("event %s never accepted", id)
		}
	}
	failed := 0
	for _, id := range ids {
		as, _ := r.store.Attempts(context.Background(), webhook.DeliveryID(id, r.sub.ID))
		for _, a := range as {
			if a.Status == 500 {
				failed++
				if !strings.Contains(a.Error, "failing on purpose") {
					t.Errorf("failed attempt error = %q, want the receiver's answer", a.Error)
				}
			}
		}
	}
	if failed != 7 {
		t.Errorf("logged %d failed attempts, want 7", failed)
	}
	if s, _ := r.store.Subscription(context.Background(), r.sub.ID); s.FailureStreak != 0 || s.Disabled {
		t.Errorf("subscription after recovery = streak %d, disabled %v; want 0, false", s.FailureStreak, s.Disabled)
	}
}

func TestDispatcher_DisablesAfterStreak(t *testing.T) {
	r := newRig(t, func(c *webhook.Config) { c.DisableAfter = 3 })
	r.recv.FailNext(1 << 30)
	r.run(t)
	ids := r.enqueue(t, 2)
	waitFor(t, "the subscription to be disabled", func() bool {
		s, _ := r.store.Subscription(context.Background(), r.sub.ID)
		return s.Disabled
	})
	s, _ := r.store.Subscription(context.Background(), r.sub.ID)
	if s.FailureStreak < 3 || !strings.Contains(s.DisabledReason, "consecutive failed deliveries") {
		t.Errorf("disabled subscription = streak %d, reason %q", s.FailureStreak, s.DisabledReason)
	}
	if st := r.states(t); st[webhook.Pending] != 2 {
		t.Errorf("states = %v, want both deliveries kept pending", st)
	}
	// Re-enabled with a working receiver, the kept deliveries go out.
	r.recv.FailNext(0)
	s.Disabled, s.DisabledReason, s.FailureStreak = false, "", 0
	if err := r.store.PutSubscription(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the kept deliveries", func() bool { return r.states(t)[webhook.Delivered] == 2 })
	for _, id := range ids {
		if r.recv.Got()[id] == 0 {
			t.Errorf("event %s not accepted after re-enabling", id)
		}
	}
}

func TestDispatcher_GivesUpThenRedelivers(t *testing.T) {
	r := newRig(t, func(c *webhook.Config) { c.MaxAttempts = 2 })
	r.recv.FailNext(2)
	r.run(t)
	ids := r.enqueue(t, 1)
	id := webhook.DeliveryID(ids[0], r.sub.ID)
	waitFor(t, "the delivery to fail", func() bool { return r.states(t)[webhook.Failed] == 1 })
	d, _ := r.store.Delivery(context.Background(), id)
	if !strings.Contains(d.LastError, "gave up after 2 attempts") {
		t.Errorf("LastError = %q", d.LastError)
	}
	if err := r.disp.Redeliver(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redelivery", func() bool { return r.states(t)[webhook.Delivered] == 1 })
	as, _ := r.store.Attempts(context.Background(), id)
	if len(as) != 3 || as[2].N != 3 || as[2].Status != 204 {
		t.Errorf("attempt log = %+v, want 2 failures then a success numbered 3", as)
	}
}

func TestDispatcher_RefusesPrivateDestinations(t *testing.T) {
	var checked []netip.Addr
	var mu sync.Mutex
	rule := func(a netip.Addr) error {
		mu.Lock()
		checked = append(checked, a)
		mu.Unlock()
		return webhook.PublicOnly(a)
	}
	r := newRig(t, func(c *webhook.Config) { c.CheckAddr = rule; c.MaxAttempts = 1 })
	r.run(t)
	ids := r.enqueue(t, 1)
	waitFor(t, "the refused delivery", func() bool { return r.states(t)[webhook.Failed] == 1 })
	as, _ := r.store.Attempts(context.Background(), webhook.DeliveryID(ids[0], r.sub.ID))
	if len(as) != 1 || !strings.Contains(as[0].Error, "127.0.0.1 is not a public address") {
		t.Errorf("attempt log = %+v, want a refusal naming 127.0.0.1", as)
	}
	if n, _ := r.recv.Counts(); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(checked) == 0 || checked[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the rule saw %v, want the dialled address 127.0.0.1", checked)
	}
}

func TestPublicOnly_Addresses(t *testing.T) {
	for addr, public := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "192.168.1.1": false, "172.16.0.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fd00::1": false, "fe80::1": false, "::ffff:127.0.0.1": false,
		"93.184.215.14": true, "2606:4700::1111": true,
	} {
		if got := webhook.PublicOnly(netip.MustParseAddr(addr)) == nil; got != public {
			t.Errorf("PublicOnly(%s) allowed = %v, want %v", addr, got, public)
		}
	}
}

func TestNewDispatcher_Config(t *testing.T) {
	for name, cfg := range map[string]webhook.Config{
		"no store":            {},
		"lease below timeout": {Store: webhook.NewMemStore(), Timeout: time.Second, Lease: time.Second},
	} {
		if _, err := webhook.NewDispatcher(cfg); err == nil {
			t.Errorf("%s: NewDispatcher = nil error", name)
		}
	}
	if _, err := webhook.NewDispatcher(webhook.Config{Store: webhook.NewMemStore()}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestDispatcher_BoundsConcurrency(t *testing.T) {
	r := newRig(t, func(c *webhook.Config) { c.Concurrency = 3 })
	r.recv.Block()
	r.run(t)
	ids := r.enqueue(t, 12)
	for i := 0; i < 3; i++ {
		<-r.recv.Entered
	}
	r.recv.Release() // the three blocked requests fail with 503 and are retried
	waitFor(t, "the outbox to drain", func() bool { return r.states(t)[webhook.Delivered] == len(ids) })
	if p := r.recv.Peak(); p > 3 {
		t.Errorf("peak requests in flight = %d, want at most 3", p)
	}
}
