package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Config configures a Dispatcher. Zero fields take the defaults named.
type Config struct {
	Store Store
	// CheckAddr vets every address dialled (after DNS, for every
	// connection): the daemon passes its private-address rule. Nil means
	// PublicOnly. Tests against 127.0.0.1 pass AllowAny or their own rule.
	CheckAddr func(netip.Addr) error
	// TLSConfig for HTTPS endpoints (nil: system roots).
	TLSConfig *tls.Config
	// AllowHTTP lets plain-http endpoints through (tests, a lab).
	AllowHTTP bool
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Lease is how long a claimed delivery is held before another
	// dispatcher (or this one after a crash) may take it (default
	// 2×Timeout + 5s; it must be longer than Timeout).
	Lease time.Duration
	// Concurrency bounds requests in flight (default 4).
	Concurrency int
	// BaseDelay and MaxDelay shape the backoff (defaults 10s, 1h).
	BaseDelay, MaxDelay time.Duration
	// MaxAttempts per delivery before it fails (default 20); Redeliver
	// requeues a failed one.
	MaxAttempts int
	// DisableAfter consecutive failed attempts to one subscription
	// disables it (default 100).
	DisableAfter int
	// PollInterval between looks at the outbox when idle (default 1s);
	// Notify wakes the dispatcher sooner.
	PollInterval time.Duration
	// Retention: delivered and failed deliveries (with their attempt log)
	// and their events are pruned this long after they were created
	// (default 30 days), checked once an hour.
	Retention time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Dispatcher delivers the outbox. Run it once per process; several
// processes over one shared store cooperate through Claim's lease.
type Dispatcher struct {
	cfg    Config
	client *http.Client
	wake   chan struct{}
}

// PublicOnly refuses loopback, private, link-local, CGNAT, unique-local
// and unspecified addresses: the default address rule.
func PublicOnly(a netip.Addr) error {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("fc00::/7").Contains(a) {
		return fmt.Errorf("%s is not a public address", a)
	}
	return nil
}

// AllowAny accepts every address (tests against a receiver on loopback).
func AllowAny(netip.Addr) error { return nil }

// NewDispatcher checks cfg and builds the HTTP client.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("new webhook dispatcher: no store")
	}
	if cfg.CheckAddr == nil {
		cfg.CheckAddr = PublicOnly
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, 10*time.Second)
	def(&cfg.Lease, 2*cfg.Timeout+5*time.Second)
	def(&cfg.BaseDelay, 10*time.Second)
	def(&cfg.MaxDelay, time.Hour)
	def(&cfg.PollInterval, time.Second)
	def(&cfg.Retention, 30*24*time.Hour)
	if cfg.Lease <= cfg.Timeout {
		// A request still in flight when its claim lapses would be sent
		// again by this very dispatcher.
		return nil, fmt.Errorf("new webhook dispatcher: lease %s must be longer than the request timeout %s", cfg.Lease, cfg.Timeout)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	check := cfg.CheckAddr
	dialer := &net.Dialer{Timeout: cfg.Timeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("webhook: unexpected address %q", address)
		}
		if err := check(ap.Addr()); err != nil {
			return fmt.Errorf("webhook destination refused: %w", err)
		}
		return nil
	}}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // the address rule must see the real destination
		TLSClientConfig:       cfg.TLSConfig,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is a failed delivery, never followed
	}}
	return &Dispatcher{cfg: cfg, client: client, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes Run to look at the outbox now (call it after Enqueue).
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Backoff is the delay before attempt n+1 after n failed attempts:
// base·2^(n-1) capped at max, scaled by jitter in [0.5, 1) ("equal
// jitter"), so retries of many deliveries spread out.
func Backoff(n int, base, max time.Duration, jitter float64) time.Duration {
	d := max
	if n < 1 {
		n = 1
	}
	if n <= 62 {
		if e := base << (n - 1); e > 0 && e < max && e>>(n-1) == base {
			d = e
		}
	}
	return time.Duration(float64(d) * (0.5 + jitter/2))
}

// Run delivers until ctx ends, then waits for requests in flight. A
// request cut short by ctx is not recorded: its claim lapses and it is
// delivered again (at least once).
func (d *Dispatcher) Run(ctx context.Context) error {
	sem := make(chan struct{}, d.cfg.Concurrency)
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var pruned time.Time
	for {
		if now := d.cfg.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			if n, err := d.cfg.Store.Prune(ctx, now.Add(-d.cfg.Retention)); err != nil && ctx.Err() == nil {
				d.cfg.Logger.Error("webhook outbox prune", "err", err)
			} else if n > 0 {
				d.cfg.Logger.Info("webhook outbox pruned", "deliveries", n)
			}
		}
		if err := d.round(ctx, sem, done, &wg); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Error("webhook outbox", "err", err)
		}
		timer.Reset(d.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-done: // a slot freed: more may be due
		case <-timer.C:
		}
	}
}

