package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// appendAt appends n events created at times at(i).
func appendAt(t *testing.T, s *State, n int, at func(i int) time.Time) {
	t.Helper()
	for i := range n {
		ev := &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: tenantA,
			ActorType: catalog.ActorMirror, ActorID: mirror1, EventType: "test.event",
			Payload: []byte(`{}`), CreatedAt: at(i),
		}
		if err := s.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPruneAudit_Rules(t *testing.T) {
	// 10 events, one a day from t0-10d; the retention cut is t0-5d.
	day := 24 * time.Hour
	at := func(i int) time.Time { return t0.Add(time.Duration(i-10) * day) }
	cut := t0.Add(-5 * day)
	tests := []struct {
		name       string
		acked      int64
		wantPruned int
		wantAnchor int64
	}{
		{"nothing acknowledged: nothing pruned", 0, 0, 0},
		{"acknowledged part: only acknowledged and old", 3, 3, 3},
		{"all acknowledged: only older than the retention", 10, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l, db, _ := newTestLedger(t)
			s := mustState(t, db)
			appendAt(t, s, 10, at)
			if tt.acked > 0 {
				if err := s.AckAudit(ctx, tt.acked); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.PruneAudit(ctx, cut)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantPruned {
				t.Errorf("pruned %d, want %d", n, tt.wantPruned)
			}
			st, err := s.AuditState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Anchor.Seq != tt.wantAnchor || st.Head.Seq != 10 || st.Acked != tt.acked {
				t.Errorf("state: got anchor %d head %d acked %d, want %d, 10, %d", st.Anchor.Seq, st.Head.Seq, st.Acked, tt.wantAnchor, tt.acked)
			}
			// The chain still verifies, and grows from its head.
			appendAt(t, s, 1, func(int) time.Time { return t0 })
			if got, err := s.VerifyAudit(ctx); err != nil || got != 11 {
				t.Errorf("verify: got %d, %v; want 11, nil", got, err)
			}
			// An export after the acknowledged head verifies from it.
			var buf bytes.Buffer
			if err := l.ExportAuditAfter(ctx, &buf, tt.acked); err != nil {
				t.Fatal(err)
			}
			var from catalog.AuditHead
			if tt.acked > 0 {
				from = catalog.AuditHead{Seq: tt.acked, Hash: hashAt(t, s, tt.acked)}
			}
			got := 0
			if _, err := license.ReadAuditExportFrom(&buf, l.PublicKey(), mirror1, from, 1<<20, func(*catalog.AuditEvent) error { got++; return nil }); err != nil {
				t.Fatalf("export after %d: %v", tt.acked, err)
			}
			if want := 11 - int(tt.acked); got != want {
				t.Errorf("export after %d: %d events, want %d", tt.acked, got, want)
			}
		})
	}
}

// hashAt is the hash of event seq (read before any prune, from the
// chain's walk; or the anchor's).
func hashAt(t *testing.T, s *State, seq int64) string {
	t.Helper()
	st, err := s.AuditState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Anchor.Seq == seq {
		return st.Anchor.Hash
	}
	h := ""
	err = s.WalkAudit(context.Background(), func(ev *catalog.AuditEvent) error {
		if ev.Seq == seq {
			h = ev.Hash
		}
		return nil
	})
	if err != nil || h == "" {
		t.Fatalf("hash of event %d: %q, %v", seq, h, err)
	}
	return h
}

func TestExportAuditAfter_RefusesPrunedStart(t *testing.T) {
	ctx := context.Background()
	l, db, _ := newTestLedger(t)
	s := mustState(t, db)
	appendAt(t, s, 6, func(int) time.Time { return t0.Add(-48 * time.Hour) })
	if err := s.AckAudit(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneAudit(ctx, t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		after   int64
		wantErr bool
	}{{0, true}, {3, true}, {4, false}, {6, false}} {
		t.Run(fmt.Sprint("after ", tt.after), func(t *testing.T) {
			var buf bytes.Buffer
			err := l.ExportAuditAfter(ctx, &buf, tt.after)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrAuditPruned)) {
				t.Fatalf("ExportAuditAfter(%d) = %v, want ErrAuditPruned %v", tt.after, err, tt.wantErr)
			}
		})
	}
	t.Run("the full export starts after the anchor", func(t *testing.T) {
		var buf bytes.Buffer
		if err := l.ExportAudit(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 3 {
			t.Errorf("export has %d lines, want events 5 and 6 and the trailer", n)
		}
	})
}

func TestAckAudit_OnlyForwardAndNotPastHead(t *testing.T) {
	ctx := context.Background()
	_, db, _ := newTestLedger(t)
	s := mustState(t, db)
	appendAt(t, s, 5, func(int) time.Time { return t0 })
	for _, st := range []struct {
		ack, want int64
	}{{3, 3}, {2, 3}, {99, 5}} {
		if err := s.AckAudit(ctx, st.ack); err != nil {
			t.Fatal(err)
		}
		got, err := s.AuditState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Acked != st.want {
			t.Errorf("after AckAudit(%d): acked %d, want %d", st.ack, got.Acked, st.want)
		}
	}
}
