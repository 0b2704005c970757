package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
)

func TestLedgerAcquire_SeatLimitUnderConcurrency(t *testing.T) {
	l, db, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	const n = 100
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok        int
		conflicts int
		other     []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := l.Acquire(ctx, m, entAuto, "machine", fmt.Sprintf("host-%d", i), "", t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case catalog.ErrorCode(err) == catalog.ECONFLICT:
				conflicts++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("unexpected errors: %v", other)
	}
	if ok != 10 || conflicts != n-10 {
		t.Errorf("got %d leases and %d conflicts, want 10 and %d", ok, conflicts, n-10)
	}
	if got, err := l.ActiveLeases(ctx, entAuto, t0); err != nil || got != 10 {
		t.Errorf("ActiveLeases: got %d, %v, want 10", got, err)
	}
	if _, err := mustState(t, db).VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}

func TestLedgerAcquire_SameSubjectRenews(t *testing.T) {
	l, _, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	first, tok1, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	second, tok2, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0.Add(5*time.Minute))
	if err != nil {
		t.Fatalf("renew with the only seat taken by the same subject: %v", err)
	}
	if second.LeaseID != first.LeaseID {
		t.Errorf("lease id: got %s, want %s (renewed)", second.LeaseID, first.LeaseID)
	}
	if want := t0.Add(15 * time.Minute); !second.ExpiresAt.Equal(want) {
		t.Errorf("expires_at: got %s, want %s", second.ExpiresAt, want)
	}
	if tok1 == tok2 || second.TokenHash != license.TokenHash(tok2) {
		t.Errorf("renewal must sign a new token and store its hash")
	}
	if n, _ := l.ActiveLeases(ctx, entOne, t0.Add(5*time.Minute)); n != 1 {
		t.Errorf("ActiveLeases: got %d, want 1", n)
	}
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "bob", "", t0.Add(5*time.Minute)); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Errorf("second subject: got %v, want conflict", err)
	}
	if _, _, err := l.Acquire(ctx, m, entOne, "machine", "alice", "", t0.Add(5*time.Minute)); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Errorf("same subject id as another type: got %v, want conflict", err)
	}
	got := auditTypes(t, l)
	want := []string{EventLeaseIssued, EventLeaseRenewed}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit events: got %v, want %v", got, want)
	}
}

func TestLedgerAcquire_Rules(t *testing.T) {
	expiredSnap := testManifest(t)
	expiredSnap.ExpiresAt = t0
	suspended := testManifest(t)
	suspended.Tenant.Status = catalog.TenantSuspended
	otherTenant := testManifest(t)
	otherTenant.TenantID = tenantB
	longSnap := testManifest(t)
	longSnap.ExpiresAt = t0.Add(400 * 24 * time.Hour)
	cases := []struct {
		name     string
		m        *snapshot.Manifest // nil: testManifest
		noSnap   bool
		eid, sty string
		sub      string
		now      time.Time
		want     string // error code, "" for success
	}{
		{"automatic", nil, false, entAuto, "machine", "h", t0, ""},
		{"unknown entitlement", nil, false, "ent_0000000000000000000000000z", "user", "u", t0, catalog.ENOTFOUND},
		{"not started", nil, false, entLater, "user", "u", t0, catalog.EFORBIDDEN},
		{"ended", longSnap, false, entAuto, "user", "u", t0.Add(366 * 24 * time.Hour), catalog.EFORBIDDEN},
		{"snapshot expired before the entitlement ends", nil, false, entAuto, "user", "u", t0.Add(31 * 24 * time.Hour), catalog.EUNAVAILABLE},
		{"no seats for this mirror", nil, false, entNone, "user", "u", t0, catalog.EFORBIDDEN},
		{"explicit assigned", nil, false, entExpl, "user", "alice", t0, ""},
		{"explicit unassigned", nil, false, entExpl, "user", "carol", t0, catalog.EFORBIDDEN},
		{"explicit revoked", nil, false, entExpl, "user", "bob", t0, catalog.EFORBIDDEN},
		{"explicit wrong type", nil, false, entExpl, "machine", "alice", t0, catalog.EFORBIDDEN},
		{"bad subject type", nil, false, entAuto, "robot", "u", t0, catalog.EINVALID},
		{"empty subject", nil, false, entAuto, "user", "", t0, catalog.EINVALID},
		{"control char in subject", nil, false, entAuto, "user", "a\nb", t0, catalog.EINVALID},
		{"no snapshot", nil, true, entAuto, "user", "u", t0, catalog.EUNAVAILABLE},
		{"snapshot expired", expiredSnap, false, entAuto, "user", "u", t0, catalog.EUNAVAILABLE},
		{"tenant suspended", suspended, false, entAuto, "user", "u", t0, catalog.EFORBIDDEN},
		{"snapshot of another tenant", otherTenant, false, entAuto, "user", "u", t0, catalog.EINTERNAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, _, _ := newTestLedger(t)
			m := testManifest(t)
			switch {
			case tc.noSnap:
				m = nil
			case tc.m != nil:
				m = tc.m
			}
			lease, tok, err := l.Acquire(context.Background(), m, tc.eid, tc.sty, tc.sub, "", tc.now)
			if got := catalog.ErrorCode(err); got != tc.want {
				t.Fatalf("Acquire: got code %q (%v), want %q", got, err, tc.want)
			}
			if tc.want != "" {
				if n := len(auditTypes(t, l)); n != 0 {
					t.Errorf("refused acquire wrote %d audit events", n)
				}
				return
			}
			v, err := license.NewVerifierFromManifest(vendorKeys(), tenantA, m)
			if err != nil {
				t.Fatal(err)
			}
			c, err := license.Verify(tok, v, tc.now)
			if err != nil {
				t.Fatalf("token the ledger issued does not verify: %v", err)
			}
			if c.LeaseID != lease.LeaseID || c.SubjectID != tc.sub || c.Issuer != "mirror:"+mirror1 {
				t.Errorf("claims: got %+v for lease %+v", c, lease)
			}
		})
	}
}

