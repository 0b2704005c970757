package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/storetest"
)

// testURL returns the server the tests run against, failing (not skipping)
// when none is configured, so a CI without PostgreSQL cannot pass silently.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: start a server on loopback with " +
			"`export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"` (as root it installs Debian's " +
			"postgresql if missing), or set OUTPOST_SKIP_POSTGRES=1 to skip these tests")
	}
	return url
}

// openSchema opens a store in a fresh random schema, dropped at cleanup.
func openSchema(t testing.TB, url string) (*DB, string) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "outpost_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	db, err := Open(ctx, url, Options{Schema: name, MaxConns: 8})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return db, name
}

func TestStore_Suite(t *testing.T) {
	url := testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openSchema(t, url)
		return db
	})
}

func TestOpen_Behaviour(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()

	t.Run("reopen keeps data", func(t *testing.T) {
		db, name := openSchema(t, url)
		tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme", Status: catalog.TenantActive}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db2, err := Open(ctx, url, Options{Schema: name})
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		got, err := db2.Tenant(ctx, tn.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "acme" {
			t.Fatalf("name = %q, want %q", got.Name, "acme")
		}
	})

	t.Run("concurrent opens of a new schema", func(t *testing.T) {
		_, name := openSchema(t, url)
		other := name + "_c"
		t.Cleanup(func() {
			conn, err := pgx.Connect(ctx, url)
			if err == nil {
				conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{other}.Sanitize()+" CASCADE")
				conn.Close(ctx)
			}
		})
		openTogether(t, url, other, 4)
	})

	t.Run("newer schema version is refused", func(t *testing.T) {
		db, name := openSchema(t, url)
		if _, err := db.pool.Exec(ctx, "UPDATE outpost_schema_version SET version = 99"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err := Open(ctx, url, Options{Schema: name})
		if err == nil || !strings.Contains(err.Error(), "schema version 99") {
			t.Fatalf("err = %v, want schema version 99", err)
		}
	})

	t.Run("bad url names the problem", func(t *testing.T) {
		_, err := Open(ctx, "postgres://%zz", Options{})
		if err == nil || !strings.Contains(err.Error(), "parse url") {
			t.Fatalf("err = %v, want parse url error", err)
		}
	})

	t.Run("cancelled context fails a write", func(t *testing.T) {
		db, _ := openSchema(t, url)
		defer db.Close()
		cctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
		defer cancel()
		<-cctx.Done()
		err := db.CreateTenant(cctx, &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "x", Status: catalog.TenantActive})
		if err == nil {
			t.Fatal("err = nil, want context error")
		}
	})
}

// TestInstances_Serialize checks that two stores (two "instances") on one
// schema keep one unbroken audit chain under concurrent writes.
func TestInstances_Serialize(t *testing.T) {
	url := testURL(t)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	a, b := openPair(t, url)
	const per = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for _, db := range []*DB{a, b} {
		wg.Go(func() {
			for range per {
				errs <- db.CreateTenant(ctx, &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "t", Status: catalog.TenantActive})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	prev := ""
	err := a.WalkAudit(ctx, func(ev *catalog.AuditEvent) error {
		n++
		if ev.Seq != n {
			t.Errorf("event %d has seq %d", n, ev.Seq)
		}
		if ev.PrevHash != prev {
			t.Errorf("event %d prev_hash = %q, want %q", n, ev.PrevHash, prev)
		}
		prev = ev.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, int64(2*per); got != want {
		t.Fatalf("events = %d, want %d", got, want)
	}
}

// TestInstances runs the suite's concurrent tests from two instances on
// one schema, 16 writers each. Exclusive batches alternate on the write
// gate; shared writes (new releases, leases and their releases, seats,
// Idempotency-Keys) run side by side, and two that write one key (an
// entitlement's lease or seat counter, a lease, a seat, a key) conflict,
// and one runs again: exactly one of each conflicting write wins, the
// counters end where the leases and seats say, and the chain verifies.
func TestInstances(t *testing.T) {
	url := testURL(t)
	for _, c := range storetest.Concurrent {
		t.Run(c.Name, func(t *testing.T) {
			a, b := openPair(t, url)
			c.Run(t, []store.Store{a, b})
			logRetries(t, a, b)
			checkSeatCounts(t, a)
		})
	}
}

// logRetries logs how many shared transactions of dbs ran again.
func logRetries(t *testing.T, dbs ...*DB) {
	var n int64
	for _, db := range dbs {
		_, _, r := db.WriteStats()
		n += r
	}
	t.Logf("shared transactions run again: %d", n)
}
