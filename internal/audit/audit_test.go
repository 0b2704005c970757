package audit_test

import (
	"encoding/json"
	"errors"
	"strings"
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

// TestSealEncode_MatchesMarshal: SealEncode seals as Seal does and returns
// exactly json.Marshal of the sealed event, for every kind of field.
func TestSealEncode_MatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 30, 18, 4, 5, 123456789, time.UTC)
	prev := &catalog.AuditEvent{Seq: 41, Hash: strings.Repeat("ab", 32)}
	cases := []struct {
		name string
		prev *catalog.AuditEvent
		ev   catalog.AuditEvent
	}{
		{"first", nil, catalog.AuditEvent{EventID: "evt_1", EventType: "tenant.created", Payload: json.RawMessage(`{"a":1}`), CreatedAt: at}},
		{"no payload", prev, catalog.AuditEvent{EventID: "evt_2", EventType: "note", CreatedAt: at}},
		{"html and line separators", prev, catalog.AuditEvent{EventID: "evt_<3>", TenantID: "ten_&", ActorType: "user", ActorID: "usr_\u2028", EventType: "x<y", Payload: json.RawMessage(`{"s":"<a href='&'>\u2028</a>","n":[1,2.5e3]}`), CreatedAt: at}},
		{"payload not compact", prev, catalog.AuditEvent{EventID: "evt_4", EventType: "x", Payload: json.RawMessage("{ \"a\" : [ 1 , 2 ] }"), CreatedAt: at}},
		{"whole second", prev, catalog.AuditEvent{EventID: "evt_5", EventType: "x", CreatedAt: at.Truncate(time.Second)}},
		{"zero time", prev, catalog.AuditEvent{EventID: "evt_6", EventType: "x"}},
		{"offset zone", prev, catalog.AuditEvent{EventID: "evt_7", EventType: "x", CreatedAt: at.In(time.FixedZone("X", 3600))}},
		{"utc offset, other zone", prev, catalog.AuditEvent{EventID: "evt_8", EventType: "x", CreatedAt: at.In(time.FixedZone("GMT", 0))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sealed := tc.ev
			audit.Seal(tc.prev, &sealed)
			ev := tc.ev
			got, err := audit.SealEncode(tc.prev, &ev)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq != sealed.Seq || ev.PrevHash != sealed.PrevHash || ev.Hash != sealed.Hash {
				t.Fatalf("sealed %d %s %s, want %d %s %s", ev.Seq, ev.PrevHash, ev.Hash, sealed.Seq, sealed.PrevHash, sealed.Hash)
			}
			want, err := json.Marshal(&sealed)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}
