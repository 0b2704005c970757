package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		err := RawUpdate(path, func(tx *bbolt.Tx) error {
			return tx.Bucket(bMeta).Put(kSchemaVersion, []byte("99"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
			t.Fatalf("Open of schema 99 = %v, want a schema version error", err)
		}
	})
}

func TestTamperAuditEvent_Behaviour(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*catalog.AuditEvent)
		reason string
	}{
		{"payload", func(ev *catalog.AuditEvent) { ev.Payload = json.RawMessage(`{"name":"Evil"}`) }, "hash does not match"},
		{"actor", func(ev *catalog.AuditEvent) { ev.ActorID = "someone-else" }, "hash does not match"},
		{"prev hash", func(ev *catalog.AuditEvent) { ev.PrevHash = strings.Repeat("0", 64) }, "prev_hash"},
		{"sequence", func(ev *catalog.AuditEvent) { ev.Seq = 9 }, "sequence"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openTemp(t)
			ctx := context.Background()
			for i := range 4 {
				if err := db.CreateTenant(ctx, &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: fmt.Sprint("T", i)}); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			if err := TamperAuditEvent(path, 3, tc.mutate); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var v audit.Verifier
			err = db.WalkAudit(ctx, v.Next)
			var broken *audit.BrokenLinkError
			if !errors.As(err, &broken) {
				t.Fatalf("WalkAudit after tampering = %v, want a broken link", err)
			}
			if broken.Seq != 3 && !(tc.name == "sequence" && broken.Seq == 9) {
				t.Fatalf("broken link at %d, want 3", broken.Seq)
			}
			if !strings.Contains(broken.Reason, tc.reason) {
				t.Fatalf("reason %q does not mention %q", broken.Reason, tc.reason)
			}
		})
	}
	t.Run("missing event", func(t *testing.T) {
		_, path := openTempClosed(t)
		err := TamperAuditEvent(path, 1, func(*catalog.AuditEvent) {})
		if catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("TamperAuditEvent of a missing event = %v, want not found", err)
		}
	})
}

func openTempClosed(t *testing.T) (*DB, string) {
	db, path := openTemp(t)
	db.Close()
	return db, path
}
