package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// TestMigrate_RecountsLeases: a database migrated to version 4 by a build
// with the lost-update race (migration 5's note) may hold a lease counter
// that is too high, refusing seats for good. Migration 5 drops the mark
// that says the counters are complete, so the next write rebuilds them
// from the active leases: the seats come back.
func TestMigrate_RecountsLeases(t *testing.T) {
	url := testURL(t)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	db, schema := openSchema(t, url)
	now := time.Now().UTC().Truncate(time.Second)
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme"}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "widget"}
	e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: json.RawMessage(`{"max_seats":4}`), StartsAt: now.Add(-time.Hour)}
	for _, err := range []error{db.CreateTenant(ctx, tn), db.CreateProduct(ctx, p), db.CreateEntitlement(ctx, e)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	lease := func(db *DB, subject string) error {
		_, err := db.AcquireLease(ctx, &catalog.Lease{EntitlementID: e.EntitlementID, SubjectType: catalog.SubjectMachine, SubjectID: subject,
			IssuedAt: now, ExpiresAt: now.Add(time.Hour), TokenHash: fmt.Sprintf("%064x", len(subject))})
		return err
	}
	for _, s := range []string{"m1", "m2"} {
		if err := lease(db, s); err != nil {
			t.Fatal(err)
		}
	}
	// What the race left: the counter two above the two active leases,
	// in a database at version 4.
	var v []byte
	if err := db.pool.QueryRow(ctx, "SELECT v FROM outpost_kv WHERE bucket = 'lease_counts' AND k = $1", []byte(e.EntitlementID)).Scan(&v); err != nil || len(v) != 16 {
		t.Fatalf("lease counter: %x, %v", v, err)
	}
	binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(v)+2)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE outpost_kv SET v = $2 WHERE bucket = 'lease_counts' AND k = $1", []any{[]byte(e.EntitlementID), v}},
	} {
		if _, err := db.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := lease(db, "m3"); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a third lease with the counter at 4 of 4: %v, want ECONFLICT (the damage did not take)", err)
	}
	// The runner applies migration 5 to it, as to a database at version
	// 4 (the later migrations' objects stay; they are recorded again).
	later := migrations[5:]
	if _, err := db.pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version >= 5; UPDATE outpost_schema_version SET version = 4"); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db.pool, schema, migrations[:5]); err != nil {
		t.Fatal(err)
	}
	for _, m := range later {
		if _, err := db.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	again := moreInstances(t, url, schema, 1)[0]
	for _, s := range []string{"m3", "m4"} {
		if err := lease(again, s); err != nil {
			t.Fatalf("lease %s after migration 5: %v, want it granted (2 of 4 seats in use)", s, err)
		}
	}
	if err := lease(again, "m5"); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("a fifth lease on 4 seats: %v, want ECONFLICT", err)
	}
	if n, err := again.ActiveLeaseCount(ctx, e.EntitlementID, now); err != nil || n != 4 {
		t.Fatalf("ActiveLeaseCount = %d, %v; want 4", n, err)
	}
}
