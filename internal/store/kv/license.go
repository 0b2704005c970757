package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/store"
)

// checkEntitlement validates the fields a caller may set; policy_json is
// kept as given (compacted).
func checkEntitlement(e *catalog.Entitlement) error {
	if len(e.Policy) > 64<<10 {
		return catalog.Invalid("policy_json", "must be at most 64 KiB")
	}
	if _, err := catalog.ParseEntitlementPolicy(e.Policy); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, e.Policy); err != nil {
		return catalog.Invalid("policy_json", "malformed JSON")
	}
	e.Policy = buf.Bytes()
	if e.StartsAt.IsZero() {
		return catalog.Invalid("starts_at", "is required")
	}
	if e.EndsAt != nil && !e.EndsAt.After(e.StartsAt) {
		return catalog.Invalid("ends_at", "must be after starts_at")
	}
	return nil
}

// checkOverlap refuses e if another entitlement of its tenant+product
// overlaps it.
func checkOverlap(tx Tx, e *catalog.Entitlement) error {
	pfx := prefix(e.TenantID, e.ProductID)
	c := tx.Bucket(iEntTP).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		id := string(k[len(pfx):])
		if id == e.EntitlementID {
			continue
		}
		var o catalog.Entitlement
		if err := mustGet(tx, bEntitlements, "entitlement", id, &o); err != nil {
			return err
		}
		if e.Overlaps(&o) {
			return catalog.Errorf(catalog.ECONFLICT, "entitlement overlaps %s of the same tenant and product", o.EntitlementID)
		}
	}
	return nil
}

// CreateEntitlement stores an entitlement that overlaps no other of the
// same tenant+product.
func (db *Store) CreateEntitlement(ctx context.Context, e *catalog.Entitlement) error {
	if err := checkID("entitlement_id", e.EntitlementID); err != nil {
		return err
	}
	if err := checkEntitlement(e); err != nil {
		return err
	}
	keys := auditAnd(bk(bTenants, e.TenantID), bk(bProducts, e.ProductID), bk(bEntitlements, e.EntitlementID))
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		if err := liveTenant(w.Tx, e.TenantID); err != nil {
			return err
		}
		if err := exists(w.Tx, bProducts, "product", e.ProductID); err != nil {
			return err
		}
		if err := checkOverlap(w.Tx, e); err != nil {
			return err
		}
		e.CreatedAt = orNow(e.CreatedAt, w.now)
		e.UpdatedAt = e.CreatedAt
		if err := w.insert(bEntitlements, "entitlement", e.EntitlementID, e); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iEntTP, key(e.TenantID, e.ProductID, e.EntitlementID), ""); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iEntTenant, key(e.TenantID, e.EntitlementID), ""); err != nil {
			return err
		}
		return w.event(e.TenantID, "entitlement.created", e)
	})
}

// Entitlement returns one entitlement.
func (db *Store) Entitlement(ctx context.Context, id string) (*catalog.Entitlement, error) {
	var e catalog.Entitlement
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bEntitlements, "entitlement", id, &e) }); err != nil {
		return nil, err
	}
	return &e, nil
}

// Entitlements lists a tenant's entitlements by id.
func (db *Store) Entitlements(ctx context.Context, tenantID string, p store.Page) (out []*catalog.Entitlement, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bTenants, "tenant", tenantID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.Entitlement](tx, iEntTenant, bEntitlements, prefix(tenantID), p)
		return err
	})
	return out, next, err
}

// UpdateEntitlement changes policy and time window; the overlap rule is
// checked again.
func (db *Store) UpdateEntitlement(ctx context.Context, id string, fn func(*catalog.Entitlement) error) (*catalog.Entitlement, error) {
	var cur catalog.Entitlement
	err := db.updateGrouped(ctx, auditAnd(bk(bEntitlements, id)), func(w *wtx) error {
		cur = catalog.Entitlement{} // a redone batch runs this again (group.go)
		var old catalog.Entitlement
		if err := mustGet(w.Tx, bEntitlements, "entitlement", id, &old); err != nil {
			return err
		}
		if err := mustGet(w.Tx, bEntitlements, "entitlement", id, &cur); err != nil {
			return err
		}
		if err := fn(&cur); err != nil {
			return err
		}
		switch {
		case cur.EntitlementID != old.EntitlementID:
			return immutable("entitlement_id")
		case cur.TenantID != old.TenantID:
			return immutable("tenant_id")
		case cur.ProductID != old.ProductID:
			return immutable("product_id")
		case !cur.CreatedAt.Equal(old.CreatedAt):
			return immutable("created_at")
		}
		if err := checkEntitlement(&cur); err != nil {
			return err
		}
		if err := checkOverlap(w.Tx, &cur); err != nil {
			return err
		}
		cur.UpdatedAt = w.now
		if err := w.put(bEntitlements, []byte(id), &cur); err != nil {
			return err
		}
		return w.event(cur.TenantID, "entitlement.updated", &cur)
	})
	if err != nil {
		return nil, err
	}
	return &cur, nil
}

