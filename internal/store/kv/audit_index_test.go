package kv

import (
	"context"
	"go.etcd.io/bbolt"
	"sync/atomic"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// countingBackend counts the audit events a transaction reads.
type countingBackend struct {
	Backend
	reads atomic.Int64
}

type countingTx struct {
	Tx
	n *atomic.Int64
}

type countingBucket struct {
	Bucket
	n *atomic.Int64
}

func (b *countingBackend) View(ctx context.Context, fn func(Tx) error) error {
	return b.Backend.View(ctx, func(tx Tx) error { return fn(&countingTx{tx, &b.reads}) })
}

func (t *countingTx) Bucket(name []byte) Bucket {
	if string(name) == string(bAudit) || string(name) == string(iAuditTenant) {
		return &countingBucket{t.Tx.Bucket(name), t.n}
	}
	return t.Tx.Bucket(name)
}

func (b *countingBucket) Get(k []byte) []byte { b.n.Add(1); return b.Bucket.Get(k) }

func (b *countingBucket) Cursor() Cursor { return &countingCursor{b.Bucket.Cursor(), b.n} }

type countingCursor struct {
	Cursor
	n *atomic.Int64
}

func (c *countingCursor) Next() ([]byte, []byte) { c.n.Add(1); return c.Cursor.Next() }

// TestAuditEvents_TenantTypeIndex: a tenant's events of one type are read
// through the tenant+type index, not by a walk of the tenant's log (a
// tenant token asking for a rare type cost a full walk per request), also
// for events written before the index existed (backfilled on open).
func TestAuditEvents_TenantTypeIndex(t *testing.T) {
	db, path := openTemp(t)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme", Status: catalog.TenantActive}
	if err := db.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	const noise, rare = 2000, 4
	err := db.update(ctx, func(w *wtx) error {
		for i := range noise {
			if err := w.event(tn.TenantID, "lease.renewed", map[string]int{"i": i}); err != nil {
				return err
			}
			if i%(noise/rare) == 0 {
				if err := w.event(tn.TenantID, "mirror.fork_detected", map[string]int{"i": i}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, db *Store, cb *countingBackend) {
		t.Helper()
		cb.reads.Store(0)
		got, next, err := db.AuditEvents(ctx, store.AuditFilter{TenantID: tn.TenantID, EventType: "mirror.fork_detected"}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != rare || next != "" {
			t.Fatalf("got %d events (next %q), want %d", len(got), next, rare)
		}
		for _, ev := range got {
			if ev.EventType != "mirror.fork_detected" || ev.TenantID != tn.TenantID {
				t.Fatalf("got event %s of %s", ev.EventType, ev.TenantID)
			}
		}
		if n := cb.reads.Load(); n > 4*rare {
			t.Fatalf("read %d audit records for %d matching events: a walk of the tenant's log", n, rare)
		}
	}
	t.Run("new events", func(t *testing.T) {
		cb := &countingBackend{Backend: db.b}
		check(t, &Store{b: cb}, cb)
	})
	t.Run("events from before the index", func(t *testing.T) {
		err := db.bdb.Update(func(tx *bbolt.Tx) error {
			if err := tx.DeleteBucket(iAuditTenantTy); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(iAuditTenantTy); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Delete(kAuditTenantTyped)
		})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		re, err := openFile(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer re.Close()
		cb := &countingBackend{Backend: re.b}
		check(t, &Store{b: cb}, cb)
	})
}

// BenchmarkAuditEvents_TenantType: a tenant token filtering its 40,000
// events by a rare type (go test -bench AuditEvents -run ^$
// ./internal/store/kv).
func BenchmarkAuditEvents_TenantType(b *testing.B) {
	db, _ := openTemp(b)
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "acme", Status: catalog.TenantActive}
	if err := db.CreateTenant(ctx, tn); err != nil {
		b.Fatal(err)
	}
	err := db.update(ctx, func(w *wtx) error {
		for i := range 40000 {
			typ := "lease.renewed"
			if i%10000 == 0 {
				typ = "mirror.fork_detected"
			}
			if err := w.event(tn.TenantID, typ, map[string]int{"i": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, _, err := db.AuditEvents(ctx, store.AuditFilter{TenantID: tn.TenantID, EventType: "mirror.fork_detected"}, store.Page{Limit: 50})
		if err != nil || len(got) != 4 {
			b.Fatalf("got %d events, %v", len(got), err)
		}
	}
}
