package state_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store/bolt"
)

// parityCase is one lease request made to both the control plane store
// and a mirror's ledger over the same entitlement.
type parityCase struct {
	name    string
	policy  map[string]any // mirror_seats for the mirror is added: same limit on both
	seats   int            // seats on both (online and delegated to the mirror)
	start   time.Duration  // starts_at relative to now
	end     *time.Duration // ends_at relative to now
	status  string         // tenant status
	assign  bool           // subject holds a seat assignment (explicit mode)
	before  []string       // subjects that take a lease first
	subject string
	// bound: the leases of before are bound to holderSecret; present is
	// the secret the last request presents ("", holderSecret or another).
	bound   bool
	present string
	// release: the last request releases subject's lease instead of
	// acquiring one.
	release bool
	want    string // error code, "" for success
}

const holderSecret, otherSecret = "olh_right", "olh_wrong"

// secretOf is the holder secret the leases of before are bound to.
func (tc parityCase) secretOf() string {
	if tc.bound {
		return holderSecret
	}
	return ""
}

func dur(d time.Duration) *time.Duration { return &d }

// TestAdmit_SameCodeOnBothDaemons drives the control plane store and the
// mirror ledger with the same violations and requires the same answer.
func TestAdmit_SameCodeOnBothDaemons(t *testing.T) {
	cases := []parityCase{
		{name: "granted", seats: 1, subject: "a"},
		{name: "renewal", seats: 1, before: []string{"a"}, subject: "a"},
		{name: "seats full", seats: 1, before: []string{"a"}, subject: "b", want: catalog.ECONFLICT},
		{name: "tenant suspended", seats: 1, status: catalog.TenantSuspended, subject: "a", want: catalog.EFORBIDDEN},
		{name: "not started", seats: 1, start: time.Hour, subject: "a", want: catalog.EFORBIDDEN},
		{name: "ended", seats: 1, start: -48 * time.Hour, end: dur(-time.Hour), subject: "a", want: catalog.EFORBIDDEN},
		{name: "no seats here", seats: 0, subject: "a", want: catalog.EFORBIDDEN},
		{name: "explicit without a seat", seats: 1, policy: map[string]any{"seat_assignment_mode": "explicit"}, subject: "a", want: catalog.EFORBIDDEN},
		{name: "explicit with a seat", seats: 1, policy: map[string]any{"seat_assignment_mode": "explicit"}, assign: true, subject: "a"},
		{name: "renewal without the holder secret", seats: 2, before: []string{"a"}, bound: true, subject: "a", want: catalog.EFORBIDDEN},
		{name: "renewal with a wrong holder secret", seats: 2, before: []string{"a"}, bound: true, present: otherSecret, subject: "a", want: catalog.EFORBIDDEN},
		{name: "renewal with the holder secret", seats: 2, before: []string{"a"}, bound: true, present: holderSecret, subject: "a"},
		{name: "unbound lease renewed (and bound)", seats: 2, before: []string{"a"}, present: holderSecret, subject: "a"},
		{name: "release without the holder secret", seats: 2, before: []string{"a"}, bound: true, release: true, subject: "a", want: catalog.EFORBIDDEN},
		{name: "release with a wrong holder secret", seats: 2, before: []string{"a"}, bound: true, release: true, present: otherSecret, subject: "a", want: catalog.EFORBIDDEN},
		{name: "release with the holder secret", seats: 2, before: []string{"a"}, bound: true, release: true, present: holderSecret, subject: "a"},
		{name: "another subject is a new lease", seats: 2, before: []string{"a"}, bound: true, subject: "b"},
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := acquireOnControlPlane(t, tc, now)
			mir := acquireOnMirror(t, tc, now)
			if catalog.ErrorCode(cp) != catalog.ErrorCode(mir) {
				t.Fatalf("control plane answers %v, mirror answers %v: want the same code", cp, mir)
			}
			if got := catalog.ErrorCode(cp); cp != nil && got != tc.want || cp == nil && tc.want != "" {
				t.Fatalf("both answer %v (code %q), want code %q", cp, got, tc.want)
			}
		})
	}
}

var mirrorID = catalog.NewID(catalog.PrefixMirror)

