package kv

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// fresh decodes the vendor-wide catalog from the file, bypassing the cache.
func fresh(t *testing.T, db *testDB) *globalSet {
	t.Helper()
	var g *globalSet
	err := db.b.View(context.Background(), func(tx Tx) (err error) {
		g, err = loadGlobal(context.Background(), tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// cachedNow returns the cache as a snapshot build would find it.
func cachedNow(t *testing.T, db *testDB) *globalSet {
	t.Helper()
	var g *globalSet
	err := db.update(context.Background(), func(w *wtx) (err error) {
		g, err = db.cached(w.ctx, w.Tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func sameGlobal(t *testing.T, got, want *globalSet) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"products", got.products, want.products},
		{"releases", got.releases, want.releases},
		{"release artifacts", got.releaseArtifacts, want.releaseArtifacts},
		{"artifacts", got.artifacts, want.artifacts},
		{"rollouts", got.rollouts, want.rollouts},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("cached %s differ from the file's:\ngot  %s\nwant %s", c.name, dump(c.got), dump(c.want))
		}
	}
}

func dump(list any) string {
	v := reflect.ValueOf(list)
	s := "["
	for i := range v.Len() {
		s += fmt.Sprintf(" %+v", v.Index(i).Elem().Interface())
	}
	return s + " ]"
}

// catalogFixture writes a small vendor catalog through the store.
type catalogFixture struct {
	t   *testing.T
	db  *testDB
	ctx context.Context
	now time.Time
}

func (f *catalogFixture) product(id string) *catalog.Product {
	p := &catalog.Product{ProductID: id, Name: "P " + id, Distribution: catalog.DistributionOpen}
	must(f.t, f.db.CreateProduct(f.ctx, p))
	return p
}

func (f *catalogFixture) artifact(id, status string) *catalog.Artifact {
	a := &catalog.Artifact{ArtifactID: id, SourceType: catalog.SourceExternal, ExternalURL: "https://example.com/" + id, SHA256: fmt.Sprintf("%064x", len(id)), SizeBytes: 10}
	must(f.t, f.db.CreateArtifact(f.ctx, a))
	if status != "" {
		_, err := f.db.SetArtifactStatus(f.ctx, id, status, &f.now)
		must(f.t, err)
	}
	return a
}

func (f *catalogFixture) release(id, productID, version string) *catalog.Release {
	r := &catalog.Release{ReleaseID: id, ProductID: productID, Channel: "stable", Version: version, PublishedAt: f.now}
	must(f.t, f.db.CreateRelease(f.ctx, r))
	return r
}

func (f *catalogFixture) attach(id, releaseID, artifactID string) {
	must(f.t, f.db.AttachArtifact(f.ctx, &catalog.ReleaseArtifact{ReleaseArtifactID: id, ReleaseID: releaseID, ArtifactID: artifactID, Platform: "linux", Arch: "x64", InstallerType: "zip"}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCache_Behaviour(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("every kind of write keeps the cache equal to the file", func(t *testing.T) {
		db, _ := openTemp(t)
		defer db.Close()
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		f.product("prd_m")
		f.artifact("art_m", catalog.ArtifactVerified)
		f.release("rel_m", "prd_m", "1.0.0")
		f.attach("rla_m", "rel_m", "art_m")
		cachedNow(t, db)   // load it, then change every cached kind
		f.product("prd_a") // ids out of creation order: inserted mid-list
		f.product("prd_z")
		f.artifact("art_unref", catalog.ArtifactVerified) // never referenced: not cached
		f.artifact("art_a", catalog.ArtifactVerified)
		f.release("rel_a", "prd_a", "2.0.0")
		f.attach("rla_a", "rel_a", "art_a") // brings art_a in
		_, err := db.SetArtifactStatus(ctx, "art_m", catalog.ArtifactFailed, &now)
		must(t, err)
		_, err = db.RevokeRelease(ctx, "rel_m", now)
		must(t, err)
		ro := &catalog.Rollout{RolloutID: "rol_1", ProductID: "prd_a", Channel: "stable", ReleaseID: "rel_a", Percentage: 10}
		must(t, db.CreateRollout(ctx, ro))
		_, err = db.UpdateRollout(ctx, "rol_1", func(r *catalog.Rollout) error { r.Percentage = 70; return nil })
		must(t, err)

		got, want := cachedNow(t, db), fresh(t, db)
		sameGlobal(t, got, want)
		if len(got.artifacts) != 2 || got.artifacts[0].Status != catalog.ArtifactVerified || got.artifacts[1].Status != catalog.ArtifactFailed {
			t.Errorf("cached artifacts %s, want art_a VERIFIED and art_m FAILED", dump(got.artifacts))
		}
		if got.releases[1].Status != catalog.ReleaseRevoked {
			t.Errorf("cached rel_m status %q, want REVOKED", got.releases[1].Status)
		}
	})

	t.Run("a rolled-back write leaves the cache alone", func(t *testing.T) {
		db, _ := openTemp(t)
		defer db.Close()
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		f.product("prd_1")
		before := cachedNow(t, db)
		n := len(before.products)
		boom := errors.New("boom")
		err := db.update(ctx, func(w *wtx) error {
			if err := w.insert(bProducts, "product", "prd_2", &catalog.Product{ProductID: "prd_2", Name: "x", Distribution: catalog.DistributionOpen}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error = %v, want boom", err)
		}
		got := cachedNow(t, db)
		if len(got.products) != n {
			t.Fatalf("cache has %d products after a rollback, want %d", len(got.products), n)
		}
		sameGlobal(t, got, fresh(t, db))
	})

	t.Run("a build in the transaction that wrote sees its own write", func(t *testing.T) {
		db, _ := openTemp(t)
		defer db.Close()
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		tn := &catalog.Tenant{TenantID: "ten_1", Name: "T"}
		must(t, db.CreateTenant(ctx, tn))
		f.product("prd_1")
		cachedNow(t, db)
		var got int
		err := db.update(ctx, func(w *wtx) error {
			if err := w.insert(bProducts, "product", "prd_2", &catalog.Product{ProductID: "prd_2", Name: "x", Distribution: catalog.DistributionOpen}); err != nil {
				return err
			}
			var tt catalog.Tenant
			if err := mustGet(w.Tx, bTenants, "tenant", "ten_1", &tt); err != nil {
				return err
			}
			in, err := w.gather(&tt)
			got = len(in.Products)
			return err
		})
		must(t, err)
		if got != 2 {
			t.Fatalf("gathered %d products, want 2", got)
		}
	})

	t.Run("the load started by Open is adopted", func(t *testing.T) {
		db, path := openTemp(t)
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		f.product("prd_1")
		must(t, db.Close())
		db, err := openFile(path, Options{Cache: true})
		must(t, err)
		defer db.Close()
		<-db.warm.done
		got := cachedNow(t, db)
		if len(got.products) != 1 {
			t.Fatalf("warm cache has %d products, want 1", len(got.products))
		}
	})

	t.Run("a finished load is adopted before a write is applied to it", func(t *testing.T) {
		db, path := openTemp(t)
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		f.product("prd_1")
		must(t, db.Close())
		db, err := openFile(path, Options{Cache: true})
		must(t, err)
		defer db.Close()
		db.mu.Lock()
		w := db.warm
		db.mu.Unlock()
		<-w.done
		f.db = db
		f.product("prd_2")
		if db.global == nil || len(db.global.products) != 2 {
			t.Fatal("the write did not adopt the finished load and apply itself to it")
		}
		got := cachedNow(t, db)
		if len(got.products) != 2 {
			t.Fatalf("cache has %d products, want 2", len(got.products))
		}
		sameGlobal(t, got, fresh(t, db))
	})

	t.Run("a stale load is not adopted", func(t *testing.T) {
		db, _ := openTemp(t)
		defer db.Close()
		db.DropCache()
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		stale := &warmer{cancel: func() {}, done: make(chan struct{}), gen: db.gen.Load(), g: &globalSet{}}
		close(stale.done)
		f.product("prd_1") // a committed write after the load began
		db.mu.Lock()
		db.warm = stale
		db.global = nil
		db.mu.Unlock()
		got := cachedNow(t, db)
		if len(got.products) != 1 {
			t.Fatalf("cache has %d products, want 1 (the stale empty load was adopted)", len(got.products))
		}
	})

	t.Run("NoWarm starts no load and Close stops a running one", func(t *testing.T) {
		path := t.TempDir() + "/x.db"
		db, err := openFile(path, Options{Cache: true, NoWarm: true})
		must(t, err)
		if db.warm != nil {
			t.Fatal("NoWarm started a background load")
		}
		must(t, db.Close())
		db, err = openFile(path, Options{Cache: true})
		must(t, err)
		w := db.warm
		must(t, db.Close())
		select {
		case <-w.done:
		default:
			t.Fatal("Close returned with the background load still running")
		}
	})

	t.Run("builds after writes gather what a fresh store would", func(t *testing.T) {
		db, path := openTemp(t)
		f := &catalogFixture{t: t, db: db, ctx: ctx, now: now}
		tn := &catalog.Tenant{TenantID: "ten_1", Name: "T"}
		must(t, db.CreateTenant(ctx, tn))
		f.product("prd_1")
		f.artifact("art_1", catalog.ArtifactVerified)
		f.release("rel_1", "prd_1", "1.0.0")
		f.attach("rla_1", "rel_1", "art_1")
		var first, second *catalog.SnapshotInput
		build := func(dst **catalog.SnapshotInput) func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
			return func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
				*dst = in
				return &catalog.Snapshot{SnapshotID: catalog.NewID(catalog.PrefixSnapshot), TenantID: in.Tenant.TenantID, Sequence: in.Sequence, Envelope: []byte(`{}`)}, nil
			}
		}
		_, err := db.CreateSnapshot(ctx, "ten_1", build(&first))
		must(t, err)
		f.release("rel_2", "prd_1", "2.0.0")
		_, err = db.CreateSnapshot(ctx, "ten_1", build(&second))
		must(t, err)
		must(t, db.Close())
		db2, err := openFile(path, Options{Cache: true, NoWarm: true})
		must(t, err)
		defer db2.Close()
		var cold *catalog.SnapshotInput
		_, err = db2.CreateSnapshot(ctx, "ten_1", build(&cold))
		must(t, err)
		if len(first.Releases) != 1 || len(second.Releases) != 2 {
			t.Fatalf("builds gathered %d then %d releases, want 1 then 2", len(first.Releases), len(second.Releases))
		}
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"products", second.Products, cold.Products},
			{"releases", second.Releases, cold.Releases},
			{"release artifacts", second.ReleaseArtifacts, cold.ReleaseArtifacts},
			{"artifacts", second.Artifacts, cold.Artifacts},
			{"rollouts", second.Rollouts, cold.Rollouts},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: warm build gathered %s, a fresh store %s", c.name, dump(c.got), dump(c.want))
			}
		}
	})
}
