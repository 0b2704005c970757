// Package store defines the control plane's persistence interface. The
// data model's constraints (append-only releases and audit events, versioned
// policies, non-overlapping entitlements, max_seats, immutable snapshots)
// are enforced by every implementation inside its transactions, and every
// change appends a hash-chained audit event in the same transaction, with
// the actor taken from the context (catalog.WithActor).
//
// Implementations: store/bolt (embedded default) and store/postgres (for
// several control plane instances), both thin backends under the shared
// logic of store/kv. storetest holds the suite every implementation must
// pass.
package store

import (
	"context"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Page asks for at most Limit items after Cursor (an opaque value returned
// by the previous page; "" for the first).
type Page struct {
	Limit  int
	Cursor string
}

// DefaultLimit and MaxLimit bound Page.Limit.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// All gathers every page of a paged list operation.
func All[T any](ctx context.Context, list func(context.Context, Page) ([]T, string, error)) ([]T, error) {
	var out []T
	pg := Page{Limit: MaxLimit}
	for {
		items, next, err := list(ctx, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		pg.Cursor = next
	}
}

// Normalize clamps the limit.
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultLimit
	}
	if p.Limit > MaxLimit {
		p.Limit = MaxLimit
	}
	return p
}

// AuditFilter selects audit events.
type AuditFilter struct {
	TenantID  string
	EventType string
}

// IdempotencyRecord is the first answer to a POST with an Idempotency-Key,
// or, while Status is 0, the reservation of a key whose request is still
// running (Pending).
type IdempotencyRecord struct {
	RequestHash string // sha256 of method, path and body
	Status      int    // 0 while the key is only reserved
	Body        []byte
	CreatedAt   time.Time // of the reservation, then of the answer
	// Attempt names the reservation's holder (a random id per attempt).
	Attempt string `json:",omitempty"`
	// Committed is set, in the same transaction, by the first write the
	// holder's request committed (WithIdempotencyAttempt): such a
	// reservation is never taken over, since running the request again
	// would do it twice.
	Committed bool `json:",omitempty"`
}

type attemptKey struct{}

type idempotencyAttempt struct{ key, attempt string }

// WithIdempotencyAttempt marks ctx as running the request that holds the
// reservation of key as attempt: every write transaction under it first
// checks, in that transaction, that the reservation is still attempt's
// (else it fails with ECONFLICT and writes nothing) and marks it
// Committed.
func WithIdempotencyAttempt(ctx context.Context, key, attempt string) context.Context {
	return context.WithValue(ctx, attemptKey{}, idempotencyAttempt{key, attempt})
}

// IdempotencyAttempt returns what WithIdempotencyAttempt put in ctx.
func IdempotencyAttempt(ctx context.Context) (key, attempt string, ok bool) {
	a, ok := ctx.Value(attemptKey{}).(idempotencyAttempt)
	return a.key, a.attempt, ok
}

// Pending reports whether r is a reservation without an answer yet.
func (r *IdempotencyRecord) Pending() bool { return r.Status == 0 }

// LeaseSigner signs the final lease and returns the token's hash.
type LeaseSigner func(final *catalog.Lease) (tokenHash string, err error)

// Store is the control plane's catalog. The fn and build callbacks of
// Update* and CreateSnapshot run inside the store's transaction: they must
// not call the store.
type Store interface {
	Close() error

	// Tokens.
	CreateToken(ctx context.Context, t *catalog.Token) error
	TokenByHash(ctx context.Context, hash string) (*catalog.Token, error)
	Token(ctx context.Context, id string) (*catalog.Token, error)
	// Tokens lists tokens by id, every token when tenantID is "", else
	// that tenant's.
	Tokens(ctx context.Context, tenantID string, p Page) ([]*catalog.Token, string, error)
	// RevokeToken marks a token revoked (by the actor's id) and removes
	// its hash from the index, in one transaction with its audit event; a
	// token already revoked is returned unchanged.
	RevokeToken(ctx context.Context, id, by string) (*catalog.Token, error)
	// TouchToken sets last_used_at to at unless the stored value is
	// newer than at-catalog.TokenTouchEvery. Bookkeeping, not a change:
	// no audit event.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// Tenants.
	CreateTenant(ctx context.Context, t *catalog.Tenant) error
	Tenant(ctx context.Context, id string) (*catalog.Tenant, error)
	Tenants(ctx context.Context, p Page) ([]*catalog.Tenant, string, error)
	UpdateTenant(ctx context.Context, id string, fn func(*catalog.Tenant) error) (*catalog.Tenant, error)

	// Products.
	CreateProduct(ctx context.Context, p *catalog.Product) error
	Product(ctx context.Context, id string) (*catalog.Product, error)
	Products(ctx context.Context, p Page) ([]*catalog.Product, string, error)

	// Artifacts.
	CreateArtifact(ctx context.Context, a *catalog.Artifact) error
	Artifact(ctx context.Context, id string) (*catalog.Artifact, error)
	// SetArtifactStatus records the outcome of a verification.
	SetArtifactStatus(ctx context.Context, id, status string, verifiedAt *time.Time) (*catalog.Artifact, error)

	// Releases: append-only. The same product+channel+version twice is
	// ECONFLICT; revoke is one-way (revoking a revoked release is ECONFLICT).
	CreateRelease(ctx context.Context, r *catalog.Release) error
	Release(ctx context.Context, id string) (*catalog.Release, error)
	Releases(ctx context.Context, productID string, p Page) ([]*catalog.Release, string, error)
	RevokeRelease(ctx context.Context, id string, at time.Time) (*catalog.Release, error)
	// AttachArtifact adds a release artifact: the release must be ACTIVE,
	// the artifact VERIFIED, and the release must not already have one for
	// the same platform+arch+installer_type (ECONFLICT).
	AttachArtifact(ctx context.Context, ra *catalog.ReleaseArtifact) error
	ReleaseArtifacts(ctx context.Context, releaseID string) ([]*catalog.ReleaseArtifact, error)

	// Policies: versioned. UpdatePolicy stores a new version (version+1,
	// updated_at) and keeps the old one.
	CreatePolicy(ctx context.Context, p *catalog.Policy) error
	Policy(ctx context.Context, id string) (*catalog.Policy, error)
	Policies(ctx context.Context, tenantID string, p Page) ([]*catalog.Policy, string, error)
	UpdatePolicy(ctx context.Context, id string, fn func(*catalog.Policy) error) (*catalog.Policy, error)
	PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error)

	// Blocked versions. The same tenant+product+version twice is ECONFLICT.
	CreateBlockedVersion(ctx context.Context, b *catalog.BlockedVersion) error
	BlockedVersions(ctx context.Context, tenantID string, p Page) ([]*catalog.BlockedVersion, string, error)
	DeleteBlockedVersion(ctx context.Context, tenantID, id string) error

	// Rollouts. UpdateRollout checks the status transition
	// (catalog.ValidateRolloutTransition) inside the transaction.
	CreateRollout(ctx context.Context, r *catalog.Rollout) error
	Rollout(ctx context.Context, id string) (*catalog.Rollout, error)
	Rollouts(ctx context.Context, productID string, p Page) ([]*catalog.Rollout, string, error)
	UpdateRollout(ctx context.Context, id string, fn func(*catalog.Rollout) error) (*catalog.Rollout, error)
	// UpdateRolloutAudited is UpdateRollout that also appends the audit
	// event reason builds from the updated rollout (and its dedup key, as
	// AppendAudit), in the same transaction: a decision and its reason
	// commit together or not at all. A nil event appends nothing more.
	UpdateRolloutAudited(ctx context.Context, id string, fn func(*catalog.Rollout) error, reason func(*catalog.Rollout) (*catalog.AuditEvent, string, error)) (*catalog.Rollout, error)

	// Entitlements: two of the same tenant+product with overlapping
	// [starts_at, ends_at) are ECONFLICT, checked in the transaction.
	CreateEntitlement(ctx context.Context, e *catalog.Entitlement) error
	Entitlement(ctx context.Context, id string) (*catalog.Entitlement, error)
	Entitlements(ctx context.Context, tenantID string, p Page) ([]*catalog.Entitlement, string, error)
	UpdateEntitlement(ctx context.Context, id string, fn func(*catalog.Entitlement) error) (*catalog.Entitlement, error)

	// Seats (explicit mode): active assignments never exceed the
	// entitlement's online seat limit (catalog.EntitlementPolicy.OnlineSeats);
	// a subject holds at most one active assignment.
	AssignSeat(ctx context.Context, s *catalog.SeatAssignment) error
	RevokeSeat(ctx context.Context, entitlementID, seatID, by string, at time.Time) (*catalog.SeatAssignment, error)
	Seats(ctx context.Context, entitlementID string, p Page) ([]*catalog.SeatAssignment, string, error)

	// Leases. AcquireLease, in one transaction: checks the tenant is
	// active and the entitlement current at l.IssuedAt; in explicit mode
	// that the subject holds an active seat; renews the subject's active
	// lease if it has one (same lease_id, new issued_at, expires_at and
	// token_hash) when l.HolderHash matches its holder
	// (license.CheckHolder: EFORBIDDEN otherwise); otherwise takes a seat if fewer than the online seat
	// limit are held by active leases. The returned lease is what is stored.
	// With sign given, the store calls it inside the transaction with the
	// lease as it will be stored (its final lease_id, times) and stores the
	// token hash it returns, so a token can carry the lease id.
	AcquireLease(ctx context.Context, l *catalog.Lease, sign ...LeaseSigner) (*catalog.Lease, error)
	Lease(ctx context.Context, id string) (*catalog.Lease, error)
	// ReleaseLease needs the hash of the lease's holder secret unless
	// force (license.CheckHolder); refused, nothing changes.
	ReleaseLease(ctx context.Context, id, holderHash string, force bool, at time.Time) (*catalog.Lease, error)
	// ActiveLeaseCount is the number of the entitlement's leases active
	// at t (unreleased, t before expires_at), read from its counter.
	ActiveLeaseCount(ctx context.Context, entitlementID string, t time.Time) (int, error)
	// SweepExpiredLeases takes the leases expired at now out of every
	// entitlement's active set (their records stay as history), in write
	// transactions of bounded size, at most limit in all (≤ 0: no bound),
	// and returns how many. Admission already frees an expired lease's
	// seat by itself; the sweep keeps the expiry index small.
	SweepExpiredLeases(ctx context.Context, now time.Time, limit int) (int, error)

	// Snapshots: immutable. CreateSnapshot gathers the input, assigns the
	// next sequence and calls build in one transaction, so two concurrent
	// builds never share a sequence.
	CreateSnapshot(ctx context.Context, tenantID string, build func(in *catalog.SnapshotInput) (*catalog.Snapshot, error)) (*catalog.Snapshot, error)
	Snapshot(ctx context.Context, id string) (*catalog.Snapshot, error)
	SnapshotBySequence(ctx context.Context, tenantID string, seq int64) (*catalog.Snapshot, error)
	LatestSnapshot(ctx context.Context, tenantID string) (*catalog.Snapshot, error)
	// LatestSnapshotHead is LatestSnapshot without the envelope: cheap
	// enough to call on every request that only needs to know whether
	// the tenant's snapshot changed.
	LatestSnapshotHead(ctx context.Context, tenantID string) (*catalog.Snapshot, error)
	// Snapshots lists without envelopes (Envelope nil); the getters above
	// return them.
	Snapshots(ctx context.Context, tenantID string, p Page) ([]*catalog.Snapshot, string, error)

	// Mirrors.
	CreateMirror(ctx context.Context, m *catalog.Mirror) error
	Mirror(ctx context.Context, id string) (*catalog.Mirror, error)
	MirrorByCredentialHash(ctx context.Context, hash string) (*catalog.Mirror, error)
	Mirrors(ctx context.Context, tenantID string, p Page) ([]*catalog.Mirror, string, error)
	UpdateMirror(ctx context.Context, id string, fn func(*catalog.Mirror) error) (*catalog.Mirror, error)

	// Audit. Mutations append their own events; AppendAudit is for events
	// that are not a store mutation (e.g. a mirror's uploaded chain). A
	// non-empty dedupKey makes it idempotent: appended is false when an
	// event with that key exists.
	AppendAudit(ctx context.Context, ev *catalog.AuditEvent, dedupKey string) (appended bool, err error)
	// AppendMirrorAudit appends events (ingested from a mirror's chain)
	// and moves the mirror's accepted audit head from from to to, in one
	// transaction: ECONFLICT, nothing written, when the stored head is no
	// longer from (another upload won).
	AppendMirrorAudit(ctx context.Context, mirrorID string, from, to catalog.AuditHead, events []*catalog.AuditEvent) error
	AuditEvents(ctx context.Context, f AuditFilter, p Page) ([]*catalog.AuditEvent, string, error)
	// WalkAudit calls fn for every event in chain order; fn must not call
	// the store (it runs inside a read transaction).
	WalkAudit(ctx context.Context, fn func(*catalog.AuditEvent) error) error

	// Idempotency keys. PutIdempotency fails with ECONFLICT if key exists.
	Idempotency(ctx context.Context, key string) (*IdempotencyRecord, error)
	PutIdempotency(ctx context.Context, key string, r *IdempotencyRecord) error
	// ReserveIdempotency reserves key for attempt, a request with
	// requestHash, before it runs, in one transaction, across every
	// instance: it returns (nil, nil) when the key was free, or held by a
	// reservation created before staleBefore that committed nothing (left
	// by a crash), and is now reserved;
	// otherwise it returns the record that holds the key (an answer, or
	// another attempt's reservation: Pending) and reserves nothing.
	ReserveIdempotency(ctx context.Context, key, requestHash, attempt string, staleBefore time.Time) (*IdempotencyRecord, error)
	// CompleteIdempotency stores the answer r under key in place of the
	// reservation of r.Attempt; ECONFLICT, nothing written, when the key
	// holds no such reservation.
	CompleteIdempotency(ctx context.Context, key string, r *IdempotencyRecord) error
	// ReleaseIdempotency removes the reservation of key by attempt (the
	// request failed and may be retried) unless it committed a write; an
	// answer or another attempt's reservation is kept, and a missing key
	// is not an error.
	ReleaseIdempotency(ctx context.Context, key, attempt string) error
	// ExpireIdempotency deletes records created before before and returns
	// how many; a key is then free for a new request.
	ExpireIdempotency(ctx context.Context, before time.Time) (int, error)
}
