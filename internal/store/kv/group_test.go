package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"go.etcd.io/bbolt"
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

// lostCommit is a backend whose write transactions commit and then
// report an error, as when the connection drops before COMMIT's answer.
type lostCommit struct {
	Backend
	updates atomic.Int64
}

var errLostCommit = errors.New("connection lost after COMMIT")

func (b *lostCommit) Update(ctx context.Context, fn func(Tx) error) error {
	if b.updates.Add(1) == 1 {
		// The first transaction is slow, so the other calls queue up
		// and share the next one.
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Backend.Update(ctx, fn); err != nil {
		return err
	}
	return errLostCommit
}

// groupedStore is a store with a catalog cache on b, closed when t ends,
// and a context with an actor.
func groupedStore(t *testing.T, b Backend) (*Store, context.Context) {
	t.Helper()
	db := New(b, Options{Cache: true})
	t.Cleanup(func() { db.Close() })
	return db, catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
}

// createTenants creates n tenants named name(i) at once, the first
// starting alone (so that, with a slow first transaction, the others
// queue and share the next batch), and returns their ids and errors.
func createTenants(ctx context.Context, db *Store, n int, name func(int) string) (ids []string, errs []error) {
	ids, errs = make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = catalog.NewID(catalog.PrefixTenant)
		wg.Go(func() { errs[i] = db.CreateTenant(ctx, &catalog.Tenant{TenantID: ids[i], Name: name(i)}) })
		if i == 0 {
			time.Sleep(10 * time.Millisecond) // the slow first transaction is under way
		}
	}
	wg.Wait()
	return ids, errs
}

// TestUpdateGrouped_LostCommitNotRedone: a batch whose commit failed may
// have committed, so its calls are not run again (a create would then
// answer "already exists" for the tenant it created): each gets the
// commit's error, and what they wrote is there once.
func TestUpdateGrouped_LostCommitNotRedone(t *testing.T) {
	b := &lostCommit{Backend: Bolt(openBuckets(t))}
	db, ctx := groupedStore(t, b)
	const n = 16
	ids, errs := createTenants(ctx, db, n, func(i int) string { return fmt.Sprintf("t%d", i) })
	for i := range n {
		if !errors.Is(errs[i], errLostCommit) {
			t.Errorf("create %d: err %v, want the lost commit's error (not a second run)", i, errs[i])
		}
		if _, err := db.Tenant(ctx, ids[i]); err != nil {
			t.Errorf("tenant %d: %v; want it committed once", i, err)
		}
	}
	if got := b.updates.Load(); got >= n {
		t.Fatalf("%d write transactions for %d calls: no batch formed, the test proves nothing", got, n)
	}
}

// abortingReads is a backend whose reads fail once fail is set: fn sees
// every key as absent, nothing commits, and Update reports ErrAborted, as
// the PostgreSQL backend does when a query of the transaction failed.
type abortingReads struct {
	Backend
	fail    atomic.Bool
	updates atomic.Int64
}

var errRollback = errors.New("roll back")

