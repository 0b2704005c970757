package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store/kv"
)

// waitFor polls cond every 10 ms until it holds, failing after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openPair opens two instances on one fresh schema, closed at cleanup.
func openPair(t *testing.T, url string) (*DB, *DB) {
	t.Helper()
	a, name := openSchema(t, url)
	t.Cleanup(func() { a.Close() })
	return a, moreInstances(t, url, name, 1)[0]
}

// moreInstances opens n more stores on schema (instances of one
// database), closed when tb ends.
func moreInstances(tb testing.TB, url, schema string, n int) []*DB {
	tb.Helper()
	var dbs []*DB
	for range n {
		db, err := Open(context.Background(), url, Options{Schema: schema, MaxConns: 8})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	return dbs
}

// count runs a count query on the schema of db.
func count(t *testing.T, db *DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpdateShared_SeesExclusiveCommit: a shared transaction that starts
// while an exclusive one holds the write gate waits for it and then reads
// what it wrote: its snapshot is taken after the wait. Were it taken
// before (a gate that is not the transaction's first statement, or one
// that takes a snapshot), it would read the old value and could write on
// top of a state that no longer holds.
func TestUpdateShared_SeesExclusiveCommit(t *testing.T) {
	db, _ := openSchema(t, testURL(t))
	defer db.Close()
	ctx := context.Background()
	bk, x := []byte("test"), []byte("x")
	be := backend{db}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(be.Update(ctx, func(tx kv.Tx) error { return tx.Bucket(bk).Put(x, []byte("1")) }))

	held, release := make(chan struct{}), make(chan struct{})
	exclusive := make(chan error, 1)
	go func() {
		exclusive <- be.Update(ctx, func(tx kv.Tx) error {
			tx.Bucket(bk).Get([]byte("other")) // begins: the gate is taken
			close(held)
			<-release
			return tx.Bucket(bk).Put(x, []byte("2"))
		})
	}()
	<-held
	var runs int
	var saw []byte
	shared := make(chan error, 1)
	go func() {
		shared <- be.UpdateShared(ctx, nil, func(tx kv.Tx) error {
			runs++
			saw = bytes.Clone(tx.Bucket(bk).Get(x))
			return tx.Bucket(bk).Put([]byte("y"), saw)
		})
	}()
	waitFor(t, "the shared transaction to wait for the gate", func() bool {
		return count(t, db, "SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND NOT granted") > 0
	})
	close(release)
	must(<-exclusive)
	must(<-shared)
	if got, want := string(saw), "2"; got != want {
		t.Fatalf("shared transaction read x = %q after the exclusive commit, want %q (runs %d)", got, want, runs)
	}
}

// The key the increment tests count on.
var counterBucket, counterKey = []byte("test"), []byte("n")

func increment(tx kv.Tx) error {
	v, _ := strconv.Atoi(string(tx.Bucket(counterBucket).Get(counterKey)))
	return tx.Bucket(counterBucket).Put(counterKey, []byte(strconv.Itoa(v+1)))
}

// increments runs 400 increments of the counter from 16 goroutines, on a
// and b in turn, in shared transactions with hot keys hot (mixed: every
// fifth increment of a quarter of the goroutines in an exclusive one);
// it fails t on an error and checks that all counted.
func increments(t *testing.T, a, b *DB, hot []kv.BucketKey, mixed bool) {
	t.Helper()
	ctx := context.Background()
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines*each)
	for i := range 2 * goroutines {
		be := backend{[]*DB{a, b}[i%2]}
		wg.Go(func() {
			for j := range each {
				if mixed && i%4 == 3 && j%5 == 0 {
					errs <- be.Update(ctx, increment)
					continue
				}
				errs <- be.UpdateShared(ctx, hot, increment)
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
	var got int
	err := a.view(ctx, func(tx *kvTx) error {
		got, _ = strconv.Atoi(string(tx.Bucket(counterBucket).Get(counterKey)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * goroutines * each; got != want {
		t.Fatalf("n = %d after %d increments", got, want)
	}
}

// TestUpdateShared_NoLostUpdates: increments of one key from shared
// transactions on two instances, and from exclusive ones, all count: two
// shared transactions that write the key cannot both commit as written.
func TestUpdateShared_NoLostUpdates(t *testing.T) {
	a, b := openPair(t, testURL(t))
	increments(t, a, b, nil, true)
	logRetries(t, a, b)
}

// TestUpdateShared_DeletedRowNotWrittenBack: a shared transaction reads
// a counter, another deletes it (a count that fell to zero) and commits,
// and the first writes the counter from what it read. The first must run
// again and count from the deletion: an upsert of the row would put it
// back with a count that includes the deleted one (migration 5), as a
// lease counter did across two instances.
func TestUpdateShared_DeletedRowNotWrittenBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(tx kv.Tx) error // the other transaction's write
		want   string
	}{
		{"deleted", func(tx kv.Tx) error { return tx.Bucket(counterBucket).Delete(counterKey) }, "1"},
		{"updated", func(tx kv.Tx) error { return tx.Bucket(counterBucket).Put(counterKey, []byte("5")) }, "6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := openPair(t, testURL(t))
			ctx := context.Background()
			if err := (backend{a}).Update(ctx, func(tx kv.Tx) error { return tx.Bucket(counterBucket).Put(counterKey, []byte("1")) }); err != nil {
				t.Fatal(err)
			}
			read, goOn := make(chan struct{}), make(chan struct{})
			runs := 0
			done := make(chan error, 1)
			go func() {
				done <- (backend{b}).UpdateShared(ctx, nil, func(tx kv.Tx) error {
					runs++
					v, _ := strconv.Atoi(string(tx.Bucket(counterBucket).Get(counterKey)))
					if runs == 1 {
						close(read)
						<-goOn
					}
					return tx.Bucket(counterBucket).Put(counterKey, []byte(strconv.Itoa(v+1)))
				})
			}()
			<-read
			if err := (backend{a}).UpdateShared(ctx, nil, func(tx kv.Tx) error {
				tx.Bucket(counterBucket).Get(counterKey)
				return tc.change(tx)
			}); err != nil {
				t.Fatal(err)
			}
			close(goOn)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			var got string
			if err := a.view(ctx, func(tx *kvTx) error { got = string(tx.Bucket(counterBucket).Get(counterKey)); return nil }); err != nil {
				t.Fatal(err)
			}
			if got != tc.want || runs != 2 {
				t.Fatalf("counter = %q after %d runs, want %q after 2 (the write on a stale read committed)", got, runs, tc.want)
			}
		})
	}
}

// TestUpdateShared_HotKeys: increments of one hot key from shared
// transactions on two instances that both take their hot-key locks (as
// after a conflict) all count, and none runs again: they wait for each
// other before their snapshots are taken. A failed one releases its
// locks, and none is left held.
func TestUpdateShared_HotKeys(t *testing.T) {
	a, b := openPair(t, testURL(t))
	hot := []kv.BucketKey{{Bucket: counterBucket, Key: counterKey}}
	for _, db := range []*DB{a, b} {
		db.hotUntil.Store(time.Now().Add(time.Hour).UnixNano())
	}
	increments(t, a, b, hot, false)
	_, _, ra := a.WriteStats()
	_, _, rb := b.WriteStats()
	if ra+rb != 0 {
		t.Errorf("%d shared transactions ran again, want 0 with the hot-key locks taken first", ra+rb)
	}
	boom := errors.New("boom")
	err := (backend{a}).UpdateShared(context.Background(), hot, func(tx kv.Tx) error {
		if err := increment(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed transaction: %v, want %v", err, boom)
	}
	id := hotLocks(hot)[0]
	q := "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1"
	if held := count(t, a, q, uint32(uint64(id)>>32), uint32(id)); held != 0 {
		t.Errorf("%d hot-key locks still held", held)
	}
}

// TestUpdateShared_ExclusiveNotStarved: exclusive writes go through while
// shared ones from two instances keep the gate busy (the lock manager
// queues a shared request behind a waiting exclusive one).
func TestUpdateShared_ExclusiveNotStarved(t *testing.T) {
	url := testURL(t)
	a, b := openPair(t, url)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 8 {
		be := backend{[]*DB{a, b}[i%2]}
		wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				err := be.UpdateShared(ctx, nil, func(tx kv.Tx) error {
					tx.Bucket([]byte("test")).Get([]byte("x"))
					time.Sleep(time.Millisecond) // hold the gate a while
					return tx.Bucket([]byte("test")).Put(fmt.Appendf(nil, "k%d-%d", i, j), []byte("v"))
				})
				if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 20 {
		xctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := backend{a}.Update(xctx, func(tx kv.Tx) error {
			return tx.Bucket([]byte("test")).Put([]byte("x"), []byte(strconv.Itoa(i)))
		})
		cancel()
		if err != nil {
			t.Fatalf("exclusive write %d under shared load: %v", i, err)
		}
	}
	stop()
	wg.Wait()
}

// TestSequencer_ChainsLeftovers: events a shared write left pending (its
// instance stopped before the sequencer ran) are chained by the next
// instance to open, without a read asking for them, in the order of
// their keys and, within a row, of its events; rows of one event (as
// builds before batched rows stored them) among them. The chain
// verifies.
func TestSequencer_ChainsLeftovers(t *testing.T) {
	url := testURL(t)
	a, name := openSchema(t, url)
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_test"})
	if err := a.CreateTenant(ctx, &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "T"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// What a shared write commits: its change and its event, pending.
	now := time.Now().UTC()
	var ids []string
	for i := range 3 {
		var evs []*catalog.AuditEvent
		for j := range 1 + i%2 { // rows of 1, 2 and 1 events
			evs = append(evs, &catalog.AuditEvent{EventID: catalog.NewID(catalog.PrefixEvent), EventType: "release.created", ActorType: "user", ActorID: "usr_test",
				Payload: json.RawMessage(`{}`), CreatedAt: now.Add(time.Duration(i-j) * time.Microsecond)})
		}
		k, raw, err := kv.PendingEvents(evs)
		if len(evs) == 1 {
			k, raw, err = kv.PendingEvent(evs[0]) // version 1
		}
		if err != nil {
			t.Fatal(err)
		}
		copy(k, []byte{0, 0, 0, 0, 0, 0, 0, byte(i)}) // the order by key is checked
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(context.Background(), "INSERT INTO "+pgx.Identifier{name, "outpost_kv"}.Sanitize()+" (bucket, k, v) VALUES ('audit_pending', $1, $2)", k, raw)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			ids = append(ids, ev.EventID)
		}
	}
	b, err := Open(context.Background(), url, Options{Schema: name, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, "the sequencer to chain the pending events", func() bool {
		return count(t, b, "SELECT count(*) FROM outpost_kv WHERE bucket = 'audit_pending'") == 0
	})
	if got := count(t, b, "SELECT count(*) FROM outpost_kv WHERE bucket = 'audit'"); got != 5 {
		t.Fatalf("chain has %d events, want 5", got)
	}
	var v audit.Verifier
	var got []string
	err = b.WalkAudit(ctx, func(ev *catalog.AuditEvent) error {
		if ev.EventType == "release.created" {
			got = append(got, ev.EventID)
		}
		return v.Next(ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("chained %v, want %v in key order", got, ids)
	}
}