func entitlementPolicy(e *catalog.Entitlement) (*catalog.EntitlementPolicy, error) {
	pol, err := catalog.ParseEntitlementPolicy(e.Policy)
	if err != nil {
		return nil, fmt.Errorf("entitlement %s: stored policy: %w", e.EntitlementID, err)
	}
	return pol, nil
}

func checkSubject(subjectType, subjectID string) error {
	if err := catalog.ValidateEnum("subject_type", subjectType, catalog.SubjectTypes); err != nil {
		return err
	}
	if subjectID == "" {
		return catalog.Invalid("subject_id", "is required")
	}
	if len(subjectID) > 256 || bytes.IndexByte([]byte(subjectID), 0) >= 0 {
		return catalog.Invalid("subject_id", "must be at most 256 bytes without NUL")
	}
	return nil
}

// AssignSeat gives a subject a seat of an explicit-mode entitlement.
func (db *Store) AssignSeat(ctx context.Context, s *catalog.SeatAssignment) error {
	if err := checkID("seat_assignment_id", s.SeatAssignmentID); err != nil {
		return err
	}
	if err := checkSubject(s.SubjectType, s.SubjectID); err != nil {
		return err
	}
	if err := checkText("assigned_by", s.AssignedBy, false); err != nil {
		return err
	}
	if s.RevokedAt != nil || s.RevokedBy != "" {
		return catalog.Invalid("revoked_at", "must be empty on a new assignment")
	}
	ak := key(s.EntitlementID, s.SubjectType, s.SubjectID)
	// Shared (shared.go): the entitlement is changed by exclusive writes
	// only; the subject's active seat, the seat counter and the new
	// assignment's id are keys this write checks and writes. Assignments
	// of one entitlement from two instances contend for its counter (a
	// hot key); those of different entitlements run side by side.
	keys := []BucketKey{{bEntitlements, []byte(s.EntitlementID)}, {iSeatActive, ak}, {bSeatCounts, []byte(s.EntitlementID)}, {bSeats, []byte(s.SeatAssignmentID)}, {bMeta, kAuditHead}}
	hot := []BucketKey{{bSeatCounts, []byte(s.EntitlementID)}}
	given := *s
	return db.updateSharedHot(ctx, keys, hot, func(w *wtx) error {
		*s = given // a redone batch runs this again (group.go)
		if err := w.ensureCounted(); err != nil {
			return err
		}
		var e catalog.Entitlement
		if err := mustGet(w.Tx, bEntitlements, "entitlement", s.EntitlementID, &e); err != nil {
			return err
		}
		pol, err := entitlementPolicy(&e)
		if err != nil {
			return err
		}
		if pol.SeatAssignmentMode != catalog.SeatsExplicit {
			return catalog.Errorf(catalog.ECONFLICT, "entitlement %s is not in explicit mode", e.EntitlementID)
		}
		active := w.Bucket(iSeatActive)
		if id := active.Get(ak); id != nil {
			return catalog.Errorf(catalog.ECONFLICT, "%s %s already holds seat %s", s.SubjectType, s.SubjectID, id)
		}
		n, err := getCount(w.Bucket(bSeatCounts), e.EntitlementID)
		if err != nil {
			return err
		}
		if n >= int64(pol.OnlineSeats()) {
			return catalog.Errorf(catalog.ECONFLICT, "no free seat: all %d seats are assigned", pol.OnlineSeats())
		}
		s.AssignedAt = orNow(s.AssignedAt, w.now)
		if s.AssignedBy == "" {
			s.AssignedBy = catalog.ActorFrom(w.ctx).ID
		}
		if err := w.insert(bSeats, "seat assignment", s.SeatAssignmentID, s); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iSeatEnt, key(e.EntitlementID, s.SeatAssignmentID), ""); err != nil {
			return err
		}
		if err := active.Put(ak, []byte(s.SeatAssignmentID)); err != nil {
			return err
		}
		if err := addCount(w.Bucket(bSeatCounts), e.EntitlementID, 1); err != nil {
			return err
		}
		return w.event(e.TenantID, "seat.assigned", s)
	})
}

