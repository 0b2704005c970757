package httpapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/httpapi"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/wire"
)

// heldStore holds every snapshot build once committed until release is
// closed, telling building when one waits.
type heldStore struct {
	store.Store
	building chan struct{}
	release  chan struct{}
}

func (s *heldStore) CreateSnapshot(ctx context.Context, tenantID string, build func(in *catalog.SnapshotInput) (*catalog.Snapshot, error)) (*catalog.Snapshot, error) {
	snap, err := s.Store.CreateSnapshot(ctx, tenantID, build)
	s.building <- struct{}{}
	<-s.release
	return snap, err
}

// TestAPI_BusyIs503 drives the cap on expensive operations through the
// route table: with one slot taken by a build, another tenant's build is
// 503 unavailable with Retry-After, and the typed client decodes both.
func TestAPI_BusyIs503(t *testing.T) {
	held := &heldStore{building: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarness(t, func(o *controlplane.Options) {
		held.Store = o.Store
		o.Store = held
		o.Config.MaxExpensive = 1
		o.Config.RetryAfter = 5 * time.Second
	})
	one, two := h.tenant("one"), h.tenant("two")
	first := make(chan error, 1)
	go func() {
		_, err := h.app.BuildSnapshot(controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"}), one)
		first <- err
	}()
	<-held.building
	defer func() {
		close(held.release)
		if err := <-first; err != nil {
			t.Error(err)
		}
	}()

	t.Run("raw answer", func(t *testing.T) {
		r := h.do("POST", "/v1/tenants/"+two+"/snapshots", h.admin, nil)
		if r.status != 503 || r.errCode(t) != catalog.EUNAVAILABLE {
			t.Fatalf("status %d code %q, want 503 unavailable: %s", r.status, r.errCode(t), r.body)
		}
		if got := r.header.Get(wire.HeaderRetryAfter); got != "5" {
			t.Errorf("Retry-After = %q, want 5", got)
		}
	})
	t.Run("typed client", func(t *testing.T) {
		c := &httpapi.Client{BaseURL: h.ts.URL, Token: h.admin}
		_, err := c.BuildSnapshot(context.Background(), two)
		var we *wire.Error
		if !errors.As(err, &we) {
			t.Fatalf("err = %v, want a *wire.Error", err)
		}
		if catalog.ErrorCode(err) != catalog.EUNAVAILABLE || we.RetryAfter != 5*time.Second {
			t.Errorf("code %q retry after %v, want unavailable 5s", catalog.ErrorCode(err), we.RetryAfter)
		}
	})
}
