package state

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// growth is what n renewals added to the mirror's bbolt file.
type growth struct {
	fileBytes  int64 // the file's size on disk
	auditBytes int   // bytes the audit bucket's pages take (branch + leaf, allocated)
	auditInUse int   // bytes its pages hold
	events     int   // events in the audit bucket
}

// measureRenewals takes leases for subjects, then renews them round-robin
// n times, returning the growth the renewals caused.
func measureRenewals(t testing.TB, subjects, n int) growth {
	t.Helper()
	l, db, path := newTestLedger(t)
	db.NoSync = true // the layout is the same; fsyncs only cost time
	m := testManifest(t)
	ctx := context.Background()
	for i := range subjects {
		if _, _, err := l.Acquire(ctx, m, entBig, "machine", fmt.Sprintf("host-%d", i), "", t0); err != nil {
			t.Fatal(err)
		}
	}
	before := sizeOf(t, db, path)
	for i := range n {
		if _, _, err := l.Acquire(ctx, m, entBig, "machine", fmt.Sprintf("host-%d", i%subjects), "", t0); err != nil {
			t.Fatal(err)
		}
	}
	after := sizeOf(t, db, path)
	return growth{
		fileBytes:  after.fileBytes - before.fileBytes,
		auditBytes: after.auditBytes - before.auditBytes,
		auditInUse: after.auditInUse - before.auditInUse,
		events:     after.events - before.events,
	}
}

func sizeOf(t testing.TB, db *bolt.DB, path string) growth {
	t.Helper()
	var g growth
	err := db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket(bucketAudit).Stats()
		g.auditBytes = s.BranchAlloc + s.LeafAlloc
		g.auditInUse = s.BranchInuse + s.LeafInuse
		g.events = s.KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	g.fileBytes = fi.Size()
	return g
}

// BenchmarkLedgerRenewGrowth reports what one renewal adds to mirror.db:
// file bytes, audit-bucket bytes and audit events per renewal.
//
//	go test -run '^$' -bench LedgerRenewGrowth -benchtime 20000x ./internal/mirror/state/
func BenchmarkLedgerRenewGrowth(b *testing.B) {
	g := measureRenewals(b, 100, b.N)
	b.ReportMetric(float64(g.fileBytes)/float64(b.N), "file-B/renewal")
	b.ReportMetric(float64(g.auditBytes)/float64(b.N), "audit-B/renewal")
	b.ReportMetric(float64(g.events)/float64(b.N), "events/renewal")
}

// renewAll renews every one of subjects n times over, round-robin.
func renewAll(t testing.TB, l *Ledger, subjects, n int) {
	t.Helper()
	m := testManifest(t)
	for i := range n {
		if _, _, err := l.Acquire(context.Background(), m, entBig, "machine", fmt.Sprintf("host-%d", i%subjects), "", t0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLedger_RenewalGrowthPerRenewal(t *testing.T) {
	g := measureRenewals(t, 20, 2000)
	t.Logf("FIGURE mirror.db growth per renewal: file %d B, audit pages %d B, %.2f events",
		g.fileBytes/2000, g.auditBytes/2000, float64(g.events)/2000)
	// A renewal event is about 730 bytes of JSON; bbolt keeps at least
	// two keys on the second page of a split, so appends fill a page with
	// 3 of them (1,365 B each). With the default fill (0.5) it was 2 (2,048 B).
	if got, want := g.auditBytes/2000, 1400; got > want {
		t.Errorf("audit pages per renewal = %d B, want at most %d", got, want)
	}
}

func TestPruneAudit_BoundsGrowth(t *testing.T) {
	ctx := context.Background()
	l, db, path := newTestLedger(t)
	db.NoSync = true // the layout is the same; fsyncs only cost time
	s := mustState(t, db)
	renewAll(t, l, 20, 1000)
	first := sizeOf(t, db, path)
	for round := range 3 {
		st, err := s.AuditState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AckAudit(ctx, st.Head.Seq); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneAudit(ctx, t0.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if int64(n) != st.Head.Seq-st.Anchor.Seq-1 {
			t.Errorf("round %d: pruned %d, want every event but the head (%d)", round, n, st.Head.Seq-st.Anchor.Seq-1)
		}
		renewAll(t, l, 20, 1000)
		got := sizeOf(t, db, path)
		if got.fileBytes > first.fileBytes+first.fileBytes/4 {
			t.Errorf("round %d: file %d B after prune and 1000 renewals, want at most 125%% of the first round's %d B", round, got.fileBytes, first.fileBytes)
		}
	}
	n, err := s.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("verify after pruning: %v", err)
	}
	if want := int64(4 * 1000); n != want {
		t.Errorf("verify: head seq %d, want %d", n, want)
	}
}
