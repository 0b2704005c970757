package kvstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/store/postgres"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/webhook/kvstore"
	"github.com/outpost/outpost/internal/webhook/storetest"
)

// TestStore_ContractPostgres runs the contract on the control plane's
// PostgreSQL backend, each store in a schema of its own. Like the store's
// own tests it needs OUTPOST_TEST_POSTGRES_URL (scripts/postgres.sh), or
// OUTPOST_SKIP_POSTGRES=1 to skip.
func TestStore_ContractPostgres(t *testing.T) {
	url := os.Getenv("OUTPOST_TEST_POSTGRES_URL")
	if url == "" {
		if os.Getenv("OUTPOST_SKIP_POSTGRES") == "1" {
			t.Skip("OUTPOST_SKIP_POSTGRES=1")
		}
		t.Fatal("OUTPOST_TEST_POSTGRES_URL is not set: `export OUTPOST_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"`, or OUTPOST_SKIP_POSTGRES=1 to skip")
	}
	storetest.Run(t, storetest.Factory{New: func(t *testing.T) webhook.Store {
		var b [6]byte
		_, _ = rand.Read(b[:])
		schema := "outpost_test_wh_" + hex.EncodeToString(b[:])
		ctx := context.Background()
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatalf("open %s: %v", schema, err)
		}
		t.Cleanup(func() {
			db.Close()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		})
		return kvstore.New(db.Backend())
	}})
}
