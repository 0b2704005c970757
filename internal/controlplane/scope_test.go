package controlplane_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
)

func newApp(t testing.TB) *controlplane.App {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	return controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer})
}

// TestApp_TenantScope checks that a tenant principal sees its own
// tenant's objects and gets not_found for another tenant's, whatever the
// operation, while the operator sees both.
func TestApp_TenantScope(t *testing.T) {
	a := newApp(t)
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	prod, err := a.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	type objects struct{ tenant, policy, entitlement, mirror, snapshot string }
	seed := func(name string) objects {
		t.Helper()
		ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := a.CreatePolicy(op, ten.TenantID, controlplane.PolicyInput{ProductID: prod.ProductID, Channel: "stable", Action: catalog.ActionNotify})
		if err != nil {
			t.Fatal(err)
		}
		ent, err := a.CreateEntitlement(op, ten.TenantID, controlplane.EntitlementInput{ProductID: prod.ProductID, Policy: json.RawMessage(`{"max_seats":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		mir, err := a.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := a.BuildSnapshot(op, ten.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		return objects{ten.TenantID, pol.PolicyID, ent.EntitlementID, mir.MirrorID, snap.SnapshotID}
	}
	mine, theirs := seed("mine"), seed("theirs")
	tenant := controlplane.WithPrincipal(context.Background(), &controlplane.Principal{Role: catalog.RoleTenant, TenantID: mine.tenant, TokenID: "tok_test"})

	reads := []struct {
		name string
		read func(ctx context.Context, o objects) error
	}{
		{"tenant", func(ctx context.Context, o objects) error { _, err := a.Tenant(ctx, o.tenant); return err }},
		{"policy", func(ctx context.Context, o objects) error { _, err := a.Policy(ctx, o.policy); return err }},
		{"policies", func(ctx context.Context, o objects) error {
			_, _, err := a.Policies(ctx, o.tenant, store.Page{})
			return err
		}},
		{"entitlement", func(ctx context.Context, o objects) error { _, err := a.Entitlement(ctx, o.entitlement); return err }},
		{"mirror", func(ctx context.Context, o objects) error { _, err := a.Mirror(ctx, o.mirror); return err }},
		{"snapshot", func(ctx context.Context, o objects) error { _, err := a.Snapshot(ctx, o.snapshot); return err }},
		{"seats", func(ctx context.Context, o objects) error {
			_, _, err := a.Seats(ctx, o.entitlement, store.Page{})
			return err
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			if err := r.read(tenant, mine); err != nil {
				t.Errorf("own: %v", err)
			}
			if err := r.read(tenant, theirs); catalog.ErrorCode(err) != catalog.ENOTFOUND {
				t.Errorf("another tenant's: %v, want not_found", err)
			}
			if err := r.read(op, theirs); err != nil {
				t.Errorf("operator: %v", err)
			}
			if err := r.read(context.Background(), mine); catalog.ErrorCode(err) != catalog.ENOTFOUND {
				t.Errorf("no principal: %v, want not_found", err)
			}
		})
	}
	t.Run("tenant list is the tenant itself", func(t *testing.T) {
		got, _, err := a.Tenants(tenant, store.Page{})
		if err != nil || len(got) != 1 || got[0].TenantID != mine.tenant {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}
