// Package controlplane is the control plane's application layer: every
// operation the control plane offers, with its validation, defaults, id
// minting and tenant scoping, over the store, the blob store and the
// signing keys. Operations take a context (carrying the Principal they act
// as), typed inputs, and return domain types or domain errors
// (*catalog.Error).
//
// Service is the set of operations. *App implements it in-process; the
// control plane's HTTP API (internal/httpapi) exposes an App over HTTP and
// httpapi.Client implements Service again over that API, so a caller
// (the controlplane CLI) holds one Service that is either local or remote.
// Which roles may call which operation is the transport's rule (httpapi's
// route table); the service scopes what a tenant principal sees.
package controlplane

import (
	"context"
	"io"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// Service is every operation of the control plane. List operations take a
// store.Page and return a page of items and the cursor of the next page
// ("" at the end).
type Service interface {
	Tokens
	Tenants
	Catalog
	Rollouts
	Licensing
	Mirrors
	Snapshots
	Fleet
	Webhooks
}

// Tokens are API tokens and the vendor's public keys.
type Tokens interface {
	// CreateToken mints an admin or tenant token; its secret is returned once.
	CreateToken(ctx context.Context, in TokenInput) (*TokenCreated, error)
	// ListTokens lists tokens (a tenant principal: its tenant's).
	ListTokens(ctx context.Context, pg store.Page) ([]*catalog.Token, string, error)
	// RevokeToken revokes a token at once, on every instance.
	RevokeToken(ctx context.Context, id string) (*catalog.Token, error)
	PublicKeys(ctx context.Context) ([]PublicKey, error)
	// Backup writes a consistent copy of the catalog (bbolt stores).
	Backup(ctx context.Context, w io.Writer) (int64, error)
	AuditEvents(ctx context.Context, f store.AuditFilter, pg store.Page) ([]*catalog.AuditEvent, string, error)
}

// Tenants are the vendor's customers.
type Tenants interface {
	CreateTenant(ctx context.Context, in TenantInput) (*catalog.Tenant, error)
	Tenants(ctx context.Context, pg store.Page) ([]*catalog.Tenant, string, error)
	Tenant(ctx context.Context, id string) (*catalog.Tenant, error)
	UpdateTenant(ctx context.Context, id string, in TenantPatch) (*catalog.Tenant, error)
}

// Catalog is products, releases and artifacts.
type Catalog interface {
	CreateProduct(ctx context.Context, in ProductInput) (*catalog.Product, error)
	Products(ctx context.Context, pg store.Page) ([]*catalog.Product, string, error)
	Product(ctx context.Context, id string) (*catalog.Product, error)

	CreateRelease(ctx context.Context, productID string, in ReleaseInput) (*catalog.Release, error)
	Releases(ctx context.Context, productID string, pg store.Page) ([]*catalog.Release, string, error)
	Release(ctx context.Context, id string) (*ReleaseView, error)
	RevokeRelease(ctx context.Context, id string) (*catalog.Release, error)
	AttachArtifact(ctx context.Context, releaseID string, in AttachInput) (*catalog.ReleaseArtifact, error)
	ReleaseArtifacts(ctx context.Context, releaseID string) ([]*catalog.ReleaseArtifact, error)

	// UploadArtifact streams body into a MANAGED artifact.
	UploadArtifact(ctx context.Context, body io.Reader, in UploadInput) (*catalog.Artifact, error)
	CreateExternalArtifact(ctx context.Context, in ExternalInput) (*catalog.Artifact, error)
	Artifact(ctx context.Context, id string) (*catalog.Artifact, error)
	VerifyArtifact(ctx context.Context, id string) (*Verification, error)
	// OpenArtifact hands out an artifact the principal may download; the
	// caller closes Delivery.Body.
	OpenArtifact(ctx context.Context, id string) (*Delivery, error)
	// ReleaseDeltas lists the delta builds of a release's artifacts
	// (docs/deltas.md): state, sizes, whether offered.
	ReleaseDeltas(ctx context.Context, releaseID string) ([]*DeltaJob, error)
	// OpenDelta hands out an offered delta the principal may download;
	// the caller closes DeltaDelivery.Body.
	OpenDelta(ctx context.Context, id string) (*DeltaDelivery, error)
}

// Rollouts is what decides which release a client gets: policies,
// blocked versions and staged rollouts.
type Rollouts interface {
	CreatePolicy(ctx context.Context, tenantID string, in PolicyInput) (*catalog.Policy, error)
	Policies(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Policy, string, error)
	Policy(ctx context.Context, id string) (*catalog.Policy, error)
	UpdatePolicy(ctx context.Context, id string, in PolicyUpdate) (*catalog.Policy, error)
	PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error)

	CreateBlockedVersion(ctx context.Context, tenantID string, in BlockedInput) (*catalog.BlockedVersion, error)
	BlockedVersions(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.BlockedVersion, string, error)
	DeleteBlockedVersion(ctx context.Context, tenantID, id string) error

	CreateRollout(ctx context.Context, productID string, in RolloutInput) (*catalog.Rollout, error)
	Rollouts(ctx context.Context, productID string, pg store.Page) ([]*catalog.Rollout, string, error)
	Rollout(ctx context.Context, id string) (*catalog.Rollout, error)
	UpdateRollout(ctx context.Context, id string, in RolloutPatch) (*catalog.Rollout, error)
}