// RevokeSeat ends an assignment; the record stays as history.
func (db *Store) RevokeSeat(ctx context.Context, entitlementID, seatID, by string, at time.Time) (*catalog.SeatAssignment, error) {
	if err := checkText("revoked_by", by, false); err != nil {
		return nil, err
	}
	var s catalog.SeatAssignment
	// Shared (shared.go): the entitlement is changed by exclusive writes
	// only; the assignment, the subject's active seat and the counter are
	// keys this write checks and writes (two revocations of one seat
	// conflict on the assignment).
	keys := []BucketKey{{bEntitlements, []byte(entitlementID)}, {bSeats, []byte(seatID)}, {bSeatCounts, []byte(entitlementID)}, {bMeta, kAuditHead}}
	hot := []BucketKey{{bSeatCounts, []byte(entitlementID)}}
	// Then the subject's active seat, once the assignment is read.
	then := func(tx Tx) []BucketKey {
		var held catalog.SeatAssignment
		if ok, err := getJSON(tx, bSeats, []byte(seatID), &held); !ok || err != nil {
			return nil
		}
		return []BucketKey{{iSeatActive, key(entitlementID, held.SubjectType, held.SubjectID)}}
	}
	err := db.updateSharedCall(&groupCall{ctx: ctx, keys: keys, hot: hot, then: then, fn: func(w *wtx) error {
		s = catalog.SeatAssignment{} // a redone batch runs this again (group.go)
		if err := w.ensureCounted(); err != nil {
			return err
		}
		var e catalog.Entitlement
		if err := mustGet(w.Tx, bEntitlements, "entitlement", entitlementID, &e); err != nil {
			return err
		}
		if err := mustGet(w.Tx, bSeats, "seat assignment", seatID, &s); err != nil {
			return err
		}
		if s.EntitlementID != entitlementID {
			return catalog.NotFound("seat assignment", seatID)
		}
		if s.RevokedAt != nil {
			return catalog.Errorf(catalog.ECONFLICT, "seat assignment %s is already revoked", seatID)
		}
		t := orNow(at, w.now).UTC()
		s.RevokedAt = &t
		s.RevokedBy = by
		if by == "" {
			s.RevokedBy = catalog.ActorFrom(w.ctx).ID
		}
		if err := w.put(bSeats, []byte(seatID), &s); err != nil {
			return err
		}
		active := w.Bucket(iSeatActive)
		ak := key(entitlementID, s.SubjectType, s.SubjectID)
		if string(active.Get(ak)) == seatID {
			if err := active.Delete(ak); err != nil {
				return err
			}
			if err := addCount(w.Bucket(bSeatCounts), entitlementID, -1); err != nil {
				return err
			}
		}
		return w.event(e.TenantID, "seat.revoked", &s)
	}})
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Seats lists an entitlement's assignments (active and revoked) by id.
func (db *Store) Seats(ctx context.Context, entitlementID string, p store.Page) (out []*catalog.SeatAssignment, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bEntitlements, "entitlement", entitlementID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.SeatAssignment](tx, iSeatEnt, bSeats, prefix(entitlementID), p)
		return err
	})
	return out, next, err
}

