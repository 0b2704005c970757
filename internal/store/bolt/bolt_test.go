package bolt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/storetest"
)

func openTemp(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

func TestStore_Suite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t)
		return db
	})
}

func TestOpen_Behaviour(t *testing.T) {
	t.Run("second open fails fast with a clear message", func(t *testing.T) {
		db, path := openTemp(t)
		defer db.Close()
		start := time.Now()
		_, err := Open(path, Options{})
		elapsed := time.Since(start)
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("second Open error = %v, want ErrInUse", err)
		}
		if want := "data dir is in use by another process (is the daemon running?)"; !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
		if elapsed > time.Second {
			t.Fatalf("second Open took %v, want < 1s", elapsed)
		}
	})
	t.Run("file mode 0600", func(t *testing.T) {
		db, path := openTemp(t)
		defer db.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("mode = %o, want 600", got)
		}
	})
	t.Run("data survives reopen", func(t *testing.T) {
		db, path := openTemp(t)
		ctx := context.Background()
		tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Acme"}
		if err := db.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		got, err := db.Tenant(ctx, tn.TenantID)
		if err != nil || got.Name != "Acme" {
			t.Fatalf("Tenant after reopen = %+v, %v", got, err)
		}
		// The chain continues from the stored head.
		if err := db.CreateProduct(ctx, &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "P"}); err != nil {
			t.Fatal(err)
		}
		var v audit.Verifier
		if err := db.WalkAudit(ctx, v.Next); err != nil {
			t.Fatal(err)
		}
		if v.Count() != 2 {
			t.Fatalf("chain has %d events, want 2", v.Count())
		}
	})
	t.Run("unknown schema version refused", func(t *testing.T) {
		db, path := openTemp(t)
		db.Close()
		bdb, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = bdb.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bMeta).Put(kSchemaVersion, []byte("99"))
		})
		if cerr := bdb.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
			t.Fatalf("Open of schema 99 = %v, want a schema version error", err)
		}
	})
}
