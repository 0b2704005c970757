// Package groupcommit runs concurrent writes in shared batches without a
// timer: the first caller leads and commits everything queued, then hands
// the lead to the first call queued meanwhile, so the disk never idles
// while calls wait, a lone call costs one commit, and no caller serves
// batches forever. What a batch is (one transaction, its retries) is the
// caller's commit function; this package only forms the batches.
package groupcommit

import (
	"runtime"
	"sync"
)

// Group forms the batches of calls of type T. The zero value is ready.
type Group[T any] struct {
	mu      sync.Mutex
	pending []*call[T]
	running bool       // a leader is committing
	joined  []*call[T] // calls Join moved into the running batch
}

type call[T any] struct {
	v    T
	done chan bool // true: lead the next batch; false: committed
}

// Do queues v and returns once commit has run on a batch holding it (in
// this goroutine when it leads, else in the leader's). commit is called
// with the batch in arrival order and must record each call's outcome in
// the call itself.
func (g *Group[T]) Do(v T, commit func(batch []T)) {
	c := &call[T]{v: v, done: make(chan bool, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.running {
		g.mu.Unlock()
		if lead := <-c.done; !lead {
			return
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	// Let the callers already runnable (those the previous batch just
	// answered, in a closed loop) queue before the batch is taken: one
	// yield, no timer, so a lone call still commits at once.
	runtime.Gosched()
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	vs := make([]T, len(batch))
	for i, b := range batch {
		vs[i] = b.v
	}
	commit(vs)
	g.mu.Lock()
	joined := g.joined
	g.joined = nil
	if len(g.pending) > 0 {
		g.pending[0].done <- true
	} else {
		g.running = false
	}
	g.mu.Unlock()
	for _, o := range batch {
		if o != c {
			o.done <- false
		}
	}
	for _, o := range joined {
		o.done <- false
	}
}

// Join moves the calls queued since the running batch was taken that
// take accepts into that batch, in arrival order, and returns them. Only
// the leader calls it, from its commit function, which then records their
// outcomes as it does its batch's: they are answered with the batch.
//
// It lets a batch that waited before its transaction began (for a lock
// another instance holds) take the calls that queued meanwhile, rather
// than leave them for a batch of their own.
func (g *Group[T]) Join(take func(T) bool) []T {
	g.mu.Lock()
	defer g.mu.Unlock()
	var got []T
	kept := g.pending[:0]
	for _, c := range g.pending {
		if take(c.v) {
			g.joined = append(g.joined, c)
			got = append(got, c.v)
		} else {
			kept = append(kept, c)
		}
	}
	clear(g.pending[len(kept):])
	g.pending = kept
	return got
}

// Queued says how many calls wait for a batch to take them.
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