// AcquireLease issues or renews a lease (see store.Store).
func (db *Store) AcquireLease(ctx context.Context, l *catalog.Lease, sign ...store.LeaseSigner) (*catalog.Lease, error) {
	if err := checkSubject(l.SubjectType, l.SubjectID); err != nil {
		return nil, err
	}
	if l.IssuedAt.IsZero() {
		return nil, catalog.Invalid("issued_at", "is required")
	}
	if !l.ExpiresAt.IsZero() && !l.ExpiresAt.After(l.IssuedAt) {
		return nil, catalog.Invalid("expires_at", "must be after issued_at")
	}
	if len(sign) == 0 {
		if err := catalog.ValidateSHA256("token_hash", l.TokenHash); err != nil {
			return nil, err
		}
	}
	signed := func(final *catalog.Lease) error {
		if len(sign) == 0 {
			return nil
		}
		h, err := sign[0](final)
		if err != nil {
			return err
		}
		final.TokenHash = h
		return catalog.ValidateSHA256("token_hash", h)
	}
	if l.ReleasedAt != nil {
		return nil, catalog.Invalid("released_at", "must be empty on a new lease")
	}
	var out catalog.Lease
	subjKey := license.SubjectKey(l.EntitlementID, l.SubjectType, l.SubjectID)
	// A new lease's id is chosen here, so that its absence is read ahead
	// with the rest.
	newID := l.LeaseID
	if newID == "" {
		newID = catalog.NewID(catalog.PrefixLease)
	}
	keys := []BucketKey{
		{bEntitlements, []byte(l.EntitlementID)}, {bLeaseCounts, []byte(l.EntitlementID)},
		{iLeaseActive, subjKey}, {iSeatActive, subjKey}, {bMeta, kAuditHead}, {bLeases, []byte(newID)},
	}
	if l.TenantID != "" {
		keys = append(keys, BucketKey{bTenants, []byte(l.TenantID)})
	}
	// Then the entitlement's tenant and the subject's current lease.
	then := func(tx Tx) []BucketKey {
		var more []BucketKey
		var e catalog.Entitlement
		if ok, err := getJSON(tx, bEntitlements, []byte(l.EntitlementID), &e); ok && err == nil {
			more = append(more, BucketKey{bTenants, []byte(e.TenantID)})
		}
		if id := tx.Bucket(iLeaseActive).Get(subjKey); id != nil {
			more = append(more, BucketKey{bLeases, bytes.Clone(id)})
		}
		return more
	}
	// Shared (shared.go): the entitlement and its tenant are changed by
	// exclusive writes only; a seat assignment is read, not written (seat
	// writes read no lease state, so an issuance that raced a revocation
	// comes before it, as it would have a moment earlier); the lease
	// counter, the subject's active lease, the expiry entries it pops and
	// the new lease's id are keys this write checks and writes. Leases of
	// one entitlement from two instances contend for its counter (a hot
	// key: they take turns, or one runs again); those of different
	// entitlements run side by side.
	hot := []BucketKey{{bLeaseCounts, []byte(l.EntitlementID)}}
	err := db.updateSharedCall(&groupCall{ctx: ctx, keys: keys, hot: hot, then: then, fn: func(w *wtx) error {
		if err := w.ensureCounted(); err != nil {
			return err
		}
		var e catalog.Entitlement
		if err := mustGet(w.Tx, bEntitlements, "entitlement", l.EntitlementID, &e); err != nil {
			return err
		}
		if l.TenantID != "" && l.TenantID != e.TenantID {
			return catalog.NotFound("entitlement", l.EntitlementID)
		}
		var t catalog.Tenant
		if err := mustGet(w.Tx, bTenants, "tenant", e.TenantID, &t); err != nil {
			return err
		}
		pol, err := entitlementPolicy(&e)
		if err != nil {
			return err
		}
		// The entitlement's leases expired by now leave its active set
		// first, so the counter is the leases active now (O(expired)).
		_, n, err := popExpired(w.Tx, e.EntitlementID, l.IssuedAt, 0)
		if err != nil {
			return err
		}
		subj := license.SubjectKey(e.EntitlementID, l.SubjectType, l.SubjectID)
		var held *catalog.Lease
		if id := w.Bucket(iLeaseActive).Get(subj); id != nil {
			held = new(catalog.Lease)
			if err := mustGet(w.Tx, bLeases, "lease", string(id), held); err != nil {
				return err
			}
		}
		// The seat assignment matters in explicit mode only (one read
		// fewer per issuance otherwise).
		assigned := pol.SeatAssignmentMode == catalog.SeatsExplicit && w.Bucket(iSeatActive).Get(subj) != nil
		d, err := license.Admit(license.Admission{
			EntitlementID: e.EntitlementID, StartsAt: e.StartsAt, EndsAt: e.EndsAt, Policy: pol,
			TenantID: t.TenantID, TenantStatus: t.Status,
			SubjectType: l.SubjectType, SubjectID: l.SubjectID,
			SeatAssigned: assigned,
			Limit:        pol.OnlineSeats(), Held: held, Active: int(n),
			HolderHash: l.HolderHash, Requested: l.ExpiresAt, Now: l.IssuedAt,
		})
		if err != nil {
			return err
		}
		if d.Renew {
			oldExp := held.ExpiresAt
			held.IssuedAt, held.ExpiresAt, held.TokenHash = d.IssuedAt, d.ExpiresAt, l.TokenHash
			if held.HolderHash == "" {
				held.HolderHash = l.HolderHash // a lease from before holder secrets: bind it now
			}
			if err := signed(held); err != nil {
				return err
			}
			if err := w.put(bLeases, []byte(held.LeaseID), held); err != nil {
				return err
			}
			if err := moveExpiry(w.Tx, held, oldExp, subj); err != nil {
				return err
			}
			out = *held
			return w.event(e.TenantID, "lease.renewed", held)
		}
		out = *l
		out.IssuedAt, out.ExpiresAt = d.IssuedAt, d.ExpiresAt
		out.LeaseID = newID
		if err := checkID("lease_id", out.LeaseID); err != nil {
			return err
		}
		out.TenantID = e.TenantID
		if err := signed(&out); err != nil {
			return err
		}
		if err := w.insert(bLeases, "lease", out.LeaseID, &out); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iLeaseEnt, key(e.EntitlementID, out.LeaseID), ""); err != nil {
			return err
		}
		if held != nil {
			// Not renewable (cannot happen once expired leases are
			// popped, but the set must stay exact): it gives way.
			if _, err := leaveActive(w.Tx, held, held.ExpiresAt); err != nil {
				return err
			}
		}
		if err := enterActive(w.Tx, &out, subj); err != nil {
			return err
		}
		return w.event(e.TenantID, "lease.issued", &out)
	}})
	if err != nil {
		return nil, err
	}
	if db.shared != nil {
		db.leaseEnts.put(out.LeaseID, out.EntitlementID)
	}
	return &out, nil
}

