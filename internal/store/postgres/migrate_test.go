package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/catalog"
)

// v1Layout is the schema Open created before the migration runner
// (outpost_schema_version = 1), as that build wrote it.
const v1Layout = `
CREATE TABLE outpost_schema_version (version integer NOT NULL);
CREATE TABLE outpost_kv (
	bucket text COLLATE "C" NOT NULL,
	k      bytea NOT NULL,
	v      bytea NOT NULL,
	PRIMARY KEY (bucket, k)
);
CREATE TABLE outpost_chain_head (id integer PRIMARY KEY CHECK (id = 1));
INSERT INTO outpost_chain_head (id) VALUES (1);
INSERT INTO outpost_schema_version (version) VALUES (1);
`

// freshSchema names a new schema dropped at cleanup, and a connection in
// it.
func freshSchema(t *testing.T, url string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	db, name := openSchema(t, url) // registers the drop
	db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE; CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return name, conn
}

// applied returns the versions schema_migrations records, in order.
func applied(t *testing.T, conn *pgx.Conn) []int {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantAllApplied(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	got := applied(t, conn)
	if len(got) != len(migrations) {
		t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, SchemaVersion)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("schema_migrations = %v, want versions 1..%d once each", got, SchemaVersion)
		}
	}
	var marker int
	if err := conn.QueryRow(context.Background(), "SELECT version FROM outpost_schema_version").Scan(&marker); err != nil {
		t.Fatal(err)
	}
	if marker != SchemaVersion {
		t.Fatalf("outpost_schema_version = %d, want %d", marker, SchemaVersion)
	}
}

func TestMigrate_Runner(t *testing.T) {
	url := testURL(t)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})

	t.Run("upgrade from the v1 layout keeps the data", func(t *testing.T) {
		name, conn := freshSchema(t, url)
		if _, err := conn.Exec(ctx, v1Layout); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO outpost_kv (bucket, k, v) VALUES ('tenants', 'ten_old', '{"tenant_id":"ten_old","name":"old","status":"active","metadata":{},"created_at":"2026-01-01T00:00:00Z"}')`); err != nil {
			t.Fatal(err)
		}
		db, err := Open(ctx, url, Options{Schema: name})
		if err != nil {
			t.Fatalf("open a v1 database: %v", err)
		}
		defer db.Close()
		wantAllApplied(t, conn)
		got, err := db.Tenant(ctx, "ten_old")
		if err != nil || got.Name != "old" {
			t.Fatalf("tenant written under v1 = %+v, %v; want it read back", got, err)
		}
		// The later migrations took effect: audit rows are append-only.
		if err := db.CreateTenant(ctx, &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "new"}); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "DELETE FROM outpost_kv WHERE bucket = 'audit'"); err == nil {
			t.Fatal("deleting audit rows after the upgrade succeeded, want it refused")
		}
	})

	t.Run("two instances starting together apply each migration once", func(t *testing.T) {
		name, conn := freshSchema(t, url)
		openTogether(t, url, name, 4)
		wantAllApplied(t, conn)
	})

	t.Run("reopening applies nothing again", func(t *testing.T) {
		db, name := openSchema(t, url)
		db.Close()
		db, err := Open(ctx, url, Options{Schema: name})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, conn := connIn(t, url, name)
		wantAllApplied(t, conn)
	})

	t.Run("a database newer than the build is refused", func(t *testing.T) {
		db, name := openSchema(t, url)
		if _, err := db.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", SchemaVersion+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err := Open(ctx, url, Options{Schema: name})
		if err == nil || !strings.Contains(err.Error(), "newer than this build") {
			t.Fatalf("err = %v, want the database refused as newer", err)
		}
	})

	t.Run("a failing migration leaves nothing behind", func(t *testing.T) {
		name, conn := freshSchema(t, url)
		bad := append(append([]migration(nil), migrations...), migration{version: SchemaVersion + 1, name: "broken", sql: "CREATE TABLE nope (x no_such_type)"})
		db, err := Open(ctx, url, Options{Schema: name})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = migrateTo(ctx, db.pool, name, bad)
		if err == nil || !strings.Contains(err.Error(), "broken") {
			t.Fatalf("err = %v, want migration broken named", err)
		}
		wantAllApplied(t, conn)
	})
}

// connIn is a connection whose search_path is schema name.
func connIn(t *testing.T, url, name string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return name, conn
}

func TestLoadMigrations_Numbering(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		wantErr string
	}{
		{"in order", fstest.MapFS{"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A")}, ""},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, "without a gap"},
		{"unnumbered", fstest.MapFS{"migrations/init.sql": file("A")}, "NNNN_name.sql"},
		{"none", fstest.MapFS{}, "no migrations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 2 || ms[0].sql != "A" || ms[1].sql != "B" || ms[1].name != "b" {
				t.Fatalf("migrations = %+v, want a then b", ms)
			}
		})
	}
}

// TestAudit_AppendOnly: the database itself refuses to rewrite or delete
// an audit event, while other rows stay writable.
func TestAudit_AppendOnly(t *testing.T) {
	ctx, db, _ := openWithTenant(t)
	for _, q := range []string{
		"UPDATE outpost_kv SET v = '{}' WHERE bucket = 'audit'",
		"DELETE FROM outpost_kv WHERE bucket = 'audit'",
		"UPDATE outpost_kv SET bucket = 'audit', k = '\\x00ff'::bytea WHERE bucket = 'tenants'",
	} {
		t.Run(q, func(t *testing.T) {
			_, err := db.pool.Exec(ctx, q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("err = %v, want the append-only refusal", err)
			}
		})
	}
	t.Run("other rows stay writable", func(t *testing.T) {
		tag, err := db.pool.Exec(ctx, "UPDATE outpost_kv SET v = v WHERE bucket = 'tenants'")
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update tenants: %v, %d rows; want 1", err, tag.RowsAffected())
		}
	})
	t.Run("the chain still verifies", func(t *testing.T) {
		n := 0
		if err := db.WalkAudit(ctx, func(*catalog.AuditEvent) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("WalkAudit: %d events, %v; want 1", n, err)
		}
	})
}

// openTogether opens n stores on schema at once (instances starting
// together) and closes them; each Open must succeed.
func openTogether(t *testing.T, url, schema string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(context.Background(), url, Options{Schema: schema, MaxConns: 2})
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
}
