package groupcommit

import (
	"runtime"
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

func TestGroup_Join(t *testing.T) {
	var g Group[*int]
	// The leader's commit waits until the other calls have queued behind
	// it, then joins the even ones: they are answered with its batch, the
	// odd ones in a batch of their own, after it.
	const others = 6
	queued := make(chan struct{})
	committing := make(chan struct{})
	var (
		mu      sync.Mutex
		batches [][]int
	)
	first := true
	commit := func(batch []*int) {
		if first {
			first = false
			close(committing)
			<-queued
			batch = append(batch, g.Join(func(v *int) bool { return *v%2 == 0 })...)
		}
		var b []int
		for _, v := range batch {
			b = append(b, *v)
			*v = -*v - 1 // committed
		}
		mu.Lock()
		batches = append(batches, b)
		mu.Unlock()
	}
	lead := 99
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.Do(&lead, commit)
	}()
	<-committing // the other calls queue behind the running batch
	vals := make([]int, others)
	for i := range others {
		vals[i] = i
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.Do(&vals[i], commit)
		}()
	}
	for {
		if g.Queued() == others {
			break
		}
		runtime.Gosched()
	}
	close(queued)
	wg.Wait()
	for i, v := range vals {
		if v != -i-1 {
			t.Errorf("call %d: got %d, want it committed (%d)", i, v, -i-1)
		}
	}
	if len(batches) < 2 {
		t.Fatalf("got batches %v, want the leader's and the rest", batches)
	}
	got := batches[0]
	if len(got) != 1+others/2 || got[0] != 99 {
		t.Fatalf("got first batch %v, want 99 and the even calls", got)
	}
	for _, v := range got[1:] {
		if v%2 != 0 {
			t.Errorf("got %d in the first batch, want only even calls joined", v)
		}
	}
	for _, b := range batches[1:] {
		for _, v := range b {
			if v%2 == 0 {
				t.Errorf("got %d in a later batch, want it joined to the first", v)
			}
		}
	}
}
