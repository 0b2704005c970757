package kv

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// TestPendingEvent_RoundTrip: a pending row, of either version, decodes
// to the events it was made of, in order, payloads byte for byte; a
// damaged one is an error, not a panic.
func TestPendingEvent_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 18, 0, 0, 7, time.UTC)
	evs := []*catalog.AuditEvent{
		{EventID: "evt_1", TenantID: "ten_1", ActorType: "user", ActorID: "usr_1", EventType: "release.created", CreatedAt: at},
		{EventID: "evt_2", EventType: "lease.issued", Payload: json.RawMessage(`{"a":"\u003c"}`), CreatedAt: at.Add(time.Millisecond)},
		{EventID: "evt_3", TenantID: "ten_2", EventType: "x", Payload: json.RawMessage(`{}`), CreatedAt: at.Add(-time.Hour)},
	}
	same := func(t *testing.T, got, want []*catalog.AuditEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("decoded %d events, want %d", len(got), len(want))
		}
		for i, ev := range want {
			g := got[i]
			if g.EventID != ev.EventID || g.TenantID != ev.TenantID || g.ActorType != ev.ActorType || g.ActorID != ev.ActorID ||
				g.EventType != ev.EventType || !g.CreatedAt.Equal(ev.CreatedAt) || string(g.Payload) != string(ev.Payload) {
				t.Fatalf("event %d: decoded %+v, want %+v", i, g, ev)
			}
		}
	}
	t.Run("version 1", func(t *testing.T) {
		for _, ev := range evs {
			k, v, err := PendingEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(k[8:]), ev.EventID; got != want {
				t.Fatalf("key ends with %q, want %q", got, want)
			}
			got, err := decodePending(v)
			if err != nil {
				t.Fatal(err)
			}
			same(t, got, []*catalog.AuditEvent{ev})
		}
	})
	t.Run("version 2", func(t *testing.T) {
		for n := 1; n <= len(evs); n++ {
			k, v, err := PendingEvents(evs[:n])
			if err != nil {
				t.Fatal(err)
			}
			if k1, _, _ := PendingEvent(evs[0]); string(k) != string(k1) {
				t.Fatalf("key %x, want the first event's %x", k, k1)
			}
			got, err := decodePending(v)
			if err != nil {
				t.Fatal(err)
			}
			same(t, got, evs[:n])
		}
		if _, _, err := PendingEvents(nil); err == nil {
			t.Error("no events encoded")
		}
		if _, _, err := PendingEvents([]*catalog.AuditEvent{{EventID: "evt_4", CreatedAt: time.Time{}}}); err == nil {
			t.Error("a creation time out of range encoded")
		}
	})
	_, good, _ := PendingEvent(&catalog.AuditEvent{EventID: "evt_2", EventType: "x", CreatedAt: at})
	_, two, _ := PendingEvents(evs[:2])
	for name, v := range map[string][]byte{
		"empty":            {},
		"version":          append([]byte{3}, good[1:]...),
		"short":            good[:5],
		"length too big":   append(append([]byte{}, good[:9]...), 0x7f, 'e'),
		"bad varint":       append(append([]byte{}, good[:9]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"missing a field":  good[:9+1+len("evt_2")],
		"2: no count":      {2},
		"2: zero events":   {2, 0},
		"2: count too big": append([]byte{2, 0xff, 0xff, 0x03}, two[2:]...),
		"2: one missing":   append([]byte{2, 3}, two[2:]...),
		"2: cut short":     two[:len(two)-3],
		"2: trailing":      append(append([]byte{}, two...), 0),
		"2: body damaged":  append(append([]byte{}, two[:3]...), 0x01, 0x00),
	} {
		if _, err := decodePending(v); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
