package audit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

func chain(n int) []*catalog.AuditEvent {
	var evs []*catalog.AuditEvent
	var prev *catalog.AuditEvent
	for i := range n {
		ev := &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: "ten_x", ActorType: "user", ActorID: "u",
			EventType: "thing.done", Payload: []byte(`{"i":` + string(rune('0'+i)) + `}`), CreatedAt: time.Unix(int64(1000+i), 0),
		}
		audit.Seal(prev, ev)
		evs = append(evs, ev)
		prev = ev
	}
	return evs
}

func TestVerifier_Chain(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(evs []*catalog.AuditEvent)
		wantSeq int64 // 0: the chain verifies
	}{
		{"intact", func([]*catalog.AuditEvent) {}, 0},
		{"payload edited", func(evs []*catalog.AuditEvent) { evs[2].Payload = []byte(`{"i":9}`) }, 3},
		{"actor edited", func(evs []*catalog.AuditEvent) { evs[1].ActorID = "mallory" }, 2},
		{"time edited", func(evs []*catalog.AuditEvent) { evs[3].CreatedAt = evs[3].CreatedAt.Add(time.Second) }, 4},
		{"resealed but prev_hash broken", func(evs []*catalog.AuditEvent) {
			evs[2].PrevHash = evs[0].Hash
			evs[2].Hash = audit.Hash(evs[2].PrevHash, evs[2])
		}, 3},
		{"event removed", func(evs []*catalog.AuditEvent) { copy(evs[1:], evs[2:]); evs[len(evs)-1] = nil }, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := chain(5)
			c.mutate(evs)
			var v audit.Verifier
			var err error
			for _, ev := range evs {
				if ev == nil {
					break
				}
				if err = v.Next(ev); err != nil {
					break
				}
			}
			var broken *audit.BrokenLinkError
			switch {
			case c.wantSeq == 0 && err != nil:
				t.Fatalf("got %v, want a valid chain", err)
			case c.wantSeq != 0 && !errors.As(err, &broken):
				t.Fatalf("got %v, want a broken link", err)
			case c.wantSeq != 0 && broken.Seq != c.wantSeq:
				t.Fatalf("broken at %d, want %d", broken.Seq, c.wantSeq)
			}
		})
	}
}

func TestHash_DependsOnPrev(t *testing.T) {
	ev := chain(1)[0]
	if audit.Hash("a", ev) == audit.Hash("b", ev) {
		t.Fatal("hash ignores prev_hash")
	}
}
