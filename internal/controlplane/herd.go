package controlplane

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// No thundering herds (docs/architecture.md, "Expensive work"): the
// expensive operations (snapshot builds, tenant view assembly, bundle
// planning) run under a gate of Config.MaxExpensive slots. Concurrent
// requests for the same tenant view share one assembly (singleflight in
// view.go), and a build requested while one of the same tenant runs joins
// the one follow-up build queued behind it. Beyond the gate an API request
// is answered 503 unavailable with Retry-After, rather than queued: work
// piled up behind a saturated gate only makes every answer late and the
// process big.

// DefaultRetryAfter is what a busy answer tells the client to wait.
const DefaultRetryAfter = 2 * time.Second

// BusyError is the answer beyond the cap on expensive operations: code
// unavailable (503) with a Retry-After (wire.WriteError sets the header).
type BusyError struct {
	Err   *catalog.Error
	After time.Duration
}

func (e *BusyError) Error() string { return e.Err.Error() }

// RetryAfter is how long the client should wait before trying again.
func (e *BusyError) RetryAfter() time.Duration { return e.After }

// Unwrap gives the domain error, so catalog.ErrorCode sees unavailable.
func (e *BusyError) Unwrap() error { return e.Err }

func busy(what string, after time.Duration) *BusyError {
	return &BusyError{
		Err:   catalog.Errorf(catalog.EUNAVAILABLE, "the control plane is busy with other %s: try again shortly", what),
		After: after,
	}
}

// gate caps concurrent expensive operations.
type gate struct {
	slots chan struct{}
}

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// try takes a slot if one is free.
func (g *gate) try() bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// wait takes a slot, waiting for one (housekeeping and accepted
// follow-up builds: work already promised to someone).
func (g *gate) wait(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() { <-g.slots }

// Stats count the expensive work the App did since it started: what the
// coalescing tests assert on and the metrics show.
type Stats struct {
	ViewAssemblies int64 // tenant views decoded and indexed
	SnapshotLoads  int64 // latest envelopes read from the store for sharing
	Builds         int64 // snapshot builds run (not requested)
	BuildsJoined   int64 // build requests that joined a queued follow-up
	Busy           int64 // requests answered busy (503) at the gate
	InFlight       int   // gate slots held now
}

type counters struct {
	views, loads, builds, joined, busy atomic.Int64
}

// Stats returns the App's counters.
func (a *App) Stats() Stats {
	return Stats{
		ViewAssemblies: a.count.views.Load(), SnapshotLoads: a.count.loads.Load(),
		Builds: a.count.builds.Load(), BuildsJoined: a.count.joined.Load(), Busy: a.count.busy.Load(), InFlight: len(a.gate.slots),
	}
}

// enter takes a gate slot for an expensive operation: at once or busy
// when wait is false, else waiting for one. The caller calls the
// returned release.
func (a *App) enter(ctx context.Context, what string, wait bool) (func(), error) {
	if wait {
		if err := a.gate.wait(ctx); err != nil {
			return nil, err
		}
		return a.gate.release, nil
	}
	if !a.gate.try() {
		a.count.busy.Add(1)
		return nil, busy(what, a.cfg.RetryAfter)
	}
	return a.gate.release, nil
}

func defaultMaxExpensive() int { return max(2, runtime.GOMAXPROCS(0)) }

// buildCall is one snapshot build, awaited by every request it serves.
type buildCall struct {
	ctx  context.Context // a follow-up's: the first joiner's, detached from its cancellation
	done chan struct{}
	snap *catalog.Snapshot
	err  error
}

// tenantBuilds is a tenant's running build and the one follow-up queued
// behind it.
type tenantBuilds struct {
	running, next *buildCall
}

// buildQueue coalesces snapshot builds per tenant. A request while no
// build runs starts one. A request while one runs joins the follow-up
// build (queued once, started when the running one ends): the running
// build may have gathered its input before the caller's last write, so
// joining it could lose that write; the follow-up gathers after.
type buildQueue struct {
	mu sync.Mutex
	m  map[string]*tenantBuilds
}

// join returns the call serving a request now, and whether the caller
// must run it (it is the running build) rather than wait for it.
func (q *buildQueue) join(ctx context.Context, tenantID string) (c *buildCall, run bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]*tenantBuilds{}
	}
	tb := q.m[tenantID]
	if tb == nil {
		tb = &tenantBuilds{}
		q.m[tenantID] = tb
	}
	if tb.running == nil {
		tb.running = &buildCall{done: make(chan struct{})}
		return tb.running, true
	}
	if tb.next == nil {
		tb.next = &buildCall{ctx: context.WithoutCancel(ctx), done: make(chan struct{})}
	}
	return tb.next, false
}

// finish ends the running build of the tenant and returns the follow-up
// to start, if one was queued (it becomes the running one).
func (q *buildQueue) finish(tenantID string) *buildCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	tb := q.m[tenantID]
	tb.running, tb.next = tb.next, nil
	if tb.running == nil {
		delete(q.m, tenantID)
	}
	return tb.running
}

// build runs or joins a snapshot build of the tenant (see buildQueue).
// An API request (wait false) beyond the gate is busy; housekeeping waits
// for a slot.
func (a *App) build(ctx context.Context, tenantID string, wait bool) (*catalog.Snapshot, error) {
	c, run := a.builds.join(ctx, tenantID)
	if run {
		a.runBuild(ctx, tenantID, c, wait)
	} else {
		a.count.joined.Add(1)
	}
	select {
	case <-c.done:
		return c.snap, c.err
	case <-ctx.Done():
		return nil, ctx.Err() // the build goes on for the others
	}
}

// runBuild runs c, then starts the follow-up queued behind it, if any,
// in the background: its callers are waiting for it.
func (a *App) runBuild(ctx context.Context, tenantID string, c *buildCall, wait bool) {
	release, err := a.enter(ctx, "snapshot builds", wait)
	if err == nil {
		a.count.builds.Add(1)
		c.snap, c.err = a.doBuild(ctx, tenantID)
		release()
	} else {
		c.err = err
	}
	close(c.done)
	if next := a.builds.finish(tenantID); next != nil {
		a.bg.Go(func() { a.runBuild(next.ctx, tenantID, next, true) })
	}
}

// Drain waits for the background work the App started (follow-up
// builds whose callers left): call it before closing the store.
func (a *App) Drain() { a.bg.Wait() }
