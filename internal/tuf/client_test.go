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
