package client

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/fleethttp"
)

func TestReportEvents_Batches(t *testing.T) {
	agg, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sizes []int
	h := &fleethttp.Handler{Agg: agg}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		sizes = append(sizes, int(r.ContentLength))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := New(srv.URL, WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	id := NewClientID()
	rel := catalog.NewID(catalog.PrefixRelease)
	events := make([]Event, 0, 1200)
	for range 1200 {
		events = append(events, Event{Type: EventInstallOK, ClientID: id, ReleaseID: rel, ToVersion: "1.0.0"})
	}
	events[700].ClientID = "alice@example.com" // refused alone; the rest are stored

	err = c.ReportEvents(context.Background(), events)
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("ReportEvents = %v, want a *RejectedError", err)
	}
	if got, want := len(rej.Rejected), 1; got != want || rej.Rejected[0].Index != 700 || rej.Sent != 1200 {
		t.Errorf("rejected = %+v (sent %d), want one at index 700 of 1200", rej.Rejected, rej.Sent)
	}
	if got, want := len(sizes), 3; got != want {
		t.Errorf("requests = %d, want %d (batches of %d)", got, want, MaxEventBatch)
	}
	var total int64
	for _, g := range agg.Aggregates() {
		total += g.Count
	}
	if total != 1199 {
		t.Errorf("stored %d events, want 1199", total)
	}
	t.Run("times filled", func(t *testing.T) {
		m, _ := agg.Meta(context.Background())
		if m.LastSeq != 1199 {
			t.Errorf("last seq = %d", m.LastSeq)
		}
	})
}

func TestWithCAFile_Pins(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"update_available":false,"action":"NONE"}`))
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	q := Query{Product: catalog.NewID(catalog.PrefixProduct), Version: "1.0.0", Channel: "stable", Platform: "linux", Arch: "x64"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("pinned", func(t *testing.T) {
		c, err := New(srv.URL, WithCAFile(caFile))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Check(ctx, q); err != nil {
			t.Errorf("Check with the CA pinned: %v", err)
		}
	})
	t.Run("not pinned", func(t *testing.T) {
		c, err := New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Check(ctx, q)
		if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "not signed by a trusted CA") {
			t.Errorf("Check without the CA = %v, want ErrNetwork naming the untrusted CA", err)
		}
	})
	t.Run("bad file", func(t *testing.T) {
		if _, err := New(srv.URL, WithCAFile(filepath.Join(t.TempDir(), "none.pem"))); !errors.Is(err, ErrConfig) {
			t.Errorf("New with a missing CA file = %v, want ErrConfig", err)
		}
	})
}
