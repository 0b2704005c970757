package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outpost/outpost/internal/catalog"
)

// openWithTenant opens a store on a new schema, closed when t ends, with
// one tenant, and returns it with a context that writes as a user.
func openWithTenant(t *testing.T) (context.Context, *DB, *catalog.Tenant) {
	t.Helper()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	db, _ := openSchema(t, testURL(t))
	t.Cleanup(func() { db.Close() })
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme"}
	if err := db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	return ctx, db, tn
}

// What behind returns: a commit, or the SQLSTATE of a refusal.
const (
	ok     = ""
	fk     = "23503" // foreign_key_violation
	unique = "23505" // unique_violation
	rule   = "23000" // integrity_constraint_violation: the triggers' rules
)

// createEntitlement stores an entitlement of tenant and product with
// policy, from startsAt on.
func createEntitlement(t *testing.T, ctx context.Context, db *DB, tenant, product, policy string, startsAt time.Time) *catalog.Entitlement {
	t.Helper()
	e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tenant, ProductID: product,
		Policy: json.RawMessage(policy), StartsAt: startsAt}
	if err := db.CreateEntitlement(ctx, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// createProducts stores a product of each name and returns their ids.
func createProducts(t *testing.T, ctx context.Context, db *DB, names ...string) []string {
	t.Helper()
	var ids []string
	for _, name := range names {
		p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: name}
		if err := db.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ProductID)
	}
	return ids
}

// rawEntitlement is the row store/kv would write for e.
func rawEntitlement(t *testing.T, e *catalog.Entitlement) []byte {
	t.Helper()
	if e.Policy == nil {
		e.Policy = json.RawMessage(`{}`)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// behind runs sql in a transaction of its own on pool, behind the store's
// back, and returns the SQLSTATE it failed with ("" if it committed).
func behind(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	return behindAll(t, pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	})
}

// behindAll is behind for the statements fn runs in one transaction.
func behindAll(t *testing.T, pool *pgxpool.Pool, fn func(context.Context, pgx.Tx) error) string {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return pe.Code
	default:
		t.Fatalf("behind the store: %v", err)
		return ""
	}
}

// schemaAt returns a fresh schema migrated to version n, a pool whose
// connections use it (closed when t ends), and a connection to it.
func schemaAt(t *testing.T, url string, n int) (string, *pgxpool.Pool, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	name, conn := freshSchema(t, url)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrateTo(ctx, pool, name, migrations[:n]); err != nil {
		t.Fatal(err)
	}
	return name, pool, conn
}

const putRow = `INSERT INTO outpost_kv (bucket, k, v) VALUES ($1, $2, $3)
	ON CONFLICT (bucket, k) DO UPDATE SET v = excluded.v`