// ActiveLeaseCount counts the entitlement's leases active at t: its
// counter less its expiry entries due by t (read only: they are popped by
// the next acquisition or the sweep).
func (db *Store) ActiveLeaseCount(ctx context.Context, entitlementID string, t time.Time) (int, error) {
	n := 0
	err := db.view(ctx, func(tx Tx) error {
		if !db.counted.Load() && tx.Bucket(bMeta).Get(kLeaseCounted) == nil {
			return countActiveScan(tx, entitlementID, t, &n)
		}
		c, err := readLeaseCount(tx, entitlementID)
		if err != nil {
			return err
		}
		n = int(c.n)
		if c.n > 0 && expiryNanos(t) >= c.minExp {
			n -= countDue(tx, entitlementID, t)
		}
		return nil
	})
	return n, err
}

// countActiveScan counts by decoding the leases, for a store whose
// counters are not built yet.
func countActiveScan(tx Tx, entitlementID string, t time.Time, n *int) error {
	pfx := prefix(entitlementID)
	c := tx.Bucket(iLeaseActive).Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		var l catalog.Lease
		if err := mustGet(tx, bLeases, "lease", string(v), &l); err != nil {
			return err
		}
		if l.Active(t) {
			*n++
		}
	}
	return nil
}

// Lease returns one lease.
func (db *Store) Lease(ctx context.Context, id string) (*catalog.Lease, error) {
	var l catalog.Lease
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bLeases, "lease", id, &l) }); err != nil {
		return nil, err
	}
	return &l, nil
}

