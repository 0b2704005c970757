package license

import (
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Admission is everything the lease admission rule looks at. The caller
// (the control plane store, a mirror's ledger) gathers it inside its
// write transaction; Admit itself does no I/O.
type Admission struct {
	EntitlementID string
	StartsAt      time.Time
	EndsAt        *time.Time // nil: open-ended
	Policy        *catalog.EntitlementPolicy

	TenantID     string
	TenantStatus string

	SubjectType, SubjectID string
	// SeatAssigned reports whether the subject holds an unrevoked seat
	// assignment of the entitlement; looked at in explicit mode only.
	SeatAssigned bool

	// Limit is the seats this issuer may hand out: the policy's online
	// seats on the control plane, mirror_seats[mirror] on a mirror.
	Limit int
	// Held is the subject's last lease of the entitlement (any state),
	// nil if none.
	Held *catalog.Lease
	// Active is the number of leases holding a seat at Now, Held included
	// when it is active. It must be exact whenever it is ≥ Limit.
	Active int

	// HolderHash is the hash of the holder secret the request presented
	// ("" for none). Renewing an active lease bound to a holder needs the
	// same hash (CheckHolder).
	HolderHash string

	// Requested caps the expiry (zero: the policy's full term).
	Requested time.Time
	Now       time.Time
}

// Decision is what Admit allows.
type Decision struct {
	// Renew: the subject's active lease Held is renewed in place (same
	// lease id); otherwise a new lease is issued.
	Renew bool
	// IssuedAt and ExpiresAt are the lease's term: whole seconds, at most
	// lease_ttl long and never past the entitlement's end.
	IssuedAt, ExpiresAt time.Time
}

// Admit is the one lease admission rule of the control plane and the
// mirrors. Refusals are domain errors with the same code on both:
// EFORBIDDEN when the subject is not eligible (tenant not active,
// entitlement not current, no seats here, explicit mode without a seat
// assignment, or renewing an active lease without its holder's secret),
// ECONFLICT when it is but no seat is free (all taken, or
// more leases out than seats after a reduction: renewals drain down).
func Admit(a Admission) (Decision, error) {
	switch {
	case a.TenantStatus != catalog.TenantActive:
		return Decision{}, catalog.Errorf(catalog.EFORBIDDEN, "tenant is %s", a.TenantStatus)
	case a.Now.Before(a.StartsAt) || (a.EndsAt != nil && !a.Now.Before(*a.EndsAt)):
		return Decision{}, catalog.Errorf(catalog.EFORBIDDEN, "entitlement %s is not in its time window (starts_at %s%s)",
			a.EntitlementID, a.StartsAt.UTC().Format(time.RFC3339), endsText(a.EndsAt))
	case a.Limit < 1:
		return Decision{}, catalog.Errorf(catalog.EFORBIDDEN, "entitlement %s has no seats to lease here", a.EntitlementID)
	case a.Policy.SeatAssignmentMode == catalog.SeatsExplicit && !a.SeatAssigned:
		return Decision{}, catalog.Errorf(catalog.EFORBIDDEN, "%s %q has no seat assigned on entitlement %s (explicit mode)", a.SubjectType, a.SubjectID, a.EntitlementID)
	}
	d := Decision{Renew: a.Held != nil && a.Held.Active(a.Now)}
	if d.Renew {
		if err := CheckHolder(a.Held, a.HolderHash, false); err != nil {
			return Decision{}, err
		}
	}
	d.IssuedAt, d.ExpiresAt = Term(a.Policy, a.EndsAt, a.Requested, a.Now)
	switch {
	case d.Renew && a.Active > a.Limit:
		return Decision{}, catalog.Errorf(catalog.ECONFLICT, "%d leases of entitlement %s are out but only %d seats remain: renewal refused until some are released or expire", a.Active, a.EntitlementID, a.Limit)
	case !d.Renew && a.Active >= a.Limit:
		return Decision{}, catalog.Errorf(catalog.ECONFLICT, "all %d seats are in use (entitlement %s)", a.Limit, a.EntitlementID)
	}
	return d, nil
}

// Term is the issued_at and expires_at of a lease taken at now: whole
// seconds, lease_ttl long, capped at requested when given and at the
// entitlement's end (rounded up to the second, as tokens carry seconds).
func Term(p *catalog.EntitlementPolicy, endsAt *time.Time, requested, now time.Time) (iat, exp time.Time) {
	iat = time.Unix(now.Unix(), 0).UTC()
	exp = iat.Add(time.Duration(p.LeaseTTL))
	if !requested.IsZero() && requested.Before(exp) {
		exp = requested.UTC()
	}
	if endsAt != nil {
		if end := time.Unix(ceilUnix(*endsAt), 0).UTC(); end.Before(exp) {
			exp = end
		}
	}
	return iat, exp
}

// SubjectKey identifies a subject's lease of an entitlement in both
// stores' indexes: entitlement, subject type and subject id, NUL-joined
// (a machine and a user of the same id are different subjects).
func SubjectKey(entitlementID, subjectType, subjectID string) []byte {
	k := make([]byte, 0, len(entitlementID)+len(subjectType)+len(subjectID)+2)
	k = append(k, entitlementID...)
	k = append(k, 0)
	k = append(k, subjectType...)
	k = append(k, 0)
	return append(k, subjectID...)
}

func endsText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ", ends_at " + t.UTC().Format(time.RFC3339)
}