func TestLedgerRelease_FreesSeat(t *testing.T) {
	l, _, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "bob", "", t0); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Fatalf("bob while alice holds the seat: got %v, want conflict", err)
	}
	if err := l.Release(ctx, entOne, "user", "alice", "", false, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, entOne, "user", "alice", "", false, t0.Add(time.Minute)); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Errorf("second release: got %v, want not_found", err)
	}
	if err := l.Release(ctx, entOne, "", "nobody", "", false, t0); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Errorf("release of unknown subject: got %v, want not_found", err)
	}
	bob, _, err := l.Acquire(ctx, m, entOne, "user", "bob", "", t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("bob after release: %v", err)
	}
	// Alice comes back: a new lease, not a renewal of the released one.
	if err := l.Release(ctx, entOne, "", "bob", "", false, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	alice, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if alice.LeaseID == bob.LeaseID {
		t.Error("alice got bob's lease id")
	}
	want := []string{EventLeaseIssued, EventLeaseReleased, EventLeaseIssued, EventLeaseReleased, EventLeaseIssued}
	if got := auditTypes(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit events: got %v, want %v", got, want)
	}
}

func TestLedgerAcquire_ExpiredLeasesFreeSeats(t *testing.T) {
	l, _, _ := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"just before expiry", t0.Add(10*time.Minute - time.Second), catalog.ECONFLICT},
		{"at expiry", t0.Add(10 * time.Minute), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := l.Acquire(ctx, m, entOne, "user", "bob", "", tc.at)
			if got := catalog.ErrorCode(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	// Alice's lease expired: coming back takes a seat, and none is free.
	if _, _, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0.Add(11*time.Minute)); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Errorf("alice after expiry with bob holding the seat: got %v, want conflict", err)
	}
	if n, _ := l.ActiveLeases(ctx, entOne, t0.Add(11*time.Minute)); n != 1 {
		t.Errorf("ActiveLeases: got %d, want 1", n)
	}
}

func TestLedger_DurableAcrossReopen(t *testing.T) {
	l, db, path := newTestLedger(t)
	m := testManifest(t)
	ctx := context.Background()
	lease, tok, err := l.Acquire(ctx, m, entOne, "device", "d1", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openDB(t, path)
	defer db2.Close()
	l2, err := mustState(t, db2).Ledger(mirror1, mirror1Key, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l2.Lease(ctx, lease.LeaseID)
	if err != nil {
		t.Fatalf("lease after reopen: %v", err)
	}
	if got.SubjectID != "d1" || got.TokenHash != license.TokenHash(tok) || !got.ExpiresAt.Equal(lease.ExpiresAt) {
		t.Errorf("lease after reopen: got %+v, want %+v", got, lease)
	}
	if _, _, err := l2.Acquire(ctx, m, entOne, "device", "d2", "", t0); catalog.ErrorCode(err) != catalog.ECONFLICT {
		t.Errorf("seat after reopen: got %v, want conflict (seat still held)", err)
	}
	if _, err := mustState(t, db2).VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit after reopen: %v", err)
	}
	if _, err := l2.Lease(ctx, "lea_0000000000000000000000000z"); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Errorf("unknown lease: got %v, want not_found", err)
	}
}

func TestNewLedger_RejectsBadArgs(t *testing.T) {
	_, db, _ := newTestLedger(t)
	cases := []struct {
		name             string
		mirror, tenant   string
		key              []byte
		wantErrSubstring string
	}{
		{"bad mirror id", "m1", tenantA, mirror1Key, "mirror id"},
		{"bad tenant id", mirror1, "t", mirror1Key, "tenant id"},
		{"bad key", mirror1, tenantA, []byte{1}, "private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustState(t, db).Ledger(tc.mirror, tc.key, tc.tenant)
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstring) {
				t.Fatalf("got %v, want an error about %s", err, tc.wantErrSubstring)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, _, _ := newTestLedger(t)
	if _, _, err := l.Acquire(ctx, testManifest(t), entAuto, "user", "u", "", t0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: got %v", err)
	}
}

// Concurrent acquires of one subject race between presigning and the
// transaction: exactly one issues, the rest renew the same lease, and
// every token names the lease it was stored for.
func TestLedgerAcquire_ConcurrentSameSubject(t *testing.T) {
	l, _, _ := newTestLedger(t)
	m := testManifest(t)
	v, err := license.NewVerifierFromManifest(vendorKeys(), tenantA, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 20
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lease, tok, err := l.Acquire(ctx, m, entOne, "user", "alice", "", t0)
			if err != nil {
				errs[i] = err
				return
			}
			c, err := license.Verify(tok, v, t0)
			switch {
			case err != nil:
				errs[i] = err
			case c.LeaseID != lease.LeaseID:
				errs[i] = fmt.Errorf("token lid %s, lease %s", c.LeaseID, lease.LeaseID)
			}
			ids[i] = lease.LeaseID
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("call %d got lease %s, call 0 got %s", i, ids[i], ids[0])
		}
	}
	types := auditTypes(t, l)
	issued := 0
	for _, ty := range types {
		if ty == EventLeaseIssued {
			issued++
		}
	}
	if len(types) != n || issued != 1 {
		t.Errorf("audit: got %d events with %d issued, want %d with 1", len(types), issued, n)
	}
	if got, _ := l.ActiveLeases(ctx, entOne, t0); got != 1 {
		t.Errorf("ActiveLeases: got %d, want 1", got)
	}
}