// TestEntitlements_DatabaseEnforces: the database itself refuses an
// entitlement that overlaps another of its tenant and product, or names a
// tenant or product that does not exist, and a second active seat of a
// subject, whoever writes it (migration 4);
// what the model allows still commits, and the store's own writes keep
// the projection in step.
func TestEntitlements_DatabaseEnforces(t *testing.T) {
	ctx, db, tn := openWithTenant(t)
	prods := createProducts(t, ctx, db, "one", "two")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	at := func(d int) *time.Time { x := t0.Add(time.Duration(d) * day); return &x }
	e1 := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: prods[0],
		Policy: json.RawMessage(`{"max_seats":2,"seat_assignment_mode":"explicit"}`), StartsAt: t0, EndsAt: at(30)}
	if err := db.CreateEntitlement(ctx, e1); err != nil {
		t.Fatal(err)
	}
	ent := func(tenant, product string, from int, to *time.Time) *catalog.Entitlement {
		return &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tenant, ProductID: product,
			StartsAt: *at(from), EndsAt: to, CreatedAt: t0, UpdatedAt: t0}
	}
	put := func(e *catalog.Entitlement) string {
		return behind(t, db.pool, putRow, "entitlements", []byte(e.EntitlementID), rawEntitlement(t, e))
	}
	for _, c := range []struct {
		name string
		e    *catalog.Entitlement
		want string // SQLSTATE; "" commits
	}{
		{"overlapping, open-ended", ent(tn.TenantID, prods[0], 10, nil), "23P01"},
		{"overlapping, inside", ent(tn.TenantID, prods[0], 1, at(2)), "23P01"},
		{"overlapping, starting before", ent(tn.TenantID, prods[0], -5, at(1)), "23P01"},
		{"ending where the other starts", ent(tn.TenantID, prods[0], -5, at(0)), ""},
		{"starting where the other ends", ent(tn.TenantID, prods[0], 30, at(40)), ""},
		{"same window, other product", ent(tn.TenantID, prods[1], 0, at(30)), ""},
		{"unknown tenant", ent("ten_nosuchtenant", prods[1], 100, nil), "23503"},
		{"unknown product", ent(tn.TenantID, "prd_nosuchproduct", 100, nil), "23503"},
		{"ends before it starts", ent(tn.TenantID, prods[1], 200, at(100)), "22000"}, // the range refuses its bounds
	} {
		t.Run(c.name, func(t *testing.T) {
			got := put(c.e)
			if got != c.want {
				t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
			}
		})
	}
	t.Run("a row whose key is not its id", func(t *testing.T) {
		e := ent(tn.TenantID, prods[1], 300, nil)
		if got := behind(t, db.pool, putRow, "entitlements", []byte("ent_someotherid"), rawEntitlement(t, e)); got != "23000" {
			t.Fatalf("SQLSTATE = %q, want 23000", got)
		}
	})
	t.Run("tenants and products are never deleted or re-keyed", func(t *testing.T) {
		for _, q := range []string{
			"DELETE FROM outpost_kv WHERE bucket = 'tenants'",
			"DELETE FROM outpost_kv WHERE bucket = 'products'",
			"UPDATE outpost_kv SET k = 'ten_x'::bytea WHERE bucket = 'tenants'",
			"UPDATE outpost_kv SET bucket = 'tenants_old' WHERE bucket = 'tenants'",
		} {
			if got := behind(t, db.pool, q); got != "23000" {
				t.Errorf("%s: SQLSTATE = %q, want 23000", q, got)
			}
		}
	})
	t.Run("seats", func(t *testing.T) {
		seat := func(id, ent, subject string, revoked bool) []byte {
			sa := &catalog.SeatAssignment{SeatAssignmentID: id, EntitlementID: ent, SubjectType: catalog.SubjectUser,
				SubjectID: subject, AssignedAt: t0, AssignedBy: "usr_admin"}
			if revoked {
				sa.RevokedAt = at(1)
			}
			b, err := json.Marshal(sa)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		first, second := catalog.NewID(catalog.PrefixSeat), catalog.NewID(catalog.PrefixSeat)
		for _, c := range []struct {
			name string
			id   string
			row  []byte
			want string
		}{
			{"a seat", first, seat(first, e1.EntitlementID, "alice", false), ""},
			{"a second active seat of the subject", second, seat(second, e1.EntitlementID, "alice", false), "23P01"},
			{"the first revoked", first, seat(first, e1.EntitlementID, "alice", true), ""},
			{"now the second", second, seat(second, e1.EntitlementID, "alice", false), ""},
			{"the revoked one active again", first, seat(first, e1.EntitlementID, "alice", false), "23000"},
			{"an unknown entitlement", "sea_other", seat("sea_other", "ent_nosuchentitlement", "bob", false), "23503"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := behind(t, db.pool, putRow, "seats", []byte(c.id), c.row); got != c.want {
					t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
				}
			})
		}
	})
	t.Run("the store's updates move the window the database checks", func(t *testing.T) {
		// Shrink e1 to [0, 10): [10, 20) is free for another entitlement,
		// which the database must then accept.
		if _, err := db.UpdateEntitlement(ctx, e1.EntitlementID, func(e *catalog.Entitlement) error { e.EndsAt = at(10); return nil }); err != nil {
			t.Fatal(err)
		}
		if got := put(ent(tn.TenantID, prods[0], 10, at(20))); got != "" {
			t.Fatalf("SQLSTATE = %q after the store shrank the other, want the row committed", got)
		}
		// That row went in behind the store's back (store/kv's own
		// indexes do not list it), so only the database sees the overlap
		// when the store moves e1 into its window: the store's caller
		// gets a conflict, and e1 stays as it was.
		_, err := db.UpdateEntitlement(ctx, e1.EntitlementID, func(e *catalog.Entitlement) error { e.EndsAt = at(15); return nil })
		if catalog.ErrorCode(err) != catalog.ECONFLICT || !strings.Contains(err.Error(), "outpost_entitlements_no_overlap") {
			t.Fatalf("UpdateEntitlement into another's window: %v, want the database's conflict", err)
		}
		got, err := db.Entitlement(ctx, e1.EntitlementID)
		if err != nil || !got.EndsAt.Equal(*at(10)) {
			t.Fatalf("e1 after the refused update: %+v, %v; want it ending at day 10", got, err)
		}
	})
}

