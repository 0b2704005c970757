package kv

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// TestPendingEvent_RoundTrip: a pending row decodes to the event it was
// made of, payload byte for byte; a damaged one is an error, not a panic.
func TestPendingEvent_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 18, 0, 0, 7, time.UTC)
	for _, payload := range []json.RawMessage{nil, json.RawMessage(`{"a":"\u003c"}`)} {
		ev := &catalog.AuditEvent{EventID: "evt_1", TenantID: "ten_1", ActorType: "user", ActorID: "usr_1", EventType: "release.created", Payload: payload, CreatedAt: at}
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
		if got.EventID != ev.EventID || got.TenantID != ev.TenantID || got.ActorID != ev.ActorID || got.EventType != ev.EventType || !got.CreatedAt.Equal(at) || string(got.Payload) != string(payload) {
			t.Fatalf("decoded %+v, want %+v", got, ev)
		}
	}
	_, good, _ := PendingEvent(&catalog.AuditEvent{EventID: "evt_2", EventType: "x", CreatedAt: at})
	for name, v := range map[string][]byte{
		"empty":           {},
		"version":         append([]byte{2}, good[1:]...),
		"short":           good[:5],
		"length too big":  append(append([]byte{}, good[:9]...), 0x7f, 'e'),
		"bad varint":      append(append([]byte{}, good[:9]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"missing a field": good[:9+1+len("evt_2")],
	} {
		if _, err := decodePending(v); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
