package license

import (
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

func TestAdmit_Rules(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 500, time.UTC)
	end := now.Add(30 * time.Minute) // has 500ns: rounded up
	endUp := time.Unix(end.Unix()+1, 0).UTC()
	auto := &catalog.EntitlementPolicy{MaxSeats: 2, SeatAssignmentMode: catalog.SeatsAutomatic, LeaseTTL: catalog.Duration(time.Hour)}
	explicit := &catalog.EntitlementPolicy{MaxSeats: 2, SeatAssignmentMode: catalog.SeatsExplicit, LeaseTTL: catalog.Duration(time.Hour)}
	active := &catalog.Lease{LeaseID: "lea_1", ExpiresAt: now.Add(time.Minute)}
	expired := &catalog.Lease{LeaseID: "lea_1", ExpiresAt: now.Add(-time.Minute)}
	base := func(f func(a *Admission)) Admission {
		a := Admission{
			EntitlementID: "ent_1", StartsAt: now.Add(-time.Hour), Policy: auto,
			TenantID: "ten_1", TenantStatus: catalog.TenantActive,
			SubjectType: catalog.SubjectUser, SubjectID: "alice",
			Limit: 2, Now: now,
		}
		if f != nil {
			f(&a)
		}
		return a
	}
	iat := time.Unix(now.Unix(), 0).UTC()
	cases := []struct {
		name      string
		in        Admission
		wantCode  string
		wantRenew bool
		wantExp   time.Time
	}{
		{"new lease", base(nil), "", false, iat.Add(time.Hour)},
		{"renewal", base(func(a *Admission) { a.Held, a.Active = active, 1 }), "", true, iat.Add(time.Hour)},
		{"renewal at the limit", base(func(a *Admission) { a.Held, a.Active = active, 2 }), "", true, iat.Add(time.Hour)},
		{"expired lease is not renewed", base(func(a *Admission) { a.Held, a.Active = expired, 1 }), "", false, iat.Add(time.Hour)},
		{"seats full", base(func(a *Admission) { a.Active = 2 }), catalog.ECONFLICT, false, time.Time{}},
		{"expired lease with seats full", base(func(a *Admission) { a.Held, a.Active = expired, 2 }), catalog.ECONFLICT, false, time.Time{}},
		{"renewal after a seat reduction", base(func(a *Admission) { a.Held, a.Active, a.Limit = active, 3, 2 }), catalog.ECONFLICT, false, time.Time{}},
		{"tenant suspended", base(func(a *Admission) { a.TenantStatus = catalog.TenantSuspended }), catalog.EFORBIDDEN, false, time.Time{}},
		{"tenant deleted", base(func(a *Admission) { a.TenantStatus = catalog.TenantDeleted }), catalog.EFORBIDDEN, false, time.Time{}},
		{"not started", base(func(a *Admission) { a.StartsAt = now.Add(time.Second) }), catalog.EFORBIDDEN, false, time.Time{}},
		{"ended", base(func(a *Admission) { e := now; a.EndsAt = &e }), catalog.EFORBIDDEN, false, time.Time{}},
		{"no seats here", base(func(a *Admission) { a.Limit = 0 }), catalog.EFORBIDDEN, false, time.Time{}},
		{"explicit without a seat", base(func(a *Admission) { a.Policy = explicit }), catalog.EFORBIDDEN, false, time.Time{}},
		{"explicit with a seat", base(func(a *Admission) { a.Policy, a.SeatAssigned = explicit, true }), "", false, iat.Add(time.Hour)},
		{"ineligible wins over full", base(func(a *Admission) { a.TenantStatus, a.Active = catalog.TenantSuspended, 5 }), catalog.EFORBIDDEN, false, time.Time{}},
		{"term capped at the entitlement's end", base(func(a *Admission) { a.EndsAt = &end }), "", false, endUp},
		{"term capped at the request", base(func(a *Admission) { a.Requested = now.Add(10 * time.Minute) }), "", false, now.Add(10 * time.Minute)},
		{"request past the term is ignored", base(func(a *Admission) { a.Requested = now.Add(2 * time.Hour) }), "", false, iat.Add(time.Hour)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Admit(tc.in)
			if code := catalog.ErrorCode(err); err != nil && code != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("Admit error = %v (code %q), want code %q", err, code, tc.wantCode)
			}
			if err != nil {
				return
			}
			if got.Renew != tc.wantRenew {
				t.Errorf("Renew = %v, want %v", got.Renew, tc.wantRenew)
			}
			if !got.IssuedAt.Equal(iat) {
				t.Errorf("IssuedAt = %s, want %s (whole seconds)", got.IssuedAt, iat)
			}
			if !got.ExpiresAt.Equal(tc.wantExp) {
				t.Errorf("ExpiresAt = %s, want %s", got.ExpiresAt, tc.wantExp)
			}
		})
	}
}

func TestTerm_RoundsTheEndUp(t *testing.T) {
	p := &catalog.EntitlementPolicy{LeaseTTL: catalog.Duration(time.Hour)}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := now.Add(time.Minute + 300*time.Millisecond)
	_, exp := Term(p, &end, time.Time{}, now)
	if want := now.Add(61 * time.Second); !exp.Equal(want) {
		t.Fatalf("expires_at = %s, want %s (the end rounded up to the second)", exp, want)
	}
}

func TestSubjectKey_SeparatesTypes(t *testing.T) {
	a := string(SubjectKey("ent_1", catalog.SubjectUser, "x"))
	b := string(SubjectKey("ent_1", catalog.SubjectMachine, "x"))
	if a == b {
		t.Fatalf("SubjectKey gives a user and a machine of the same id the same key %q", a)
	}
}