func (b *abortingReads) Update(ctx context.Context, fn func(Tx) error) error {
	if !b.fail.Load() {
		return b.Backend.Update(ctx, fn)
	}
	if b.updates.Add(1) == 1 {
		time.Sleep(50 * time.Millisecond) // the others queue and share the next batch
	}
	err := b.Backend.Update(ctx, func(tx Tx) error {
		if err := fn(blindTx{tx}); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRedo) {
		return err
	}
	return fmt.Errorf("%w: get: connection reset by peer", ErrAborted)
}

// sharedAborting adds the shared mode to abortingReads.
type sharedAborting struct{ *abortingReads }

func (b sharedAborting) UpdateShared(ctx context.Context, _ []BucketKey, fn func(Tx) error) error {
	return b.Update(ctx, fn)
}

func (b sharedAborting) TryUpdateSolo(ctx context.Context, fn func(Tx) error) (bool, error) {
	return true, b.Update(ctx, fn)
}

type blindTx struct{ Tx }

func (t blindTx) Bucket(name []byte) Bucket { return blindBucket{t.Tx.Bucket(name)} }

type blindBucket struct{ Bucket }

func (blindBucket) Get([]byte) []byte { return nil }

// TestUpdateGrouped_AbortedReadsFailEveryCall: when a read of a batch's
// transaction failed, no call answers from the value it could not read
// (a lease refused with "entitlement not found" while the database
// restarted, which the Idempotency-Key layer then kept as the answer):
// every call, exclusive or shared, alone or batched, gets the failure.
func TestUpdateGrouped_AbortedReadsFailEveryCall(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			bdb := openBuckets(t)
			ab := &abortingReads{Backend: Bolt(bdb)}
			var b Backend = ab
			if shared {
				b = sharedAborting{ab}
			}
			db := New(b, Options{})
			defer db.Close()
			ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
			p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "P"}
			if err := db.CreateProduct(ctx, p); err != nil {
				t.Fatal(err)
			}
			const n = 16
			rels := make([]*catalog.Release, n)
			for i := range rels {
				rels[i] = &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: fmt.Sprintf("1.0.%d", i)}
				if err := db.CreateRelease(ctx, rels[i]); err != nil {
					t.Fatal(err)
				}
			}
			ab.fail.Store(true)
			errs := make([]error, 2*n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = db.CreateRelease(ctx, &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: fmt.Sprintf("2.0.%d", i)})
				})
				wg.Go(func() { _, errs[n+i] = db.RevokeRelease(ctx, rels[i].ReleaseID, time.Now()) })
				if i == 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			wg.Wait()
			for i, err := range errs {
				if !errors.Is(err, ErrAborted) {
					t.Errorf("call %d: err %v, want the aborted transaction's", i, err)
				}
			}
			if got := ab.updates.Load(); got >= 2*n {
				t.Fatalf("%d transactions for %d calls: no batch formed, the test proves nothing", got, 2*n)
			}
		})
	}
}

// openBuckets opens a bbolt file with every bucket, closed at cleanup.
func openBuckets(t *testing.T) *bbolt.DB {
	t.Helper()
	bdb, err := bbolt.Open(filepath.Join(t.TempDir(), "outpost.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bdb.Close() })
	if err := bdb.Update(func(tx *bbolt.Tx) error {
		for _, name := range Buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return bdb
}

// refusing is a backend whose commits are refused, as PostgreSQL refuses
// one that breaks a constraint, when the transaction holds a tenant named
// "bad": nothing of it is committed.
type refusing struct {
	Backend
	updates atomic.Int64
	refused atomic.Int64 // refused transactions that held more than one new tenant
}

func countKeys(b Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

func (b *refusing) Update(ctx context.Context, fn func(Tx) error) error {
	if b.updates.Add(1) == 1 {
		time.Sleep(50 * time.Millisecond) // the others queue and share the next batch
	}
	return b.Backend.Update(ctx, func(tx Tx) error {
		before := countKeys(tx.Bucket(bTenants))
		if err := fn(tx); err != nil {
			return err
		}
		c := tx.Bucket(bTenants).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Contains(v, []byte(`"name":"bad"`)) {
				if countKeys(tx.Bucket(bTenants))-before > 1 {
					b.refused.Add(1)
				}
				return fmt.Errorf("commit: %w: %w", ErrRefused, catalog.Errorf(catalog.ECONFLICT, "the database refused the write"))
			}
		}
		return nil
	})
}

// TestUpdateGrouped_RefusedCommitRedoneAlone: when the database refuses a
// batch's commit for one call's write, nothing committed, so the calls run
// again one by one: only that call fails, with a conflict, and every
// other call's write is there once.
func TestUpdateGrouped_RefusedCommitRedoneAlone(t *testing.T) {
	b := &refusing{Backend: Bolt(openBuckets(t))}
	db, ctx := groupedStore(t, b)
	const n, bad = 16, 7
	ids, errs := createTenants(ctx, db, n, func(i int) string {
		if i == bad {
			return "bad"
		}
		return fmt.Sprintf("t%d", i)
	})
	for i := range n {
		_, gerr := db.Tenant(ctx, ids[i])
		if i == bad {
			if !errors.Is(errs[i], ErrRefused) || catalog.ErrorCode(errs[i]) != catalog.ECONFLICT {
				t.Errorf("the refused create: err %v, want ErrRefused with code conflict", errs[i])
			}
			if catalog.ErrorCode(gerr) != catalog.ENOTFOUND {
				t.Errorf("the refused tenant: %v, want not found", gerr)
			}
			continue
		}
		if errs[i] != nil || gerr != nil {
			t.Errorf("create %d: %v, read back: %v; want it committed", i, errs[i], gerr)
		}
	}
	if b.refused.Load() == 0 {
		t.Fatal("the bad create never shared a refused transaction with another: the test proves nothing")
	}
}
