// Package audit computes and checks the hash chain of audit events:
// hash = sha256(prev_hash || canonical event). It is pure: stores and the
// mirror call it when they append, and verify walks a chain they read.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// canonical is the hashed form of an event: fixed field order, times in
// UTC RFC 3339 with nanoseconds, payload as stored (compact JSON).
type canonical struct {
	EventID   string          `json:"event_id"`
	Seq       int64           `json:"seq"`
	TenantID  string          `json:"tenant_id"`
	ActorType string          `json:"actor_type"`
	ActorID   string          `json:"actor_id"`
	EventType string          `json:"event_type"`
	Payload   json.RawMessage `json:"payload"`
	CreatedAt string          `json:"created_at"`
}

// Hash returns the hex hash of ev chained to prevHash.
func Hash(prevHash string, ev *catalog.AuditEvent) string {
	h, _ := hashCanonical(prevHash, ev)
	return h
}

// hashCanonical returns the hash and the canonical encoding it hashed.
func hashCanonical(prevHash string, ev *catalog.AuditEvent) (string, []byte) {
	payload := ev.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	b, err := json.Marshal(canonical{
		EventID: ev.EventID, Seq: ev.Seq, TenantID: ev.TenantID,
		ActorType: ev.ActorType, ActorID: ev.ActorID, EventType: ev.EventType,
		Payload: payload, CreatedAt: ev.CreatedAt.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		// Payload is validated JSON; anything else is a programming error.
		panic(fmt.Sprintf("audit: marshal event: %v", err))
	}
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), b
}

// Seal sets ev's Seq, PrevHash and Hash as the successor of prev (nil for
// the first event).
func Seal(prev *catalog.AuditEvent, ev *catalog.AuditEvent) {
	link(prev, ev)
	ev.Hash = Hash(ev.PrevHash, ev)
}

func link(prev, ev *catalog.AuditEvent) {
	ev.Seq, ev.PrevHash = 1, ""
	if prev != nil {
		ev.Seq, ev.PrevHash = prev.Seq+1, prev.Hash
	}
}

// SealEncode is Seal that also returns json.Marshal(ev), the event as a
// store keeps it, from the encoding it hashed: the two share their
// fields up to created_at (the payload, the costly part, is encoded
// once). An event whose time is not in UTC falls back to json.Marshal.
func SealEncode(prev *catalog.AuditEvent, ev *catalog.AuditEvent) ([]byte, error) {
	link(prev, ev)
	var b []byte
	ev.Hash, b = hashCanonical(ev.PrevHash, ev)
	if _, off := ev.CreatedAt.Zone(); off != 0 || ev.CreatedAt.Year() < 0 || ev.CreatedAt.Year() > 9999 {
		return json.Marshal(ev)
	}
	// b ends with the created_at string and '}'; the hashes are hex.
	out := make([]byte, 0, len(b)+len(ev.PrevHash)+len(ev.Hash)+26)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"prev_hash":"`...)
	out = append(out, ev.PrevHash...)
	out = append(out, `","hash":"`...)
	out = append(out, ev.Hash...)
	return append(out, `"}`...), nil
}

// BrokenLinkError names the first event whose link does not hold.
type BrokenLinkError struct {
	Seq     int64
	EventID string
	Reason  string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d (%s): %s", e.Seq, e.EventID, e.Reason)
}

// Verifier checks a chain one event at a time, in order.
type Verifier struct {
	prev  *catalog.AuditEvent
	count int64
}

// ResumeAt returns a verifier that has already seen a chain whose head
// is head: the next event must have sequence head.Seq+1 and prev_hash
// head.Hash (an upload that extends an accepted head).
func ResumeAt(head catalog.AuditHead) *Verifier {
	if head.Seq == 0 {
		return &Verifier{}
	}
	return &Verifier{prev: &catalog.AuditEvent{Seq: head.Seq, Hash: head.Hash}, count: head.Seq}
}

// Next checks ev against the events seen so far.
func (v *Verifier) Next(ev *catalog.AuditEvent) error {
	wantSeq, wantPrev := int64(1), ""
	if v.prev != nil {
		wantSeq, wantPrev = v.prev.Seq+1, v.prev.Hash
	}
	switch {
	case ev.Seq != wantSeq:
		return &BrokenLinkError{Seq: ev.Seq, EventID: ev.EventID, Reason: fmt.Sprintf("sequence %d, want %d", ev.Seq, wantSeq)}
	case ev.PrevHash != wantPrev:
		return &BrokenLinkError{Seq: ev.Seq, EventID: ev.EventID, Reason: "prev_hash does not match the previous event's hash"}
	case Hash(ev.PrevHash, ev) != ev.Hash:
		return &BrokenLinkError{Seq: ev.Seq, EventID: ev.EventID, Reason: "hash does not match the event's contents"}
	}
	e := *ev
	v.prev = &e
	v.count++
	return nil
}

// Count is the number of events verified.
func (v *Verifier) Count() int64 { return v.count }

// Head is the last verified event, or nil.
func (v *Verifier) Head() *catalog.AuditEvent { return v.prev }