// ReleaseLease gives a lease's seat back; releasing twice is ECONFLICT.
// It needs the holder's secret (its hash) unless force
// (license.CheckHolder).
func (db *Store) ReleaseLease(ctx context.Context, id, holderHash string, force bool, at time.Time) (*catalog.Lease, error) {
	var l catalog.Lease
	// Shared (shared.go): every key it checks it writes (the lease; when
	// the lease is its subject's active one, that entry, its expiry entry
	// and the entitlement's lease counter), but for the subject's active
	// entry when it names another lease: a lease that has left the
	// active set never enters it again (a renewal renews the subject's
	// active lease, an issue makes a new one). Two releases of one lease
	// conflict on it, a release and an issue or renewal of one
	// entitlement on its counter or the lease.
	// What leaveActive reads, once the lease is: its subject's active
	// entry and its entitlement's counter.
	then := func(tx Tx) []BucketKey {
		var held catalog.Lease
		if ok, err := getJSON(tx, bLeases, []byte(id), &held); !ok || err != nil {
			return nil
		}
		return []BucketKey{{iLeaseActive, license.SubjectKey(held.EntitlementID, held.SubjectType, held.SubjectID)},
			{bLeaseCounts, []byte(held.EntitlementID)}}
	}
	// A lease this instance issued names its entitlement's counter as a
	// hot key, as its issue did: under contention the two take turns on
	// it rather than one running again (leaseEnts).
	var hot []BucketKey
	if ent, ok := db.leaseEnts.get(id); ok {
		hot = []BucketKey{{bLeaseCounts, []byte(ent)}}
	}
	err := db.updateSharedCall(&groupCall{ctx: ctx, keys: []BucketKey{{bLeases, []byte(id)}}, hot: hot, then: then, fn: func(w *wtx) error {
		l = catalog.Lease{} // a grouped call may run twice
		if err := w.ensureCounted(); err != nil {
			return err
		}
		if err := mustGet(w.Tx, bLeases, "lease", id, &l); err != nil {
			return err
		}
		if l.ReleasedAt != nil {
			return catalog.Errorf(catalog.ECONFLICT, "lease %s is already released", id)
		}
		if err := license.CheckHolder(&l, holderHash, force); err != nil {
			return err
		}
		t := orNow(at, w.now).UTC()
		l.ReleasedAt = &t
		if err := w.put(bLeases, []byte(id), &l); err != nil {
			return err
		}
		if _, err := leaveActive(w.Tx, &l, l.ExpiresAt); err != nil {
			return err
		}
		return w.event(l.TenantID, "lease.released", &l)
	}})
	if err != nil {
		return nil, err
	}
	db.leaseEnts.drop(id)
	return &l, nil
}

// leaseEnts remembers the entitlement of the leases this instance issued
// on a shared backend, so that a lease's release can name its
// entitlement's counter as a hot key before its transaction has read the
// lease (SharedUpdater: hot keys are taken before the transaction
// begins). A lease it does not know (issued by another instance, or
// forgotten) is released without one, which is only slower under
// contention. It is a hint: leases are keyed by a hash of their id (a
// collision names another entitlement's counter, which costs a wait,
// not a wrong answer) and entitlement ids are shared, so an entry takes
// about 55 bytes. Two generations bound it: when the newer fills, the
// older is dropped.
type leaseEnts struct {
	mu       sync.Mutex
	cur, old map[uint64]string
	ents     map[string]string // interned entitlement ids
}

// leaseEntsMax is how many leases a generation holds (both: about 3.5
// MB at most).
const leaseEntsMax = 1 << 15

// leaseSeed keys leaseHash; a process's hashes need not match another's.
var leaseSeed = maphash.MakeSeed()

func leaseHash(id string) uint64 { return maphash.String(leaseSeed, id) }

func (m *leaseEnts) put(lease, ent string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cur) >= leaseEntsMax {
		m.old, m.cur = m.cur, nil
	}
	if m.cur == nil {
		m.cur = make(map[uint64]string)
	}
	if len(m.ents) >= leaseEntsMax {
		m.ents = nil // many entitlements: stop sharing the old ones
	}
	if m.ents == nil {
		m.ents = make(map[string]string)
	}
	if e, ok := m.ents[ent]; ok {
		ent = e
	} else {
		m.ents[ent] = ent
	}
	m.cur[leaseHash(lease)] = ent
}

func (m *leaseEnts) get(lease string) (string, bool) {
	h := leaseHash(lease)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ent, ok := m.cur[h]; ok {
		return ent, true
	}
	ent, ok := m.old[h]
	return ent, ok
}

func (m *leaseEnts) drop(lease string) {
	h := leaseHash(lease)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cur, h)
	delete(m.old, h)
}
