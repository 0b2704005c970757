package kvsink_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/boltstore"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/store/kv"
)

// TestAirGap_ReportHaltsRollout composes the pieces the way the daemons
// will: clients' events into a mirror's aggregator on bbolt, a return
// file written atomically and carried as a file, imported into the
// vendor's sink, the gate evaluated on what came back (with its age), and
// the acknowledgement carried back so the next file holds only new events.
func TestAirGap_ReportHaltsRollout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	const (
		mir = "mir_01jdk0000000000000000000aa"
		rel = "rel_01jdk0000000000000000000aa"
	)
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

	// The site.
	ms, err := boltstore.Open(filepath.Join(dir, "mirror.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	agg, err := fleet.NewAggregator(ctx, ms, fleet.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	var evs []fleet.Event
	for i := range 40 {
		e := fleet.Event{Type: fleet.TypeInstallOK, ClientID: fmt.Sprintf("client-%04d", i), ReleaseID: rel, ToVersion: "2.0.0", Time: t0}
		if i%5 == 0 { // 20% fail
			e.Type, e.ErrorCode = fleet.TypeInstallFailed, "E_POSTINST"
		}
		evs = append(evs, e)
	}
	if _, _, err := agg.Ingest(ctx, evs); err != nil {
		t.Fatal(err)
	}
	export := func(name string, at time.Time) string {
		path := filepath.Join(dir, name)
		err := fsutil.WriteFrom(path, 0o600, func(w io.Writer) error {
			_, err := agg.ExportReport(ctx, w, fleet.ExportIdentity{MirrorID: mir, Key: priv}, at)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	file1 := export("report-1.jsonl", t0.Add(time.Hour))

	// The vendor, 3 days later.
	vdb, err := bolt.Open(filepath.Join(dir, "controlplane.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vdb.Close()
	_ = vdb.Update(func(tx *bolt.Tx) error {
		for _, b := range kvsink.Buckets {
			_, _ = tx.CreateBucket(b)
		}
		return nil
	})
	sink := kvsink.New(kv.Bolt(vdb))
	imp := func(path string) fleet.ImportResult {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		res, err := fleet.ImportBatched(ctx, f, pub, fleet.ReadOptions{MirrorID: mir}, sink.Run, 16)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		return res
	}
	if res := imp(file1); res.EventsAdded != 40 {
		t.Fatalf("import = %+v, want 40 events", res)
	}
	now := t0.Add(73 * time.Hour)
	srcs, err := sink.Sources(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	sched := &fleet.Schedule{Steps: []fleet.Step{{Percentage: 10, MinDwell: catalog.Duration(24 * time.Hour)}, {Percentage: 100}}}
	gate := &fleet.Gate{MinInstalls: 20, MaxFailureRate: 10, MaxReportAge: catalog.Duration(96 * time.Hour)}
	d := fleet.Evaluate(fleet.RolloutState{Percentage: 10, Since: t0}, sched, gate, rel, srcs, now)
	if d.Action != fleet.Halt || d.Installs != 40 || d.Failures != 8 || d.NewestReport != 72*time.Hour {
		t.Errorf("decision = %+v, want halt on 8/40 with reports 72h old", d)
	}
	t.Logf("decision: %s: %s", d.Action, d.Reason)

	// The acknowledgement travels back; the next file holds only what is new.
	cs, _ := sink.Cursors(ctx)
	if len(cs) != 1 || cs[0].Through != 40 {
		t.Fatalf("cursors = %+v, want through 40", cs)
	}
	if err := agg.Ack(ctx, cs[0].Through); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agg.Ingest(ctx, evs[:3]); err != nil {
		t.Fatal(err)
	}
	sum, err := func() (fleet.ReportSummary, error) {
		f, err := os.Open(export("report-2.jsonl", t0.Add(80*time.Hour)))
		if err != nil {
			return fleet.ReportSummary{}, err
		}
		defer f.Close()
		return fleet.VerifyReport(f, pub, fleet.ReadOptions{})
	}()
	if err != nil || sum.Events != 3 || sum.Header.Since != 40 {
		t.Errorf("second report = %+v, %v; want 3 events since 40", sum, err)
	}
	if res := imp(file1); res.EventsAdded != 0 || res.AggregatesChanged != 0 {
		t.Errorf("carrying the first file again = %+v, want nothing changed", res)
	}
}