// round expands new events and claims as many due deliveries as there are
// free slots, each delivered in its own goroutine.
func (d *Dispatcher) round(ctx context.Context, sem, done chan struct{}, wg *sync.WaitGroup) error {
	now := d.cfg.Now()
	// Expand in transactions of 256 events, a bounded number per round so
	// a burst of events does not starve deliveries.
	for range 16 {
		n, err := d.cfg.Store.Expand(ctx, now, 256, Matches)
		if err != nil {
			return fmt.Errorf("expand: %w", err)
		}
		if n < 256 {
			break
		}
	}
	free := cap(sem) - len(sem)
	if free == 0 {
		return nil
	}
	claimed, err := d.cfg.Store.Claim(ctx, now, now.Add(d.cfg.Lease), free)
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	for _, c := range claimed {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() {
				<-sem
				wg.Done()
				select {
				case done <- struct{}{}:
				default:
				}
			}()
			d.deliver(ctx, c)
		}()
	}
	return nil
}

// deliver makes one attempt and records it.
func (d *Dispatcher) deliver(ctx context.Context, c Claimed) {
	del, sub, ev := c.Delivery, c.Subscription, c.Event
	attempt := del.Attempts + 1
	a := Attempt{DeliveryID: del.ID, At: d.cfg.Now().UTC()}
	status, err := d.post(ctx, &sub, &ev, attempt)
	a.Duration = d.cfg.Now().Sub(a.At)
	if ctx.Err() != nil && err != nil {
		return // shutting down: leave the claim to lapse
	}
	a.Status = status
	del.Attempts = attempt
	del.LastStatus = status
	ok := err == nil
	now := d.cfg.Now().UTC()
	switch {
	case ok:
		del.State, del.LastError, del.DeliveredAt = Delivered, "", now
	case attempt >= d.cfg.MaxAttempts:
		a.Error = err.Error()
		del.State, del.LastError = Failed, fmt.Sprintf("gave up after %d attempts: %v", attempt, err)
	default:
		a.Error = err.Error()
		del.LastError = err.Error()
		del.NextAttempt = now.Add(Backoff(attempt, d.cfg.BaseDelay, d.cfg.MaxDelay, rand.Float64()))
	}
	disableAfter := d.cfg.DisableAfter
	update := func(s *Subscription) {
		if ok {
			s.FailureStreak = 0
			return
		}
		s.FailureStreak++
		if s.FailureStreak >= disableAfter && !s.Disabled {
			s.Disabled = true
			s.DisabledReason = fmt.Sprintf("disabled after %d consecutive failed deliveries (last: %v)", s.FailureStreak, err)
		}
	}
	// Record even if ctx ended after the answer came: fewer duplicates.
	if rerr := d.cfg.Store.Record(context.WithoutCancel(ctx), del, c.Delivery.NextAttempt, a, update); rerr != nil {
		d.cfg.Logger.Error("webhook record attempt", "delivery", del.ID, "err", rerr)
		return
	}
	if !ok {
		d.cfg.Logger.Warn("webhook delivery failed", "delivery", del.ID, "url", sub.URL, "attempt", attempt, "status", status, "err", err)
	}
}

// post sends ev to sub; err is nil only for a 2xx answer.
func (d *Dispatcher) post(ctx context.Context, sub *Subscription, ev *Event, attempt int) (int, error) {
	if err := ValidateURL(sub.URL, d.cfg.AllowHTTP); err != nil {
		return 0, err
	}
	body, err := ev.Body()
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Outpost-Webhook/1")
	req.Header.Set(EventIDHeader, ev.ID)
	req.Header.Set(EventTypeHeader, ev.Type)
	req.Header.Set(AttemptHeader, strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(sub.Secret, d.cfg.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, clipN(string(bytes.TrimSpace(snippet)), 200))
	}
	return resp.StatusCode, nil
}

// Redeliver requeues a delivery now (whatever its state) and wakes Run.
func (d *Dispatcher) Redeliver(ctx context.Context, id string) error {
	if err := d.cfg.Store.Redeliver(ctx, id, d.cfg.Now()); err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	d.Notify()
	return nil
}
