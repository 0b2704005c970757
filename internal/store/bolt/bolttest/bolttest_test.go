package bolttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/store/bolt/bolttest"
)

func openTemp(t testing.TB) (*bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db, path
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
			if err := bolttest.TamperAuditEvent(path, 3, tc.mutate); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, bolt.Options{})
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
		db, path := openTemp(t)
		db.Close()
		err := bolttest.TamperAuditEvent(path, 1, func(*catalog.AuditEvent) {})
		if catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("TamperAuditEvent of a missing event = %v, want not found", err)
		}
	})
}
