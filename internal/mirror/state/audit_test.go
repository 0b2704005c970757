package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// auditTypes lists the event types of l's audit log in order.
func auditTypes(t testing.TB, l *Ledger) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := l.ExportAudit(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	events, err := license.VerifyAuditExport(&buf, l.PublicKey(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	types := []string{}
	for _, ev := range events {
		types = append(types, ev.EventType)
	}
	return types
}

// exportFixture returns the export of a ledger that issued three leases
// and released one, as lines.
func exportFixture(t *testing.T) (*Ledger, []string) {
	t.Helper()
	l, _, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		if _, _, err := l.Acquire(ctx, m, entAuto, "user", s, "", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Release(ctx, entAuto, "", "b", "", false, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := l.ExportAudit(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	return l, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

func TestExportAudit_RoundTrip(t *testing.T) {
	l, lines := exportFixture(t)
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 4 events and a trailer", len(lines))
	}
	x, err := license.ReadAuditExport(strings.NewReader(strings.Join(lines, "\n")+"\n"), l.PublicKey(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if x.MirrorID != mirror1 || x.Count != 4 || len(x.Events) != 4 || x.HeadHash != x.Events[3].Hash {
		t.Errorf("export: got mirror %s count %d events %d head %s", x.MirrorID, x.Count, len(x.Events), x.HeadHash)
	}
	want := []string{EventLeaseIssued, EventLeaseIssued, EventLeaseIssued, EventLeaseReleased}
	for i, ev := range x.Events {
		if ev.EventType != want[i] || ev.ActorType != catalog.ActorMirror || ev.ActorID != mirror1 || ev.TenantID != tenantA {
			t.Errorf("event %d: got %s by %s:%s of %s", i, ev.EventType, ev.ActorType, ev.ActorID, ev.TenantID)
		}
	}
	var p leaseEvent
	if err := json.Unmarshal(x.Events[3].Payload, &p); err != nil || p.SubjectID != "b" || p.ReleasedAt == nil {
		t.Errorf("release payload: got %+v, %v", p, err)
	}

	empty, _, _ := newTestLedger(t)
	var buf bytes.Buffer
	if err := empty.ExportAudit(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if evs, err := license.VerifyAuditExport(&buf, empty.PublicKey(), 1<<20); err != nil || len(evs) != 0 {
		t.Errorf("empty export: got %d events, %v", len(evs), err)
	}
}

// rehash reseals every event from the first so the chain is consistent
// again after an edit: only the trailer's signature can catch it.
func rehash(t *testing.T, lines []string) []string {
	t.Helper()
	out := append([]string(nil), lines...)
	var prev *catalog.AuditEvent
	for i, line := range out[:len(out)-1] {
		var ev catalog.AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		audit.Seal(prev, &ev)
		b, _ := json.Marshal(&ev)
		out[i] = string(b)
		prev = &ev
	}
	return out
}

func TestVerifyAuditExport_RefusesTampering(t *testing.T) {
	l, lines := exportFixture(t)
	edit := func(i int, f func(*catalog.AuditEvent)) []string {
		out := append([]string(nil), lines...)
		var ev catalog.AuditEvent
		if err := json.Unmarshal([]byte(out[i]), &ev); err != nil {
			t.Fatal(err)
		}
		f(&ev)
		b, _ := json.Marshal(&ev)
		out[i] = string(b)
		return out
	}
	without := func(i int) []string {
		return append(append([]string(nil), lines[:i]...), lines[i+1:]...)
	}
	otherTrailer := func() []string {
		out := append([]string(nil), lines...)
		var tr license.AuditTrailer
		if err := json.Unmarshal([]byte(out[len(out)-1]), &tr); err != nil {
			t.Fatal(err)
		}
		tr.Sig = []byte(strings.Repeat("x", 64))
		b, _ := json.Marshal(&tr)
		out[len(out)-1] = string(b)
		return out
	}
	changedSubject := func(ev *catalog.AuditEvent) {
		ev.Payload = json.RawMessage(strings.Replace(string(ev.Payload), `"subject_id":"b"`, `"subject_id":"z"`, 1))
	}
	cases := []struct {
		name      string
		lines     []string
		brokenSeq int64 // 0: not a broken link
		wantMsg   string
	}{
		{"payload edited", edit(1, changedSubject), 2, "hash does not match"},
		{"event type edited", edit(3, func(ev *catalog.AuditEvent) { ev.EventType = EventLeaseIssued }), 4, "hash does not match"},
		{"event removed", without(1), 3, "sequence 3, want 2"},
		{"events swapped", append([]string{lines[1], lines[0]}, lines[2:]...), 2, "sequence 2, want 1"},
		{"rehashed after edit", rehash(t, edit(1, changedSubject)), 0, "head_hash does not match"},
		{"last event dropped", without(3), 0, "trailer counts 4 events"},
		{"trailer dropped", lines[:len(lines)-1], 0, "no signed trailer"},
		{"trailer signed by another key", otherTrailer(), 0, "signature does not verify"},
		{"data after trailer", append(append([]string(nil), lines...), lines[0]), 0, "after the trailer"},
		{"not JSON", append([]string{"garbage"}, lines...), 0, "not a JSON object"},
		{"unknown field", append([]string{`{"extra":1,` + lines[0][1:]}, lines[1:]...), 0, "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := license.VerifyAuditExport(strings.NewReader(strings.Join(tc.lines, "\n")+"\n"), l.PublicKey(), 1<<20)
			if !errors.Is(err, license.ErrAuditExport) {
				t.Fatalf("got %v, want ErrAuditExport", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			var bl *audit.BrokenLinkError
			switch {
			case tc.brokenSeq == 0 && errors.As(err, &bl):
				t.Errorf("got a broken link %v, want another reason", bl)
			case tc.brokenSeq != 0 && (!errors.As(err, &bl) || bl.Seq != tc.brokenSeq):
				t.Errorf("got %v, want the first broken link at event %d", err, tc.brokenSeq)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		in := strings.Join(lines, "\n") + "\n"
		_, err := license.VerifyAuditExport(strings.NewReader(in), l.PublicKey(), int64(len(in)-1))
		if !errors.Is(err, license.ErrAuditExport) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("got %v, want a size error", err)
		}
	})
	t.Run("other mirror's key", func(t *testing.T) {
		_, err := license.VerifyAuditExport(strings.NewReader(strings.Join(lines, "\n")+"\n"), pub(mirror2Key), 1<<20)
		if !errors.Is(err, license.ErrAuditExport) {
			t.Fatalf("got %v, want ErrAuditExport", err)
		}
	})
}

func TestVerifyAudit_NamesFirstBrokenLink(t *testing.T) {
	l, db, _ := newTestLedger(t)
	ctx := context.Background()
	m := testManifest(t)
	for _, s := range []string{"a", "b", "c"} {
		if _, _, err := l.Acquire(ctx, m, entAuto, "user", s, "", t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mustState(t, db).VerifyAudit(ctx); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		var ev catalog.AuditEvent
		if err := json.Unmarshal(b.Get(seqKey(2)), &ev); err != nil {
			return err
		}
		ev.ActorID = mirror2
		raw, _ := json.Marshal(&ev)
		return b.Put(seqKey(2), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustState(t, db).VerifyAudit(ctx)
	var bl *audit.BrokenLinkError
	if !errors.As(err, &bl) || bl.Seq != 2 {
		t.Fatalf("got %v, want a broken link at event 2", err)
	}
	if err := l.ExportAudit(ctx, &bytes.Buffer{}); !errors.As(err, &bl) {
		t.Errorf("export of a broken chain: got %v, want refusal", err)
	}
}