// Licensing is entitlements, seats and online leases.
type Licensing interface {
	CreateEntitlement(ctx context.Context, tenantID string, in EntitlementInput) (*catalog.Entitlement, error)
	Entitlements(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Entitlement, string, error)
	Entitlement(ctx context.Context, id string) (*catalog.Entitlement, error)
	UpdateEntitlement(ctx context.Context, id string, in EntitlementPatch) (*catalog.Entitlement, error)

	AssignSeat(ctx context.Context, entitlementID string, in Subject) (*catalog.SeatAssignment, error)
	Seats(ctx context.Context, entitlementID string, pg store.Page) ([]*catalog.SeatAssignment, string, error)
	RevokeSeat(ctx context.Context, entitlementID, seatID string) (*catalog.SeatAssignment, error)

	// AcquireLease issues a lease (its holder secret returned once) or
	// renews the subject's active one (in.HolderSecret required).
	AcquireLease(ctx context.Context, entitlementID string, in Subject) (*LeaseIssued, error)
	// ReleaseLease needs the holder's secret; an admin may pass "" to
	// force the release.
	ReleaseLease(ctx context.Context, id, holderSecret string) (*catalog.Lease, error)
}

// Mirrors is mirror registration and management, and the operations a
// mirror calls with its own credential (Self, LatestSnapshot, ReportSync,
// IngestAudit; OpenArtifact serves its downloads).
type Mirrors interface {
	// CreateMirror registers a mirror; its credential is returned once.
	CreateMirror(ctx context.Context, tenantID string, in MirrorInput) (*MirrorCreated, error)
	Mirrors(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Mirror, string, error)
	Mirror(ctx context.Context, id string) (*catalog.Mirror, error)
	UpdateMirror(ctx context.Context, id string, in MirrorPatch) (*catalog.Mirror, error)
	DeactivateMirror(ctx context.Context, id string) (*catalog.Mirror, error)

	Self(ctx context.Context) (*MirrorSelf, error)
	// LatestSnapshot is nil when the newest sequence is not above after.
	LatestSnapshot(ctx context.Context, after int64) (*catalog.Snapshot, error)
	ReportSync(ctx context.Context, in SyncReport) (*catalog.Mirror, error)
	IngestAudit(ctx context.Context, export io.Reader) (*AuditIngest, error)
	// ImportMirrorAudit ingests an export carried from an air-gapped
	// mirror (admin): the mirror its trailer names, verified with that
	// mirror's registered key.
	ImportMirrorAudit(ctx context.Context, export io.Reader) (*AuditIngest, error)
	// AuditHead is the head of the calling mirror's audit chain already
	// accepted: the next upload carries the events after it.
	AuditHead(ctx context.Context) (*catalog.AuditHead, error)
}

// Snapshots is signed tenant snapshots and offline bundles.
type Snapshots interface {
	BuildSnapshot(ctx context.Context, tenantID string) (*catalog.Snapshot, error)
	Snapshots(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Snapshot, string, error)
	Snapshot(ctx context.Context, id string) (*catalog.Snapshot, error)
	// ExportBundle writes a bundle (a tar stream) to w; errors found
	// before the first byte leave w untouched.
	ExportBundle(ctx context.Context, o BundleOptions, w io.Writer) (*BundleResult, error)
	// TUFRoot returns a tenant's newest root.json exactly as signed: what
	// its mirrors and clients are initialised with.
	TUFRoot(ctx context.Context, tenantID string) ([]byte, error)
}