// TestMigrate_EntitlementConstraintsBackfill: migration 4 projects the
// rows already stored, and a database whose rows break a rule stops at
// it, as it was.
func TestMigrate_EntitlementConstraintsBackfill(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	const (
		tenant  = `{"tenant_id":"ten_a","name":"a"}`
		product = `{"product_id":"prd_a","name":"a"}`
	)
	entRow := func(id, from, to string) string {
		return `{"entitlement_id":"` + id + `","tenant_id":"ten_a","product_id":"prd_a","policy_json":{},"starts_at":"` + from + `","ends_at":` + to + `}`
	}
	for _, c := range []struct {
		name     string
		ents     [][2]string
		wantErr  string
		wantEnts int
	}{
		{"rows that keep the rules", [][2]string{
			{"ent_a", entRow("ent_a", "2026-01-01T00:00:00Z", `"2026-02-01T00:00:00Z"`)},
			{"ent_b", entRow("ent_b", "2026-02-01T00:00:00.000000001Z", `null`)},
		}, "", 2},
		{"a seat of an entitlement that does not exist", [][2]string{
			{"ent_a", entRow("ent_a", "2026-01-01T00:00:00Z", `null`)},
			{"seats:sea_a", `{"seat_assignment_id":"sea_a","entitlement_id":"ent_gone","subject_type":"user","subject_id":"u","revoked_at":null}`},
		}, "outpost_seat_ref", 0},
		{"two overlapping entitlements", [][2]string{
			{"ent_a", entRow("ent_a", "2026-01-01T00:00:00Z", `"2026-02-01T00:00:00Z"`)},
			{"ent_b", entRow("ent_b", "2026-01-15T00:00:00Z", `null`)},
		}, "outpost_entitlements_no_overlap", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, pool, conn := schemaAt(t, url, 3)
			rows := [][3]string{{"tenants", "ten_a", tenant}, {"products", "prd_a", product}}
			for _, e := range c.ents {
				bucket, id := "entitlements", e[0]
				if b, rest, ok := strings.Cut(e[0], ":"); ok {
					bucket, id = b, rest
				}
				rows = append(rows, [3]string{bucket, id, e[1]})
			}
			for _, r := range rows {
				if _, err := conn.Exec(ctx, putRow, r[0], []byte(r[1]), []byte(r[2])); err != nil {
					t.Fatal(err)
				}
			}
			err := migrateTo(ctx, pool, name, migrations)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("migrate: %v, want %s named", err, c.wantErr)
				}
				if got := applied(t, conn); len(got) != 3 {
					t.Fatalf("schema_migrations = %v after a failed migration, want 1..3", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM outpost_entitlement_ref").Scan(&n); err != nil || n != c.wantEnts {
				t.Fatalf("outpost_entitlement_ref holds %d rows (%v), want %d", n, err, c.wantEnts)
			}
			if got := behind(t, pool, putRow, "entitlements", []byte("ent_c"), []byte(entRow("ent_c", "2026-03-01T00:00:00Z", `null`))); got != "23P01" {
				t.Fatalf("an overlap after the backfill: SQLSTATE %q, want 23P01", got)
			}
		})
	}
}
