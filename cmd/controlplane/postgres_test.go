package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresURL returns the test server's URL with a fresh schema as its
// search_path, dropped at cleanup.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\", or set OUTPOST_SKIP_POSTGRES=1")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "outpost_cp_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestControlplane_PostgresStore(t *testing.T) {
	t.Run("config is checked", func(t *testing.T) {
		c := newCP(t)
		for _, tc := range []struct {
			name string
			env  []string
			want string
		}{
			{"unknown store", []string{"OUTPOST_STORE=mysql"}, `store "mysql"`},
			{"postgres without url", []string{"OUTPOST_STORE=postgres"}, "postgres_url is required"},
		} {
			c.env = tc.env
			_, errs, err := c.run("init")
			if err == nil || !strings.Contains(errs, tc.want) {
				t.Errorf("%s: err %v, stderr %q, want %q", tc.name, err, errs, tc.want)
			}
		}
	})
	t.Run("init, serve and the CLI share one database", func(t *testing.T) {
		pgURL := postgresURL(t)
		c := newCP(t)
		c.env = []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgURL}
		token := c.mustRun("init")
		if !strings.HasPrefix(token, "opt_") {
			t.Fatalf("init printed %q, want an admin token", token)
		}
		if _, errs, err := c.run("init"); err == nil || !strings.Contains(errs, "already initialized") {
			t.Fatalf("second init: err %v, stderr %q", err, errs)
		}
		c.start()
		// Unlike bolt, the store is not locked by the serving process.
		c.mustRun("token", "create", "--role", "admin")
		if got := c.mustRun("audit", "verify"); !strings.Contains(got, "ok") {
			t.Fatalf("audit verify: %q", got)
		}
		c.env = append(c.env, "OUTPOST_SERVER="+c.url(), "OUTPOST_TOKEN="+token)
		tenant := c.mustRun("tenant", "create", "acme")
		if !strings.HasPrefix(tenant, "ten_") {
			t.Fatalf("tenant create printed %q", tenant)
		}
		if _, errs, err := c.run("backup", "--out", t.TempDir()+"/b.db"); err == nil || !strings.Contains(errs, "backup") {
			t.Fatalf("backup: err %v, stderr %q, want a clear refusal", err, errs)
		}
	})
}
