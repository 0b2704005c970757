package state

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestGroupCommit_IsolatesFailures(t *testing.T) {
	_, db, _ := newTestLedger(t)
	g := &groupCommit{db: db}
	boom := errors.New("boom")
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.do(func(tx *bolt.Tx) error {
				if err := tx.Bucket(bucketCounts).Put([]byte(fmt.Sprintf("k%02d", i)), present); err != nil {
					return err
				}
				if i%10 == 3 {
					return boom
				}
				return nil
			})
		}()
	}
	wg.Wait()
	err := db.View(func(tx *bolt.Tx) error {
		for i := range n {
			failed := i%10 == 3
			if !errors.Is(errs[i], boom) != !failed {
				t.Errorf("call %d: got error %v, want failure %v", i, errs[i], failed)
			}
			stored := tx.Bucket(bucketCounts).Get([]byte(fmt.Sprintf("k%02d", i))) != nil
			if stored == failed {
				t.Errorf("call %d: stored %v, want %v", i, stored, !failed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The group is free again: a further call leads its own batch.
	if err := g.do(func(tx *bolt.Tx) error { return nil }); err != nil {
		t.Errorf("a call after the batches: %v", err)
	}
}
