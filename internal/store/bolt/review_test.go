package bolt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// TestStore_DeletedTenantTakesNoNewObjects mounts writes under a deleted
// tenant: a new token, mirror (with a working credential), policy, blocked
// version or entitlement was stored and audited although nothing of a
// deleted tenant is ever served again. The check runs inside the write
// transaction, so a concurrent delete cannot slip between.
func TestStore_DeletedTenantTakesNoNewObjects(t *testing.T) {
	db, _ := openTemp(t)
	defer db.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	prod := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "p"}
	if err := db.CreateProduct(ctx, prod); err != nil {
		t.Fatal(err)
	}
	tenant := func(status string) string {
		tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "t"}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateTenant(ctx, tn.TenantID, func(x *catalog.Tenant) error { x.Status = status; return nil }); err != nil {
			t.Fatal(err)
		}
		return tn.TenantID
	}
	creates := []struct {
		name string
		fn   func(tenantID string) error
	}{
		{"token", func(id string) error {
			return db.CreateToken(ctx, &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, TenantID: id,
				Hash: randHex(t)})
		}},
		{"mirror", func(id string) error {
			return db.CreateMirror(ctx, &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: id, Name: "m",
				AllowedChannels: []string{"stable"}, CredentialHash: randHex(t)})
		}},
		{"policy", func(id string) error {
			return db.CreatePolicy(ctx, &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: id, ProductID: prod.ProductID,
				Channel: "stable", Action: catalog.ActionNotify})
		}},
		{"blocked version", func(id string) error {
			return db.CreateBlockedVersion(ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: id,
				ProductID: prod.ProductID, BlockedVersion: "1.0.0"})
		}},
		{"entitlement", func(id string) error {
			return db.CreateEntitlement(ctx, &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: id,
				ProductID: prod.ProductID, Policy: []byte(`{"max_seats":1}`), StartsAt: now})
		}},
	}
	for _, c := range creates {
		t.Run(c.name, func(t *testing.T) {
			if err := c.fn(tenant(catalog.TenantSuspended)); err != nil {
				t.Fatalf("under a suspended tenant: got %v, want success", err)
			}
			before := countAudit(t, db)
			err := c.fn(tenant(catalog.TenantDeleted))
			if got, want := catalog.ErrorCode(err), catalog.ECONFLICT; got != want {
				t.Fatalf("under a deleted tenant: got %q (%v), want %q", got, err, want)
			}
			if got, want := countAudit(t, db), before+2; got != want { // tenant.created + tenant.updated only
				t.Fatalf("audit events: got %d, want %d", got, want)
			}
		})
	}
}

func countAudit(t *testing.T, db *DB) int {
	t.Helper()
	n := 0
	if err := db.WalkAudit(context.Background(), func(*catalog.AuditEvent) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
