package controlplaned_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

// TestRetention_DatabaseStable builds a small tenant 20 times and checks
// the bytes the bbolt file's data occupies (pages in use: the file itself
// keeps its high-water mark, and later writes reuse its free pages) after
// 20 builds are at most 1.5 times those after one. The same run without
// pruning is the control: it must grow at least twice as much, or
// the test proves nothing (build records are stored compressed, so a
// small catalog's unpruned growth stays modest in absolute terms).
func TestRetention_DatabaseStable(t *testing.T) {
	growth := map[bool]int64{}
	for _, c := range []struct {
		name  string
		prune bool
	}{
		{"pruned", true},
		{"not pruned (control)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := newTUFDir(t, 1, 1, false)
			e := startTUF(t, dir, func(cfg *controlplane.Config) {
				cfg.Retention.Keep = 2
				cfg.Retention.Disabled = !c.prune
			})
			prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
			e.must(t, err)
			// Enough releases that the records and metadata, not the
			// empty buckets, are what a build adds.
			for i := range 150 {
				_, err := e.app.CreateRelease(e.op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: fmt.Sprintf("1.0.%d", i)})
				e.must(t, err)
			}
			a := e.seedTenant(t, "a", prod.ProductID)
			build := func() {
				t.Helper()
				_, err := e.app.BuildSnapshot(e.op, a.tenant)
				e.must(t, err)
				_, err = e.app.Prune(e.op)
				e.must(t, err)
			}
			build()
			one, err := e.db.Size()
			e.must(t, err)
			for range 19 {
				build()
			}
			twenty, err := e.db.Size()
			e.must(t, err)
			ratio := float64(twenty.InUse) / float64(one.InUse)
			growth[c.prune] = twenty.InUse - one.InUse
			t.Logf("in use after 1 build %d B, after 20 %d B (%.2fx); file %d B -> %d B", one.InUse, twenty.InUse, ratio, one.File, twenty.File)
			if c.prune && ratio > 1.5 {
				t.Errorf("in use after 20 builds / after 1 = %.2f, want <= 1.5", ratio)
			}
			snaps, _, err := e.app.Snapshots(e.op, a.tenant, store.Page{Limit: 100})
			e.must(t, err)
			want := 21 // seedTenant's build, then 20
			if c.prune {
				want = 2
			}
			if len(snaps) != want {
				t.Errorf("snapshots kept = %d, want %d", len(snaps), want)
			}
		})
	}
	if got, pruned := growth[false], growth[true]; got < 2*max(pruned, 1) {
		t.Errorf("growth without pruning %d B, with %d B: want at least 2x (the control proves nothing)", got, pruned)
	}
}

// TestRetention_MirrorsChainAfterPruning: go-tuf updaters synced at
// the first build, one of a tenant that moves on and one of a tenant that
// stays at an old version of the shared product, refresh and download
// after many builds and prunes; the roots are all kept; a schema 1
// snapshot a mirror reported is kept past Keep.
func TestRetention_MirrorsChainAfterPruning(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir, func(cfg *controlplane.Config) { cfg.Retention.Keep = 2 })
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	body1 := randBytes(10 << 10)
	target1 := e.release(t, prod.ProductID, "1.0.0", body1)
	a := e.seedTenant(t, "a", prod.ProductID)
	b := e.seedTenant(t, "b", prod.ProductID)
	base := "http://" + e.cp.Addr()
	updater := func(s seeded) *goTUF {
		root, err := e.app.TUFRoot(e.op, s.tenant)
		e.must(t, err)
		return &goTUF{base: base + "/v1/tenants/" + s.tenant + "/tuf", work: t.TempDir(), root: root, rt: &counting{token: s.tenantToken, got: map[string]int64{}}}
	}
	ga, gb := updater(a), updater(b)
	for _, g := range []*goTUF{ga, gb} {
		if _, err := g.refresh(t); err != nil {
			t.Fatal(err)
		}
	}
	// A mirror of a reports the first snapshot: it stays pinned.
	first, err := e.app.LatestSnapshotHead(e.op, a.tenant)
	e.must(t, err)

	var last string
	var lastBody []byte
	for i := 1; i <= 8; i++ {
		lastBody = randBytes(1 << 10)
		last = e.release(t, prod.ProductID, fmt.Sprintf("1.%d.0", i), lastBody)
		_, err := e.app.BuildSnapshot(e.op, a.tenant)
		e.must(t, err)
		if i == 1 {
			pinMirror(t, e, a.mirrorCred, first.SnapshotID)
		}
		p, err := e.app.Prune(e.op)
		e.must(t, err)
		t.Logf("build %d: pruned %+v", i, p)
	}

	t.Run("tenant that moved on", func(t *testing.T) {
		u, err := ga.refresh(t)
		if err != nil {
			t.Fatalf("refresh after pruning: %v", err)
		}
		if got := ga.download(t, u, last); !bytes.Equal(got, lastBody) {
			t.Fatal("downloaded artifact differs")
		}
	})
	t.Run("tenant at an old product version", func(t *testing.T) {
		u, err := gb.refresh(t)
		if err != nil {
			t.Fatalf("refresh after pruning: %v", err)
		}
		if got := gb.download(t, u, target1); !bytes.Equal(got, body1) {
			t.Fatal("downloaded artifact differs")
		}
	})
	t.Run("roots are kept", func(t *testing.T) {
		for _, s := range []seeded{a, b} {
			if _, err := e.app.TUFRoot(e.op, s.tenant); err != nil {
				t.Errorf("tenant %s root: %v", s.tenant, err)
			}
		}
	})
	t.Run("old versions pruned", func(t *testing.T) {
		v, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		repo, err := e.app.TUFRepo(e.op, a.tenant)
		e.must(t, err)
		if _, err := repo.Metadata(e.op, fmt.Sprintf("%d.snapshot.json", v.Snapshot-2)); err == nil {
			t.Errorf("snapshot version %d is still served, want it pruned (keep 2 of %d)", v.Snapshot-2, v.Snapshot)
		}
		if _, err := repo.Metadata(e.op, fmt.Sprintf("%d.snapshot.json", v.Snapshot-1)); err != nil {
			t.Errorf("snapshot version %d: %v, want it kept", v.Snapshot-1, err)
		}
	})
	t.Run("the snapshot a mirror reported is kept", func(t *testing.T) {
		if _, err := e.app.Snapshot(e.op, first.SnapshotID); err != nil {
			t.Errorf("pinned snapshot %d: %v", first.Sequence, err)
		}
		snaps, _, err := e.app.Snapshots(e.op, a.tenant, store.Page{Limit: 100})
		e.must(t, err)
		latest, err := e.app.LatestSnapshotHead(e.op, a.tenant)
		e.must(t, err)
		if want := int(latest.Sequence - first.Sequence + 1); len(snaps) != want {
			t.Errorf("snapshots kept = %d, want %d (from the pinned one)", len(snaps), want)
		}
	})
}

// pinMirror reports, as the mirror with cred, that it holds snapshotID.
func pinMirror(t *testing.T, e *tufCP, cred, snapshotID string) {
	t.Helper()
	p, err := e.app.Authenticate(context.Background(), cred)
	e.must(t, err)
	_, err = e.app.ReportSync(controlplane.WithPrincipal(context.Background(), p), controlplane.SyncReport{LastSnapshotID: snapshotID})
	e.must(t, err)
}