func (tc parityCase) policyJSON(t *testing.T) json.RawMessage {
	// Online seats (max_seats less the delegated ones) equal the
	// mirror's; with no seats, all are delegated to another mirror.
	p := map[string]any{"max_seats": 2 * tc.seats, "mirror_seats": map[string]int{mirrorID: tc.seats}}
	if tc.seats == 0 {
		p["max_seats"] = 1
		p["mirror_seats"] = map[string]int{catalog.NewID(catalog.PrefixMirror): 1}
	}
	for k, v := range tc.policy {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (tc parityCase) window(now time.Time) (time.Time, *time.Time) {
	start := now.Add(-time.Hour + tc.start)
	if tc.start > 0 {
		start = now.Add(tc.start)
	}
	if tc.end == nil {
		return start, nil
	}
	e := now.Add(*tc.end)
	return start, &e
}

func acquireOnControlPlane(t *testing.T, tc parityCase, now time.Time) error {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_parity"})
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Acme", Status: catalog.TenantActive}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	start, end := tc.window(now)
	e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID, Policy: tc.policyJSON(t), StartsAt: start, EndsAt: end}
	for _, err := range []error{s.CreateTenant(ctx, tn), s.CreateProduct(ctx, p), s.CreateEntitlement(ctx, e)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if tc.assign {
		st := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: e.EntitlementID, SubjectType: catalog.SubjectUser, SubjectID: tc.subject}
		if err := s.AssignSeat(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	leases := map[string]string{}
	acquire := func(subject, secret string, at time.Time) error {
		sum := fmt.Sprintf("%064x", at.UnixNano())
		l, err := s.AcquireLease(ctx, &catalog.Lease{EntitlementID: e.EntitlementID, SubjectType: catalog.SubjectUser, SubjectID: subject, IssuedAt: at, TokenHash: sum, HolderHash: license.HolderHash(secret)})
		if err == nil {
			leases[subject] = l.LeaseID
		}
		return err
	}
	for _, b := range tc.before {
		if err := acquire(b, tc.secretOf(), now); err != nil {
			t.Fatalf("control plane: first lease of %s: %v", b, err)
		}
	}
	if tc.status != "" {
		if _, err := s.UpdateTenant(ctx, tn.TenantID, func(x *catalog.Tenant) error { x.Status = tc.status; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if tc.release {
		_, err := s.ReleaseLease(ctx, leases[tc.subject], license.HolderHash(tc.present), false, now.Add(time.Minute))
		return err
	}
	return acquire(tc.subject, tc.present, now.Add(time.Minute))
}

func acquireOnMirror(t *testing.T, tc parityCase, now time.Time) error {
	t.Helper()
	st, err := state.Open(filepath.Join(t.TempDir(), "mirror.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tenantID := catalog.NewID(catalog.PrefixTenant)
	l, err := st.Ledger(mirrorID, key, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	start, end := tc.window(now)
	eid := catalog.NewID(catalog.PrefixEntitlement)
	m := &snapshot.Manifest{
		TenantID: tenantID, ExpiresAt: now.Add(24 * time.Hour),
		Tenant:       snapshot.Tenant{TenantID: tenantID, Status: catalog.TenantActive},
		Entitlements: []snapshot.Entitlement{{EntitlementID: eid, ProductID: catalog.NewID(catalog.PrefixProduct), Policy: tc.policyJSON(t), StartsAt: start, EndsAt: end}},
	}
	if tc.assign {
		m.SeatAssignments = []snapshot.SeatAssignment{{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: eid, SubjectType: catalog.SubjectUser, SubjectID: tc.subject}}
	}
	ctx := context.Background()
	for _, b := range tc.before {
		if _, _, err := l.Acquire(ctx, m, eid, catalog.SubjectUser, b, tc.secretOf(), now); err != nil {
			t.Fatalf("mirror: first lease of %s: %v", b, err)
		}
	}
	if tc.status != "" {
		m.Tenant.Status = tc.status
	}
	if tc.release {
		return l.Release(ctx, eid, catalog.SubjectUser, tc.subject, tc.present, false, now.Add(time.Minute))
	}
	_, _, err = l.Acquire(ctx, m, eid, catalog.SubjectUser, tc.subject, tc.present, now.Add(time.Minute))
	return err
}
