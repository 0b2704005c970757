package controlplaned_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/postgres"
)

// scrape reads in's /metrics into name -> value (unlabelled samples).
func scrape(t *testing.T, in *instance) map[string]float64 {
	t.Helper()
	resp, err := httpClient().Get(in.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetrics_StoreWrites: a control plane on PostgreSQL exports its
// store's write counters (transactions, time in them, shared retries),
// and they move with writes; on bbolt, which keeps none, they are absent.
func TestMetrics_StoreWrites(t *testing.T) {
	names := []string{
		"outpost_controlplane_store_write_transactions_total",
		"outpost_controlplane_store_write_seconds_total",
		"outpost_controlplane_store_shared_retries_total",
	}
	ctx := context.Background()
	t.Run("postgres", func(t *testing.T) {
		url, schema := pgSchema(t)
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		in := serveInstance(t, db, t.TempDir(), nil, "", controlplaned.Config{})
		before := scrape(t, in)
		for _, n := range names {
			if _, ok := before[n]; !ok {
				t.Fatalf("/metrics has no %s", n)
			}
		}
		for i := range 3 {
			if _, err := in.as(in.admin).CreateTenant(ctx, controlplane.TenantInput{Name: "acme-" + strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
		after := scrape(t, in)
		if got, was := after[names[0]], before[names[0]]; got < was+3 {
			t.Errorf("%s = %v after 3 tenants, was %v: want at least 3 more", names[0], got, was)
		}
		if got, was := after[names[1]], before[names[1]]; got <= was {
			t.Errorf("%s = %v after 3 tenants, was %v: want more", names[1], got, was)
		}
	})
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		var st store.Store = boltStore(t, dir)
		got := scrape(t, serveInstance(t, st, dir, nil, "", controlplaned.Config{}))
		for _, n := range names {
			if _, ok := got[n]; ok {
				t.Errorf("/metrics has %s on bbolt, which keeps no such counter", n)
			}
		}
		if _, ok := got["go_goroutines"]; !ok {
			t.Fatal("/metrics has no go_goroutines: the scrape found nothing")
		}
	})
}
