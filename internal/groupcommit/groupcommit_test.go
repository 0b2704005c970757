package groupcommit

import (
	"sync"
	"testing"
)

func TestGroup_EveryCallCommittedOnceInBatches(t *testing.T) {
	var g Group[*int]
	var mu sync.Mutex
	committed := map[int]int{}
	batches := 0
	commit := func(batch []*int) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		for _, v := range batch {
			committed[*v]++
			*v = -1 // the outcome recorded in the call
		}
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := i
			g.Do(&v, commit)
			if v != -1 {
				t.Errorf("call %d returned before its batch committed", i)
			}
		}()
	}
	wg.Wait()
	if got := len(committed); got != n {
		t.Fatalf("got %d calls committed, want %d", got, n)
	}
	for v, c := range committed {
		if c != 1 {
			t.Errorf("call %d committed %d times, want 1", v, c)
		}
	}
	if batches < 1 || batches > n {
		t.Errorf("got %d batches for %d calls", batches, n)
	}
}

func TestGroup_LoneCallLeadsItsOwnBatch(t *testing.T) {
	var g Group[int]
	var got [][]int
	g.Do(7, func(b []int) { got = append(got, b) })
	if len(got) != 1 || len(got[0]) != 1 || got[0][0] != 7 {
		t.Errorf("got batches %v, want [[7]]", got)
	}
}
