package sync_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

// The control plane can change a mirror's allowed channels while the
// tenant's snapshot stays the same. The held snapshot must follow at the
// next sync: a channel taken away stops being served, one added is
// downloaded and served, without waiting for a newer snapshot.
func TestSyncer_AllowedChannelsChangeWithoutNewSnapshot(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	stable := synctest.Art{ID: "art_s", Data: synctest.Random(1000)}
	beta := synctest.Art{ID: "art_b", Channel: "beta", Data: synctest.Random(2000)}
	r.cp.SetChannels([]string{"beta", "stable"})
	r.publish(t, 1, []synctest.Art{stable, beta})
	commits := 0
	src, err := sync.NewControlPlane(r.cp.URL, r.cp.Credential, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.s = sync.New(src, r.st, r.cache, sync.Config{TUF: r.trust(), OnCommit: func() { commits++ }})
	if _, err := r.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		h, err := r.st.Current()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range state.Needed(h.Manifest, h.Channels) {
			ids = append(ids, a.ArtifactID)
		}
		return fmt.Sprint(h.Channels, ids)
	}
	tests := []struct {
		name     string
		channels []string
		want     string
	}{
		{"beta taken away", []string{"stable"}, "[stable] [art_s]"},
		{"beta given back", []string{"beta", "stable"}, "[beta stable] [art_b art_s]"},
		{"unchanged", []string{"beta", "stable"}, "[beta stable] [art_b art_s]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := commits
			r.cp.SetChannels(tt.channels)
			res, err := r.s.Once(ctx)
			if err != nil {
				t.Fatalf("Once: %v", err)
			}
			if got := served(); got != tt.want {
				t.Errorf("served = %s, want %s", got, tt.want)
			}
			if res.Sequence != 1 {
				t.Errorf("version = %d, want 1", res.Sequence)
			}
			if tt.name != "unchanged" && commits != before+1 {
				t.Errorf("OnCommit calls = %d, want %d (the server must reload)", commits-before, 1)
			}
			if tt.name == "unchanged" && commits != before {
				t.Errorf("OnCommit called with nothing changed")
			}
		})
	}
	if !r.cache.Has(synctest.SHA(beta.Data), int64(len(beta.Data))) {
		t.Errorf("beta artifact not cached after beta was given back")
	}
}

// A source that accepts the timestamp request and then never answers must
// not hold the sync (and with it GC and bundle imports, which wait for
// the same lock) forever: each attempt is bounded like an artifact
// download that stalls.
func TestSyncer_SnapshotRequestHangs(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{"timestamp", "/v1/mirror/tuf/metadata/timestamp.json"},
		{"mirror record", "/v1/mirror/self"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			r := newRig(t)
			tenant := r.v.TenantID
			hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tt.path {
					select {
					case <-release:
					case <-r.Context().Done():
					}
					return
				}
				if r.URL.Path == "/v1/mirror/self" {
					w.Write([]byte(`{"tenant_id":"` + tenant + `","allowed_channels":["stable"]}`))
					return
				}
				http.NotFound(w, r)
			}))
			defer hang.Close()
			defer close(release)
			src, err := sync.NewControlPlane(hang.URL, "mc", nil)
			if err != nil {
				t.Fatal(err)
			}
			s := sync.New(src, r.st, r.cache, sync.Config{
				TUF: r.trust(), RequestTimeout: 100 * time.Millisecond,
				InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxElapsed: 300 * time.Millisecond,
			})
			done := make(chan error, 1)
			go func() { _, err := s.Once(context.Background()); done <- err }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("Once = nil, want an error")
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Once still waiting on a hung %s request after 10s", tt.name)
			}
		})
	}
}
