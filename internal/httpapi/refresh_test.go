package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/controlplane"
)

func TestServer_RefreshSnapshots(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, func(o *controlplane.Options) {
		o.Now = func() time.Time { return now }
		o.Config.SnapshotTTL = 30 * 24 * time.Hour
	})
	live := h.tenant("live")
	h.tenant("not yet published")
	suspended := h.tenant("suspended")
	h.snapshot(live)
	h.snapshot(suspended)
	h.must(200, h.do("PATCH", "/v1/tenants/"+suspended, h.admin, map[string]any{"status": "suspended"}))
	ctx := context.Background()

	seq := func(tenant string) float64 {
		items := h.must(200, h.do("GET", "/v1/tenants/"+tenant+"/snapshots?limit=100", h.admin, nil))["items"].([]any)
		return items[len(items)-1].(map[string]any)["sequence"].(float64)
	}
	cases := []struct {
		name    string
		advance time.Duration
		want    int
		seq     float64
	}{
		{"fresh snapshot is kept", 24 * time.Hour, 0, 1},
		{"expiring within the window is rebuilt", 20 * 24 * time.Hour, 1, 2},
		{"the new one is fresh again", 24 * time.Hour, 0, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = now.Add(c.advance)
			n, err := h.app.RefreshSnapshots(ctx, 15*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if n != c.want || seq(live) != c.seq {
				t.Fatalf("built %d (sequence %v), want %d (sequence %v)", n, seq(live), c.want, c.seq)
			}
		})
	}
	if got := seq(suspended); got != 1 {
		t.Fatalf("suspended tenant got snapshot %v", got)
	}
}
