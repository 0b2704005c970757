package tuf

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestClient_Changes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(3, 30, 1)
	f.build(m)
	c := f.client(DirStore{Dir: t.TempDir()}, f.rootData)
	first, err := c.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(first.Targets), len(m.Artifacts); got != want {
		t.Fatalf("first update: %d targets, want %d", got, want)
	}

	t.Run("nothing new", func(t *testing.T) {
		ch, err := c.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Changed() || len(ch.Targets) != 0 || ch.BytesFetched > 4<<10 {
			t.Fatalf("got %+v, want nothing but the timestamp", ch)
		}
	})
	t.Run("one release: one bin and its target", func(t *testing.T) {
		addRelease(m, 2, 1)
		f.build(m)
		ch, err := c.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Roles) != 1 || !strings.HasPrefix(ch.Roles[0], BinPrefix(m.Products[2].ProductID)+"-") {
			t.Fatalf("roles %v, want one bin of product 3", ch.Roles)
		}
		if len(ch.Targets) != 1 || ch.Targets[0].Custom.Release != "rel_new001" || ch.Targets[0].Custom.Version != "9.0.1" || len(ch.Documents) != 0 {
			t.Fatalf("got targets %+v documents %v", ch.Targets, ch.Documents)
		}
		tg, err := c.Repository().Target(ch.Targets[0].Path)
		if err != nil || !reflect.DeepEqual(tg, ch.Targets[0]) {
			t.Fatalf("Target: got %+v, %v", tg, err)
		}
	})
	t.Run("revocation: the target changes status", func(t *testing.T) {
		m.Releases[0].Status = "REVOKED"
		f.build(m)
		ch, err := c.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Targets) != 1 || ch.Targets[0].Custom.Status != "REVOKED" {
			t.Fatalf("got %+v", ch.Targets)
		}
	})
	t.Run("restart: state read back from the store", func(t *testing.T) {
		c2 := NewClient(f.tenantID, f.repo, c.store, ClientOptions{Now: c.now})
		f.repo.served = nil
		ch, err := c2.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Changed() || !slices.Equal(f.repo.served, []string{"metadata/2.root.json", "metadata/timestamp.json"}) {
			t.Fatalf("after restart fetched %v, changes %+v", f.repo.served, ch)
		}
		a, _ := c.Repository().Manifest()
		b, err := c2.Repository().Manifest()
		if err != nil || len(a.Releases) != len(b.Releases) {
			t.Fatalf("manifest after restart: %v", err)
		}
	})
	t.Run("product no longer visible: targets removed, role kept in the snapshot", func(t *testing.T) {
		pid := m.Products[0].ProductID
		m.Products = m.Products[1:]
		f.build(m)
		ch, err := c.Update(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Removed) == 0 || !strings.HasPrefix(ch.Removed[0], pid+"/") {
			t.Fatalf("removed %v", ch.Removed)
		}
		if _, ok := c.Repository().Snapshot.Signed.Meta[ProductRole(pid)+".json"]; !ok {
			t.Fatal("the product role left the snapshot (TUF clients refuse that)")
		}
		got, err := c.Repository().Manifest()
		if err != nil || len(got.Products) != 2 {
			t.Fatalf("products %v, %v", got.Products, err)
		}
	})
}

func TestRepository_Fresh(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{})
	f.build(view(1, 3, 1))
	c := f.client(NewMemStore(), f.rootData)
	if _, err := c.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  error
	}{
		{"within the timestamp's validity", 23 * time.Hour, nil},
		{"past it", 25 * time.Hour, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Repository().Fresh(f.now.Add(tc.after)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestProductKeyRotation replaces the product key: every product role is
// re-signed, the tenant's targets delegate to the new key, clients
// follow, and the old key can no longer sign a bin they accept.
func TestProductKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 30, 1)
	f.build(m)
	c := f.client(NewMemStore(), f.rootData)
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	old := f.product
	f.product = testSigner(t, 33)
	if err := f.products.SetSigners(f.product); err != nil {
		t.Fatal(err)
	}
	files := f.build(m)
	var bins, targets int
	for _, x := range files {
		if strings.Contains(x.Path, ".b-") || strings.Contains(x.Path, ".p-") {
			bins++
		}
		if strings.HasSuffix(x.Path, ".targets.json") {
			targets++
		}
	}
	if targets != 1 || bins < 2*8 {
		t.Fatalf("after rotation: %d targets, %d product files re-signed", targets, bins)
	}
	ch, err := c.Update(ctx)
	if err != nil {
		t.Fatalf("client after rotation: %v", err)
	}
	if len(ch.Targets) != 0 {
		t.Fatalf("rotation changed %d targets", len(ch.Targets))
	}

	// The old key signs a new bin version; the vendor's snapshot names it.
	addRelease(m, 0, 1)
	bin := binOfFiles(t, f.build(m))
	f.repo.set(bin, resign(t, f, bin, func(*metadata.Metadata[metadata.TargetsType]) {}, old))
	if _, err := c.Update(ctx); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Fatalf("bin signed by the rotated-out key: got %v", err)
	}
}

func TestClient_LoadOffline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 20, 1)
	f.build(m)
	store := DirStore{Dir: t.TempDir()}
	c := f.client(store, f.rootData)
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := c.Repository().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	offline := newMapFetcher() // a source with nothing in it
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  error
	}{
		{"restart with no source", time.Hour, nil},
		{"restart after the timestamp expired", 25 * time.Hour, ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := f.now.Add(tc.after)
			c2 := NewClient(f.tenantID, offline, store, ClientOptions{Now: func() time.Time { return now }})
			r, err := c2.Load(ctx)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				return
			}
			got, err := r.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatal("manifest loaded offline differs")
			}
			if len(offline.served) != 0 {
				t.Fatalf("Load fetched %v from the source", offline.served)
			}
		})
	}
}
