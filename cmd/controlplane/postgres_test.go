package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

// keysOf lists the active signing key ids of an instance.
func keysOf(t *testing.T, c *cp) []string {
	t.Helper()
	var kl struct {
		Items []struct {
			KeyID  string `json:"key_id"`
			Status string `json:"status"`
		} `json:"items"`
	}
	out := c.mustRun("keys", "list", "--output", "json")
	if err := json.Unmarshal([]byte(out), &kl); err != nil {
		t.Fatalf("keys list: %v: %s", err, out)
	}
	var ids []string
	for _, k := range kl.Items {
		if k.Status == "active" {
			ids = append(ids, k.KeyID)
		}
	}
	sort.Strings(ids)
	return ids
}

func TestControlplane_PostgresJoin(t *testing.T) {
	pgURL := postgresURL(t)
	kek := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(kek, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgURL}
	a, b := newCP(t), newCP(t)
	a.env = append(env, "OUTPOST_KEY_ENCRYPTION_KEY_FILE="+kek)
	b.env = a.env
	t.Run("join before init refuses", func(t *testing.T) {
		_, errs, err := b.run("init", "--join")
		if err == nil || !strings.Contains(errs, "not initialized: run `controlplane init` (without --join)") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
	})
	token := a.mustRun("init")
	if !strings.HasPrefix(token, "opt_") {
		t.Fatalf("init printed %q", token)
	}
	t.Run("init on an initialised database refuses and says how to join", func(t *testing.T) {
		_, errs, err := b.run("init")
		if err == nil || !strings.Contains(errs, "already initialized") || !strings.Contains(errs, "controlplane init --join") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
		if _, err := os.Stat(filepath.Join(b.dataDir, "keys")); !os.IsNotExist(err) {
			t.Errorf("the refused init made keys: %v", err)
		}
	})
	t.Run("join without the KEK refuses", func(t *testing.T) {
		b.env = env
		defer func() { b.env = a.env }()
		_, errs, err := b.run("init", "--join")
		if err == nil || !strings.Contains(errs, "--join needs key_encryption_key_file") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
	})
	t.Run("join with another KEK refuses", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "kek")
		os.WriteFile(other, []byte(strings.Repeat("cd", 32)), 0o600)
		b.env = append(env, "OUTPOST_KEY_ENCRYPTION_KEY_FILE="+other)
		defer func() { b.env = a.env }()
		_, errs, err := b.run("init", "--join")
		if err == nil || !strings.Contains(errs, "same file on every instance") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
	})
	t.Run("join takes the same keys and makes no token", func(t *testing.T) {
		out := b.mustRun("init", "--join")
		if !strings.Contains(out, "joined") || strings.Contains(out, "opt_") {
			t.Fatalf("join printed %q", out)
		}
		if got, want := keysOf(t, b), keysOf(t, a); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("B's keys %v, A's %v", got, want)
		}
		for _, f := range []string{"data-encryption.key", "keys/tuf/root.json"} {
			ga, _ := os.ReadFile(filepath.Join(a.dataDir, f))
			gb, err := os.ReadFile(filepath.Join(b.dataDir, f))
			if err != nil || !bytes.Equal(ga, gb) {
				t.Errorf("%s differs between the instances (%v)", f, err)
			}
		}
		var tl struct{ Items []map[string]any }
		if err := json.Unmarshal([]byte(a.mustRun("token", "list", "--output", "json")), &tl); err != nil || len(tl.Items) != 1 {
			t.Errorf("tokens after the join: %v (%v), want the first admin token only", tl.Items, err)
		}
	})
	t.Run("a repeated join is harmless", func(t *testing.T) {
		if out := b.mustRun("init", "--join"); !strings.Contains(out, "joined") {
			t.Fatalf("second join printed %q", out)
		}
	})
	t.Run("a data dir with other keys is not overwritten", func(t *testing.T) {
		c := newCP(t)
		c.env = a.env
		own := c.mustRun("keys", "generate")
		_, errs, err := c.run("init", "--join")
		if err == nil || !strings.Contains(errs, "already holds keys that are not the database's") {
			t.Fatalf("err %v, stderr %q", err, errs)
		}
		if got := keysOf(t, c); len(got) != 1 || got[0] != own {
			t.Errorf("keys after the refused join: %v, want only %s", got, own)
		}
	})
	t.Run("a key generated on one instance reaches the other", func(t *testing.T) {
		newID := a.mustRun("keys", "generate")
		got := keysOf(t, b) // the command pulls before it runs
		if !slices.Contains(got, newID) || len(got) != 2 {
			t.Fatalf("B's active keys %v, want 2 with %s", got, newID)
		}
	})
}

// TestControlplane_PostgresShareLater: an instance initialised without a
// key-encryption key shares its keys the first time it opens with one,
// and only then can another join.
func TestControlplane_PostgresShareLater(t *testing.T) {
	for _, tc := range []struct {
		name  string
		share []string
		want  string
	}{
		{"keys share", []string{"keys", "share"}, "keys shared"},
		{"any local command", []string{"audit", "verify"}, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgURL := postgresURL(t)
			kek := filepath.Join(t.TempDir(), "kek")
			if err := os.WriteFile(kek, []byte(strings.Repeat("ef", 32)), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"OUTPOST_STORE=postgres", "OUTPOST_POSTGRES_URL=" + pgURL}
			a, b := newCP(t), newCP(t)
			a.env = env
			_, errs, err := a.run("init")
			if err != nil || !strings.Contains(errs, "no key_encryption_key_file") {
				t.Fatalf("init without a KEK: err %v, stderr %q; want a note", err, errs)
			}
			withKEK := append(env, "OUTPOST_KEY_ENCRYPTION_KEY_FILE="+kek)
			b.env = withKEK
			if _, errs, err := b.run("init", "--join"); err == nil || !strings.Contains(errs, "run `controlplane keys share`") {
				t.Fatalf("join before A shares: err %v, stderr %q", err, errs)
			}
			a.env = withKEK
			if out := a.mustRun(tc.share...); !strings.Contains(out, tc.want) {
				t.Fatalf("%v printed %q, want %q", tc.share, out, tc.want)
			}
			b.mustRun("init", "--join")
			if got, want := keysOf(t, b), keysOf(t, a); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("B's keys %v, A's %v", got, want)
			}
			if out := a.mustRun("keys", "share"); !strings.Contains(out, "already holds the shared keys") {
				t.Errorf("keys share once shared printed %q", out)
			}
		})
	}
}
