package daemon

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGroup_FirstFailureStopsAll(t *testing.T) {
	g := NewGroup(context.Background())
	stopped := make(chan struct{})
	g.Go("waiter", func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	})
	g.Go("failer", func(ctx context.Context) error { return errors.New("boom") })
	err := g.Wait()
	if err == nil || err.Error() != "failer: boom" {
		t.Fatalf("Wait = %v, want failer: boom", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Wait returned before the waiter was joined")
	}
}

func TestGroup_StopIsNotAFailure(t *testing.T) {
	g := NewGroup(context.Background())
	for range 3 {
		g.Go("part", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	}
	g.Stop()
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait = %v, want nil", err)
	}
}

func TestSignalContext_StopReleases(t *testing.T) {
	ctx, stop := SignalContext(context.Background(), "test", nil)
	stop()
	stop() // twice is fine
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		t.Fatal("context not cancelled by stop")
	}
}
