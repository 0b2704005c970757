package state

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/snapshot"
)

// Buckets of the mirror's bbolt that the ledger owns.
var (
	bucketLeases     = []byte("license_leases")         // lease_id -> lease JSON
	bucketSubjects   = []byte("license_subject_leases") // SubjectKey -> lease_id
	bucketSubjectsV1 = []byte("license_subjects")       // eid \x00 subject_id -> lease_id (before subject types were keyed)
	bucketActive     = []byte("license_active")         // eid \x00 exp(8, BE) lease_id -> present
	bucketCounts     = []byte("license_counts")         // eid -> entries in license_active (8, BE)
)

// Audit event types of the ledger.
const (
	EventLeaseIssued   = "lease.issued"
	EventLeaseRenewed  = "lease.renewed"
	EventLeaseReleased = "lease.released"
)

// Ledger hands out offline leases on a mirror: admission by license.Admit,
// seats enforced and every lease recorded in the mirror's bbolt (with its
// audit event) before it answers.
type Ledger struct {
	db       *bolt.DB
	mirrorID string
	tenantID string
	key      ed25519.PrivateKey
	kid      string
	commits  *groupCommit
}

// Ledger opens the lease ledger over the mirror's state, creating its
// buckets. key is the mirror's signing key, the one its snapshot's
// mirror_keys lists.
func (s *State) Ledger(mirrorID string, key ed25519.PrivateKey, tenantID string) (*Ledger, error) {
	db := s.db
	switch {
	case !catalog.ValidID(catalog.PrefixMirror, mirrorID):
		return nil, fmt.Errorf("new ledger: %q is not a mirror id", mirrorID)
	case !catalog.ValidID(catalog.PrefixTenant, tenantID):
		return nil, fmt.Errorf("new ledger: %q is not a tenant id", tenantID)
	case len(key) != ed25519.PrivateKeySize:
		return nil, errors.New("new ledger: key is not an ed25519 private key")
	}
	err := db.Update(func(tx *bolt.Tx) error {
		counted := tx.Bucket(bucketCounts) != nil
		for _, b := range [][]byte{bucketLeases, bucketSubjects, bucketActive, bucketCounts, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		if !counted {
			// A ledger from before the counters: count its seat index
			// once, in this transaction.
			if err := rebuildCounts(tx); err != nil {
				return err
			}
		}
		return migrateSubjects(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("new ledger: %w", err)
	}
	return &Ledger{
		db: db, mirrorID: mirrorID, tenantID: tenantID, key: key,
		kid:     license.KeyID(key.Public().(ed25519.PublicKey)),
		commits: &groupCommit{db: db},
	}, nil
}

// MirrorID is the mirror this ledger issues for.
func (l *Ledger) MirrorID() string { return l.mirrorID }

// PublicKey is the mirror's lease-signing public key.
func (l *Ledger) PublicKey() ed25519.PublicKey { return l.key.Public().(ed25519.PublicKey) }

// Acquire issues a lease of entitlementID to a subject, or renews the
// subject's active one, enforcing the seats the held manifest m delegates
// to this mirror. The lease and its audit event are committed (fsynced)
// before it returns. Times are the mirror's clock, truncated to seconds.
//
// secret is the holder secret: a new lease is bound to it ("" leaves the
// lease unbound), and renewing an active lease bound to a holder needs
// the same one (license.CheckHolder, EFORBIDDEN otherwise, nothing
// written). The caller mints a fresh secret (license.NewHolderSecret) for
// a client that presented none.
func (l *Ledger) Acquire(ctx context.Context, m *snapshot.Manifest, entitlementID, subjectType, subjectID, secret string, now time.Time) (*catalog.Lease, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := catalog.ValidateEnum("subject_type", subjectType, catalog.SubjectTypes); err != nil {
		return nil, "", err
	}
	if err := license.ValidateSubjectID("subject_id", subjectID); err != nil {
		return nil, "", err
	}
	g, err := l.grant(m, entitlementID, subjectType, subjectID, now)
	if err != nil {
		return nil, "", err
	}
	g.admission.HolderHash = license.HolderHash(secret)
	pre, err := l.presign(g, subjectType, subjectID, now)
	if err != nil {
		return nil, "", fmt.Errorf("acquire lease: %w", err)
	}
	var (
		lease  *catalog.Lease
		token  string
		domErr error
	)
	// Concurrent acquires share one transaction and one fsync
	// (groupCommit). fn may run again, alone, if the shared transaction
	// fails, so it resets its outputs and reports domain errors through
	// domErr, never by failing the shared transaction.
	err = l.commits.do(func(tx *bolt.Tx) error {
		lease, token, domErr = nil, "", nil
		var err error
		lease, token, domErr, err = l.acquireTx(tx, g, pre, subjectType, subjectID, now)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("acquire lease: %w", err)
	}
	if domErr != nil {
		return nil, "", domErr
	}
	return lease, token, nil
}

// grantInfo is what the held manifest lets this mirror hand out for one
// entitlement, worked out before the transaction.
type grantInfo struct {
	ent       *snapshot.Entitlement
	policy    *catalog.EntitlementPolicy
	admission license.Admission // without Held and Active, filled in the transaction
}

// grant checks the held manifest allows a lease of entitlementID to the
// subject at now (pure).
func (l *Ledger) grant(m *snapshot.Manifest, entitlementID, subjectType, subjectID string, now time.Time) (*grantInfo, error) {
	if m == nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "the mirror holds no snapshot yet")
	}
	if m.TenantID != l.tenantID {
		return nil, fmt.Errorf("held snapshot is for tenant %s, the mirror serves %s", m.TenantID, l.tenantID)
	}
	if !now.Before(m.ExpiresAt) {
		// Tokens signed now would not verify along the chain.
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "the held snapshot expired at %s (the mirror's clock reads %s); sync the mirror, or check its clock", m.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if err := snapshot.CheckClock(m, now); err != nil {
		// Tokens signed with a clock this far behind would be expired
		// (or near it) at every client whose clock is right.
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "no lease issued: %v", err)
	}
	var ent *snapshot.Entitlement
	for i := range m.Entitlements {
		if m.Entitlements[i].EntitlementID == entitlementID {
			ent = &m.Entitlements[i]
			break
		}
	}
	if ent == nil {
		return nil, catalog.NotFound("entitlement", entitlementID)
	}
	p, err := catalog.ParseEntitlementPolicy(ent.Policy)
	if err != nil {
		return nil, fmt.Errorf("entitlement %s: %w", entitlementID, err)
	}
	a := admissionOf(m, ent, p, subjectType, subjectID)
	a.Limit = p.MirrorSeats[l.mirrorID]
	a.Now = now
	// Eligibility is checked here, before signing; capacity again in the
	// transaction.
	if _, err := license.Admit(a); err != nil && catalog.ErrorCode(err) == catalog.EFORBIDDEN {
		return nil, err
	}
	return &grantInfo{ent: ent, policy: p, admission: a}, nil
}

// admissionOf is what the held manifest says about a lease of ent to the
// subject.
func admissionOf(m *snapshot.Manifest, ent *snapshot.Entitlement, p *catalog.EntitlementPolicy, subjectType, subjectID string) license.Admission {
	a := license.Admission{
		EntitlementID: ent.EntitlementID, StartsAt: ent.StartsAt, EndsAt: ent.EndsAt, Policy: p,
		TenantID: m.TenantID, TenantStatus: m.Tenant.Status,
		SubjectType: subjectType, SubjectID: subjectID,
	}
	for _, s := range m.SeatAssignments {
		if s.EntitlementID == ent.EntitlementID && s.SubjectID == subjectID && s.SubjectType == subjectType && s.RevokedAt == nil {
			a.SeatAssigned = true
			break
		}
	}
	return a
}

// acquireTx does the acquire in tx. A domain error (no seat, ...) comes
// back as domErr with nothing written; err is a storage failure.
func (l *Ledger) acquireTx(tx *bolt.Tx, g *grantInfo, pre *presigned, subjectType, subjectID string, now time.Time) (lease *catalog.Lease, token string, domErr, err error) {
	eid := g.ent.EntitlementID
	subjects := tx.Bucket(bucketSubjects)
	skey := license.SubjectKey(eid, subjectType, subjectID)
	prev, err := l.leaseByID(tx, string(subjects.Get(skey)))
	if err != nil {
		return nil, "", nil, err
	}
	a := g.admission
	a.Held = prev
	if prev != nil && !prev.Active(now) {
		// Expired but not yet purged: it no longer holds a seat.
		if err := l.dropActive(tx, prev); err != nil {
			return nil, "", nil, err
		}
	}
	if a.Active, err = l.holding(tx, eid, now, a.Limit); err != nil {
		return nil, "", nil, err
	}
	d, domErr := license.Admit(a)
	if domErr != nil {
		return nil, "", domErr, nil
	}
	event := EventLeaseIssued
	if d.Renew {
		event = EventLeaseRenewed
		if err := l.dropActive(tx, prev); err != nil {
			return nil, "", nil, err
		}
		lease = prev
		lease.IssuedAt, lease.ExpiresAt = d.IssuedAt, d.ExpiresAt
		if lease.HolderHash == "" {
			lease.HolderHash = a.HolderHash // a lease from before holder secrets: bind it now
		}
		if pre.renew && pre.leaseID == lease.LeaseID {
			token = pre.token
		}
	} else {
		leaseID := catalog.NewID(catalog.PrefixLease)
		if !pre.renew {
			leaseID, token = pre.leaseID, pre.token
		}
		lease = &catalog.Lease{
			LeaseID: leaseID, EntitlementID: eid, TenantID: l.tenantID,
			SubjectType: subjectType, SubjectID: subjectID, IssuedAt: d.IssuedAt, ExpiresAt: d.ExpiresAt,
			HolderHash: a.HolderHash,
		}
	}
	if token == "" {
		// The state changed since presign (a concurrent call for the
		// same subject): sign here.
		if token, err = l.sign(g, lease.LeaseID, subjectType, subjectID, now); err != nil {
			return nil, "", nil, err
		}
	}
	lease.TokenHash = license.TokenHash(token)
	if err := l.putLease(tx, lease); err != nil {
		return nil, "", nil, err
	}
	if err := subjects.Put(skey, []byte(lease.LeaseID)); err != nil {
		return nil, "", nil, err
	}
	if err := tx.Bucket(bucketActive).Put(activeKey(lease), present); err != nil {
		return nil, "", nil, err
	}
	if err := l.addCount(tx, eid, 1); err != nil {
		return nil, "", nil, err
	}
	if err := l.audit(tx, event, lease, g.ent.ProductID, now); err != nil {
		return nil, "", nil, err
	}
	return lease, token, nil, nil
}

// presigned is a token signed before the transaction for the lease the
// subject will most likely get, so that signing runs in parallel instead
// of inside the serialized write transaction.
type presigned struct {
	renew   bool
	leaseID string
	token   string
}

func (l *Ledger) presign(g *grantInfo, subjectType, subjectID string, now time.Time) (*presigned, error) {
	p := &presigned{}
	err := l.db.View(func(tx *bolt.Tx) error {
		prev, err := l.leaseByID(tx, string(tx.Bucket(bucketSubjects).Get(license.SubjectKey(g.ent.EntitlementID, subjectType, subjectID))))
		if err != nil {
			return err
		}
		if prev != nil && prev.Active(now) {
			p.renew, p.leaseID = true, prev.LeaseID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !p.renew {
		p.leaseID = catalog.NewID(catalog.PrefixLease)
	}
	p.token, err = l.sign(g, p.leaseID, subjectType, subjectID, now)
	return p, err
}

// sign issues the token of a lease of g at now.
func (l *Ledger) sign(g *grantInfo, leaseID, subjectType, subjectID string, now time.Time) (string, error) {
	iat, exp := license.Term(g.policy, g.ent.EndsAt, time.Time{}, now)
	features := g.policy.Features
	if features == nil {
		features = []string{}
	}
	return license.Issue(license.Claims{
		LeaseID: leaseID, EntitlementID: g.ent.EntitlementID, TenantID: l.tenantID, ProductID: g.ent.ProductID,
		SubjectType: subjectType, SubjectID: subjectID, Features: features,
		IssuedAt: iat.Unix(), ExpiresAt: exp.Unix(), Grace: int64(time.Duration(g.policy.OfflineGrace) / time.Second),
		KeyID: l.kid, Issuer: license.MirrorIssuer(l.mirrorID),
	}, l.key)
}

// migrateSubjects re-keys a ledger written before subjects were keyed
// with their type (SubjectKey).
func migrateSubjects(tx *bolt.Tx) error {
	old := tx.Bucket(bucketSubjectsV1)
	if old == nil {
		return nil
	}
	subjects, leases := tx.Bucket(bucketSubjects), tx.Bucket(bucketLeases)
	err := old.ForEach(func(_, id []byte) error {
		var lease catalog.Lease
		if err := json.Unmarshal(leases.Get(id), &lease); err != nil {
			return fmt.Errorf("migrate lease %s: %w", id, err)
		}
		return subjects.Put(license.SubjectKey(lease.EntitlementID, lease.SubjectType, lease.SubjectID), id)
	})
	if err != nil {
		return err
	}
	return tx.DeleteBucket(bucketSubjectsV1)
}

// Release ends the subject's active lease of entitlementID, freeing its
// seat. No active lease is ENOTFOUND. An empty subjectType releases the
// subject's one active lease whatever its type (EINVALID if it holds
// leases as several types). It needs the lease's holder secret unless
// force (an operator's release): without it, EFORBIDDEN and nothing
// changes.
func (l *Ledger) Release(ctx context.Context, entitlementID, subjectType, subjectID, secret string, force bool, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := license.ValidateSubjectID("subject_id", subjectID); err != nil {
		return err
	}
	types := catalog.SubjectTypes
	if subjectType != "" {
		if err := catalog.ValidateEnum("subject_type", subjectType, catalog.SubjectTypes); err != nil {
			return err
		}
		types = []string{subjectType}
	}
	var domErr error
	err := l.commits.do(func(tx *bolt.Tx) error {
		domErr = nil
		var lease *catalog.Lease
		for _, st := range types {
			held, err := l.leaseByID(tx, string(tx.Bucket(bucketSubjects).Get(license.SubjectKey(entitlementID, st, subjectID))))
			if err != nil {
				return err
			}
			if held == nil || !held.Active(now) {
				continue
			}
			if lease != nil {
				domErr = catalog.Invalid("subject_type", "is required: %q holds leases of entitlement %s as %s and %s", subjectID, entitlementID, lease.SubjectType, held.SubjectType)
				return nil
			}
			lease = held
		}
		if lease == nil {
			domErr = catalog.Errorf(catalog.ENOTFOUND, "subject %q holds no active lease of entitlement %q", subjectID, entitlementID)
			return nil
		}
		if domErr = license.CheckHolder(lease, license.HolderHash(secret), force); domErr != nil {
			return nil
		}
		if err := l.dropActive(tx, lease); err != nil {
			return err
		}
		at := now.UTC()
		lease.ReleasedAt = &at
		if err := l.putLease(tx, lease); err != nil {
			return err
		}
		return l.audit(tx, EventLeaseReleased, lease, "", now)
	})
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return domErr
}

// Lease returns a lease by id.
func (l *Ledger) Lease(ctx context.Context, id string) (*catalog.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var lease *catalog.Lease
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		lease, err = l.leaseByID(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get lease %s: %w", id, err)
	}
	if lease == nil {
		return nil, catalog.NotFound("lease", id)
	}
	return lease, nil
}

// ActiveLeases counts the leases of entitlementID that hold a seat at now:
// its counter less the seat index entries already expired (read only; the
// next acquire at the limit or the sweep purges them), so it reads the
// expired entries, not every lease.
func (l *Ledger) ActiveLeases(ctx context.Context, entitlementID string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := l.db.View(func(tx *bolt.Tx) error {
		n = l.count(tx, entitlementID)
		c := tx.Bucket(bucketActive).Cursor()
		prefix := append([]byte(entitlementID), 0)
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
			if activeExpiry(k, len(prefix)) > now.Unix() {
				break // keys sort by expiry: the rest are live
			}
			n--
		}
		n = max(n, 0)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count leases of %s: %w", entitlementID, err)
	}
	return n, nil
}

// holding returns how many seats of eid are held at now. It trusts the
// counter while it is below the limit and purges expired leases from the
// index only when the limit is reached, so an acquire costs O(1) amortized.
func (l *Ledger) holding(tx *bolt.Tx, eid string, now time.Time, limit int) (int, error) {
	n := l.count(tx, eid)
	if n < limit {
		return n, nil
	}
	purged, err := l.purge(tx, eid, now, 0)
	return n - purged, err
}

// purge removes from eid's seat index the leases expired at now, at most
// limit (≤ 0: all), and returns how many. It reads only the expired
// entries (the index sorts by expiry).
func (l *Ledger) purge(tx *bolt.Tx, eid string, now time.Time, limit int) (int, error) {
	active := tx.Bucket(bucketActive)
	prefix := append([]byte(eid), 0)
	var stale [][]byte
	c := active.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Next() {
		if activeExpiry(k, len(prefix)) > now.Unix() || (limit > 0 && len(stale) == limit) {
			break // keys sort by expiry: the rest are live
		}
		stale = append(stale, append([]byte(nil), k...))
	}
	for _, k := range stale {
		if err := active.Delete(k); err != nil {
			return 0, err
		}
	}
	if len(stale) > 0 {
		if err := l.addCount(tx, eid, -len(stale)); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// sweepBatch bounds the expired leases one sweep transaction purges.
const sweepBatch = 1000

// Sweep purges the leases expired at now from every entitlement's seat
// index (their records stay, as history), at most sweepBatch per write
// transaction and at most limit in all (≤ 0: no bound), and returns how
// many. Acquire purges by itself when an entitlement reaches its limit;
// the mirror's periodic work runs Sweep so the index of entitlements
// nobody leases from stays small.
func (l *Ledger) Sweep(ctx context.Context, now time.Time, limit int) (int, error) {
	total := 0
	after := []byte{}
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if limit > 0 && total >= limit {
			return total, nil
		}
		budget := sweepBatch
		if limit > 0 {
			budget = min(budget, limit-total)
		}
		var n int
		done := false
		err := l.commits.do(func(tx *bolt.Tx) error {
			n, done = 0, false
			var ents []string
			c := tx.Bucket(bucketCounts).Cursor()
			k, _ := c.Seek(after)
			if len(after) > 0 && string(k) == string(after) {
				k, _ = c.Next()
			}
			for ; k != nil && len(ents) < budget; k, _ = c.Next() {
				ents = append(ents, string(k))
			}
			done = len(ents) < budget
			last := ""
			for _, eid := range ents {
				m, err := l.purge(tx, eid, now, budget-n)
				if err != nil {
					return err
				}
				n += m
				if n >= budget {
					done = false // eid may have more: resume there
					break
				}
				last = eid
			}
			if last != "" {
				after = []byte(last)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep leases: %w", err)
		}
		total += n
		if done {
			return total, nil
		}
	}
}

// rebuildCounts sets license_counts from license_active.
func rebuildCounts(tx *bolt.Tx) error {
	counts := map[string]uint64{}
	err := tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
		for i, b := range k {
			if b == 0 {
				counts[string(k[:i])]++
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count seat index: %w", err)
	}
	for eid, n := range counts {
		if err := tx.Bucket(bucketCounts).Put([]byte(eid), binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return err
		}
	}
	return nil
}

// dropActive removes a lease from the seat index if it is still there.
func (l *Ledger) dropActive(tx *bolt.Tx, lease *catalog.Lease) error {
	active := tx.Bucket(bucketActive)
	k := activeKey(lease)
	if active.Get(k) == nil {
		return nil
	}
	if err := active.Delete(k); err != nil {
		return err
	}
	return l.addCount(tx, lease.EntitlementID, -1)
}

func (l *Ledger) count(tx *bolt.Tx, eid string) int {
	v := tx.Bucket(bucketCounts).Get([]byte(eid))
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func (l *Ledger) addCount(tx *bolt.Tx, eid string, delta int) error {
	n := l.count(tx, eid) + delta
	if n < 0 {
		n = 0
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return tx.Bucket(bucketCounts).Put([]byte(eid), b[:])
}

func (l *Ledger) leaseByID(tx *bolt.Tx, id string) (*catalog.Lease, error) {
	if id == "" {
		return nil, nil
	}
	v := tx.Bucket(bucketLeases).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var lease catalog.Lease
	if err := json.Unmarshal(v, &lease); err != nil {
		return nil, fmt.Errorf("decode lease %s: %w", id, err)
	}
	return &lease, nil
}

func (l *Ledger) putLease(tx *bolt.Tx, lease *catalog.Lease) error {
	b, err := json.Marshal(lease)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketLeases).Put([]byte(lease.LeaseID), b)
}

// leaseEvent is the payload of the ledger's audit events.
type leaseEvent struct {
	LeaseID       string     `json:"lease_id"`
	EntitlementID string     `json:"entitlement_id"`
	ProductID     string     `json:"product_id,omitempty"`
	SubjectType   string     `json:"subject_type"`
	SubjectID     string     `json:"subject_id"`
	IssuedAt      time.Time  `json:"issued_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	TokenHash     string     `json:"token_hash"`
}

func (l *Ledger) audit(tx *bolt.Tx, eventType string, lease *catalog.Lease, productID string, now time.Time) error {
	payload, err := json.Marshal(leaseEvent{
		LeaseID: lease.LeaseID, EntitlementID: lease.EntitlementID, ProductID: productID,
		SubjectType: lease.SubjectType, SubjectID: lease.SubjectID,
		IssuedAt: lease.IssuedAt, ExpiresAt: lease.ExpiresAt, ReleasedAt: lease.ReleasedAt,
		TokenHash: lease.TokenHash,
	})
	if err != nil {
		return err
	}
	return appendAudit(tx, &catalog.AuditEvent{
		EventID: catalog.NewID(catalog.PrefixEvent), TenantID: l.tenantID,
		ActorType: catalog.ActorMirror, ActorID: l.mirrorID, EventType: eventType,
		Payload: payload, CreatedAt: now.UTC(),
	})
}

func activeKey(lease *catalog.Lease) []byte {
	k := make([]byte, 0, len(lease.EntitlementID)+1+8+len(lease.LeaseID))
	k = append(k, lease.EntitlementID...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(lease.ExpiresAt.Unix()))
	return append(k, lease.LeaseID...)
}

// activeExpiry reads the expiry (unix seconds) of an active-index key
// whose entitlement prefix is n bytes long.
func activeExpiry(k []byte, n int) int64 {
	if len(k) < n+8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k[n : n+8]))
}

// present is the value of index entries: bbolt's Get cannot tell an
// empty value from a missing key.
var present = []byte{1}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}
