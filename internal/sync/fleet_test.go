package sync_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/sync"
)

// TestSyncer_UploadReport ships the fleet return file to a control plane
// that verifies it and acknowledges its through: the cursor moves, and
// the next report carries only what came after.
func TestSyncer_UploadReport(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	mid, rel := catalog.NewID(catalog.PrefixMirror), catalog.NewID(catalog.PrefixRelease)
	agg, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ingest := func(n int) {
		t.Helper()
		evs := make([]fleet.Event, n)
		for i := range evs {
			evs[i] = fleet.Event{Type: fleet.TypeInstallOK, ClientID: fmt.Sprintf("client-%04d", i), ReleaseID: rel, ToVersion: "1.1.0", Time: time.Now().UTC()}
		}
		if _, _, err := agg.Ingest(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	var mu gosync.Mutex
	var got []fleet.ReportSummary
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/mirror/reports" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		sum, err := fleet.VerifyReport(r.Body, pub, fleet.ReadOptions{MirrorID: mid})
		if err != nil {
			http.Error(w, `{"error":{"code":"invalid","message":"`+err.Error()+`"}}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, sum)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"through": sum.Trailer.Through, "events_added": sum.Events})
	}))
	t.Cleanup(srv.Close)
	src, err := sync.NewControlPlane(srv.URL, "cred", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, c := openMirror(t)
	s := sync.New(src, st, c, sync.Config{
		FleetReport: func(ctx context.Context, w io.Writer) error {
			_, err := agg.ExportReport(ctx, w, fleet.ExportIdentity{MirrorID: mid, Key: key}, time.Now().UTC())
			return err
		},
		FleetAck: agg.Ack,
	})

	ingest(5)
	ack, err := s.UploadReport(context.Background())
	if err != nil || ack.Through != 5 || ack.EventsAdded != 5 {
		t.Fatalf("first upload = %+v, %v; want through 5, 5 events", ack, err)
	}
	if m, _ := agg.Meta(context.Background()); m.Acked != 5 {
		t.Fatalf("acked = %d after the answer, want 5", m.Acked)
	}
	ingest(3)
	ack, err = s.UploadReport(context.Background())
	if err != nil || ack.Through != 8 {
		t.Fatalf("second upload = %+v, %v; want through 8", ack, err)
	}
	if g := got[1]; g.Header.Since != 5 || g.Events != 3 {
		t.Fatalf("second report since %d with %d events, want since 5 with 3", g.Header.Since, g.Events)
	}

	t.Run("a refused report leaves the cursor", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		bad := sync.New(src, st, c, sync.Config{
			FleetReport: func(ctx context.Context, w io.Writer) error {
				_, err := agg.ExportReport(ctx, w, fleet.ExportIdentity{MirrorID: mid, Key: other}, time.Now().UTC())
				return err
			},
			FleetAck: agg.Ack,
		})
		ingest(1)
		if _, err := bad.UploadReport(context.Background()); err == nil {
			t.Fatal("upload signed with another key succeeded")
		}
		if m, _ := agg.Meta(context.Background()); m.Acked != 8 {
			t.Fatalf("acked = %d after a refusal, want 8", m.Acked)
		}
	})
	t.Run("no report configured", func(t *testing.T) {
		if _, err := sync.New(src, st, c, sync.Config{}).UploadReport(context.Background()); err == nil {
			t.Fatal("upload without FleetReport succeeded")
		}
	})
}
