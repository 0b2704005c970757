package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

// TestUpdateGrouped_Isolation: concurrent grouped calls commit together,
// a call refused before writing leaves the others alone, and a call that
// fails after writing leaves nothing behind while the others still
// commit (the batch is redone call by call).
func TestUpdateGrouped_Isolation(t *testing.T) {
	db, _ := openTemp(t)
	defer db.Close()
	ctx := context.Background()
	boom := errors.New("boom")
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.updateGrouped(ctx, nil, func(w *wtx) error {
				k := []byte(fmt.Sprintf("group-test-%02d", i))
				switch i % 3 {
				case 1: // refused before writing
					return catalog.Errorf(catalog.ECONFLICT, "refused %d", i)
				case 2: // fails after writing
					if err := w.Bucket(bMeta).Put(k, []byte("x")); err != nil {
						return err
					}
					return boom
				}
				return w.Bucket(bMeta).Put(k, []byte("ok"))
			})
		})
	}
	wg.Wait()
	err := db.view(ctx, func(tx Tx) error {
		for i := range n {
			got := tx.Bucket(bMeta).Get([]byte(fmt.Sprintf("group-test-%02d", i)))
			switch i % 3 {
			case 0:
				if errs[i] != nil || string(got) != "ok" {
					t.Errorf("call %d: err %v, stored %q; want committed", i, errs[i], got)
				}
			case 1:
				if catalog.ErrorCode(errs[i]) != catalog.ECONFLICT || got != nil {
					t.Errorf("call %d: err %v, stored %q; want its refusal and nothing", i, errs[i], got)
				}
			case 2:
				if !errors.Is(errs[i], boom) || got != nil {
					t.Errorf("call %d: err %v, stored %q; want boom and nothing", i, errs[i], got)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCatalogWrites_GroupedRedo: concurrent catalog writes share commits;
// one whose audit hook fails (it fails after writing) leaves nothing
// behind, every other commits with its single event, and the chain
// verifies.
func TestCatalogWrites_GroupedRedo(t *testing.T) {
	db, _ := openTemp(t)
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	boom := errors.New("boom")
	db.SetAuditHook(func(_ Tx, ev *catalog.AuditEvent) error {
		if strings.Contains(string(ev.Payload), `"name":"bad"`) {
			return boom
		}
		return nil
	})
	const n = 32
	errs := make([]error, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = catalog.NewID(catalog.PrefixTenant)
		name := "good"
		if i%8 == 3 {
			name = "bad"
		}
		wg.Go(func() { errs[i] = db.CreateTenant(ctx, &catalog.Tenant{TenantID: ids[i], Name: name}) })
	}
	wg.Wait()
	for i := range n {
		_, err := db.Tenant(ctx, ids[i])
		if i%8 == 3 {
			if !errors.Is(errs[i], boom) || catalog.ErrorCode(err) != catalog.ENOTFOUND {
				t.Errorf("tenant %d: create err %v, read err %v; want boom and not found", i, errs[i], err)
			}
			continue
		}
		if errs[i] != nil || err != nil {
			t.Errorf("tenant %d: create err %v, read err %v; want both nil", i, errs[i], err)
		}
	}
	var v audit.Verifier
	events := 0
	if err := db.WalkAudit(ctx, func(ev *catalog.AuditEvent) error { events++; return v.Next(ev) }); err != nil {
		t.Fatal(err)
	}
	if want := n - n/8; events != want {
		t.Fatalf("audit events = %d, want %d", events, want)
	}
}
