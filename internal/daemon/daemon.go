// Package daemon holds the one lifetime convention of Outpost's
// long-running commands: how signals stop them and which exit codes they
// use, and a Group that runs a daemon's parts and joins every one of them
// before the daemon's state is closed.
//
// Signals: the first SIGINT or SIGTERM cancels the run context, and the
// daemon shuts down gracefully within its deadline; a second one exits at
// once with ExitInterrupted.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Exit codes shared by every Outpost binary.
const (
	ExitOK          = 0
	ExitFailure     = 1   // the command failed; the message says why
	ExitUsage       = 2   // the command line was wrong
	ExitInterrupted = 130 // a second signal cut the graceful shutdown short
)

// exit is os.Exit, replaced in tests.
var exit = os.Exit

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM.
// A second signal prints a line to stderr naming the program and exits with
// ExitInterrupted. stop releases the signal handler.
func SignalContext(parent context.Context, name string, stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			cancel()
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintf(stderr, "%s: second signal, exiting now\n", name)
			exit(ExitInterrupted)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}

// Group runs the parts of a daemon (HTTP server, syncer, inbox watcher,
// housekeeping) under one context. The first part to fail cancels the
// others; Wait joins every part. It is errgroup with the rule that a part
// returning context.Canceled after the group was cancelled is not a failure.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

// NewGroup returns a Group whose parts run under a child of ctx.
func NewGroup(ctx context.Context) *Group {
	ctx, cancel := context.WithCancel(ctx)
	return &Group{ctx: ctx, cancel: cancel}
}

// Context is the context the parts run under; it is cancelled when the
// group stops.
func (g *Group) Context() context.Context { return g.ctx }

// Go starts a named part.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := fn(g.ctx)
		if err == nil || (errors.Is(err, context.Canceled) && g.ctx.Err() != nil) {
			return
		}
		g.mu.Lock()
		if g.err == nil {
			g.err = fmt.Errorf("%s: %w", name, err)
		}
		g.mu.Unlock()
		g.cancel()
	}()
}

// Stop cancels every part.
func (g *Group) Stop() { g.cancel() }

// Wait joins every part and returns the first failure.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
