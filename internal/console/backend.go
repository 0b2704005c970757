// Package console is the vendor's web console, served by the control plane
// at /console/: server-rendered html/template pages over a narrow Backend
// (the control plane's application layer), a sign-in that exchanges an API
// token for a server-side session, CSRF protection on every form, roles
// that limit what is shown and allowed, charts as inline SVG and embedded
// assets (no CDN, no build step; every page reads without JavaScript).
package console

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/svgchart"
)

// Console roles. The read-only roles see what their writable counterpart
// sees and get no forms.
const (
	RoleAdmin    = catalog.RoleAdmin // "admin"
	RoleAdminRO  = "admin_ro"
	RoleTenant   = catalog.RoleTenant // "tenant"
	RoleTenantRO = "tenant_ro"
)

// Principal is who a session acts as: the token's role, its tenant (for
// the tenant roles) and the token's id.
type Principal struct {
	Role     string
	TenantID string
	TokenID  string
}

// Admin reports whether p is one of the admin roles.
func (p Principal) Admin() bool { return p.Role == RoleAdmin || p.Role == RoleAdminRO }

// ReadOnly reports whether p may only look.
func (p Principal) ReadOnly() bool { return p.Role == RoleAdminRO || p.Role == RoleTenantRO }

// Valid reports whether p has a known role and a tenant exactly when the
// role needs one.
func (p Principal) Valid() bool {
	switch p.Role {
	case RoleAdmin, RoleAdminRO:
		return p.TenantID == ""
	case RoleTenant, RoleTenantRO:
		return p.TenantID != ""
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p. The console calls every Backend
// method (except Authenticate) with the session's principal in the
// context, so the application layer applies the same checks as the API.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// ErrNotImplemented is returned (possibly wrapped) by optional Backend
// methods the application layer does not provide; the console shows the
// feature as not configured.
var ErrNotImplemented = errors.New("not implemented")

// PublishRequest describes a release to publish with one MANAGED artifact.
type PublishRequest struct {
	ProductID     string
	Channel       string
	Version       string
	Platform      string
	Arch          string
	InstallerType string
	FileName      string
	// SizeBytes is the declared size, or -1 when unknown; the backend
	// must check it against what it reads.
	SizeBytes int64
}

// RevokeImpact is what revoking a release affects, shown on the
// confirmation page before anything changes.
type RevokeImpact struct {
	Release  *catalog.Release
	Product  *catalog.Product
	Tenants  []*catalog.Tenant  // tenants whose snapshots list the release
	Mirrors  []*catalog.Mirror  // mirrors of those tenants that serve its channel
	Rollouts []*catalog.Rollout // rollouts of the release not yet completed or killed
}

// RolloutStep is one planned step of a rollout's schedule.
type RolloutStep struct {
	At         time.Time
	Percentage float64
}

// HealthGate halts a rollout when the failure rate of the fleet reports
// exceeds MaxFailureRate (percent) over at least MinReports reports.
type HealthGate struct {
	MaxFailureRate float64
	MinReports     int
	// State is "passing", "failing" or "" (not enough reports yet).
	State string
}

// RolloutInfo is a rollout with its optional schedule and health gate.
type RolloutInfo struct {
	Rollout  *catalog.Rollout
	Release  *catalog.Release // may be nil
	Schedule []RolloutStep    // empty: no schedule
	Gate     *HealthGate      // nil: no gate
}

// RolloutRequest creates a rollout.
type RolloutRequest struct {
	ProductID  string
	ReleaseID  string
	Percentage float64
	Schedule   []RolloutStep // optional
	Gate       *HealthGate   // optional
}

// RolloutUpdate changes a rollout; nil fields are left alone.
type RolloutUpdate struct {
	Percentage *float64
	Status     string // "" keeps the status
	// Schedule replaces the rollout's schedule when not empty;
	// RemoveSchedule removes it.
	Schedule       []RolloutStep
	RemoveSchedule bool
	// Gate replaces the health gate when not nil; RemoveGate removes it.
	Gate       *HealthGate
	RemoveGate bool
}

// RolloutSeries is what the fleet reports say about a rollout over time,
// in percent.
type RolloutSeries struct {
	Adoption    []svgchart.Point // share of devices on the release
	FailureRate []svgchart.Point // share of installs that failed
}

// ForkAlert is a mirror reporting metadata that forks from the control
// plane's history (same version, different content).
type ForkAlert struct {
	At     time.Time
	Detail string
}

// MirrorInfo is a registered mirror with what it last reported.
type MirrorInfo struct {
	Mirror *catalog.Mirror
	// MetadataVersion is the version (sequence) of the metadata the
	// mirror holds, 0 when unknown; Latest the newest built for its tenant.
	MetadataVersion int64
	LatestVersion   int64
	// ExpiresAt is when the metadata the mirror holds expires (zero:
	// unknown).
	ExpiresAt  time.Time
	ForkAlerts []ForkAlert
}

// EntitlementInfo is an entitlement with its seat and lease usage.
type EntitlementInfo struct {
	Entitlement   *catalog.Entitlement
	Product       *catalog.Product // may be nil
	MaxSeats      int
	SeatsAssigned int // explicit mode assignments
	LeasesActive  int
}

// UsageSeries is an entitlement's usage over time.
type UsageSeries struct {
	Seats  []svgchart.Point
	Leases []svgchart.Point
}

// TokenInfo is a token as listed (never its secret).
type TokenInfo struct {
	Token     *catalog.Token
	RevokedAt *time.Time
}

// AuditQuery selects audit events; TenantID "" is every tenant (admin).
type AuditQuery struct {
	TenantID  string
	EventType string
	Limit     int
}

// ChainStatus is the outcome of verifying the audit hash chain.
type ChainStatus struct {
	OK         bool
	Events     int64
	Error      string // the first broken link, when !OK
	VerifiedAt time.Time
}

// WebhookDelivery is one event's delivery to a webhook, with its latest
// attempt's result.
type WebhookDelivery struct {
	DeliveryID     string
	SubscriptionID string
	TenantID       string
	URL            string
	EventType      string
	EventID        string
	// State is "pending", "delivered" or "failed" ("" when unknown).
	State      string
	At         time.Time
	StatusCode int
	Attempts   int
	OK         bool
	Error      string
}

// WebhookSubscription is a webhook endpoint as listed (never its secret).
type WebhookSubscription struct {
	ID             string
	URL            string
	EventTypes     []string
	TenantID       string // "" every tenant
	Disabled       bool
	DisabledReason string
	FailureStreak  int
	CreatedAt      time.Time
}

// Backend is what the console needs from the control plane's application
// layer. Every method but Authenticate gets the session's principal in its
// context (PrincipalFrom) and must apply the same authorization as the
// API; the console checks roles and tenants first as well. Errors are
// domain errors (*catalog.Error); anything else is shown as an internal
// error without detail. List methods take a tenant id where the API is
// tenant-scoped; "" means every tenant and is only used for admins.
type Backend interface {
	// Authenticate resolves an API token to a principal.
	Authenticate(ctx context.Context, token string) (Principal, error)
	// TokenPrincipal re-reads the principal of a token by id on every
	// request, so a revoked token (or a deleted tenant) ends its sessions.
	TokenPrincipal(ctx context.Context, tokenID string) (Principal, error)

	Tenants(ctx context.Context) ([]*catalog.Tenant, error)
	Tenant(ctx context.Context, id string) (*catalog.Tenant, error)
	CreateTenant(ctx context.Context, name string) (*catalog.Tenant, error)

	Products(ctx context.Context) ([]*catalog.Product, error)
	Product(ctx context.Context, id string) (*catalog.Product, error)
	CreateProduct(ctx context.Context, name, distribution string) (*catalog.Product, error)

	Releases(ctx context.Context, productID string) ([]*catalog.Release, error)
	Release(ctx context.Context, id string) (*catalog.Release, error)
	// PublishRelease creates the release, stores the artifact streamed
	// from r (never buffered whole) and attaches it.
	PublishRelease(ctx context.Context, req PublishRequest, r io.Reader) (*catalog.Release, error)
	RevokePreview(ctx context.Context, releaseID string) (*RevokeImpact, error)
	RevokeRelease(ctx context.Context, releaseID string) (*catalog.Release, error)

	Rollouts(ctx context.Context, productID string) ([]*RolloutInfo, error)
	Rollout(ctx context.Context, id string) (*RolloutInfo, error)
	CreateRollout(ctx context.Context, req RolloutRequest) (*catalog.Rollout, error)
	UpdateRollout(ctx context.Context, id string, u RolloutUpdate) (*catalog.Rollout, error)
	RolloutSeries(ctx context.Context, id string) (*RolloutSeries, error)

	BlockedVersions(ctx context.Context, tenantID string) ([]*catalog.BlockedVersion, error)
	BlockVersion(ctx context.Context, b *catalog.BlockedVersion) (*catalog.BlockedVersion, error)
	UnblockVersion(ctx context.Context, tenantID, blocklistID string) error

	Policies(ctx context.Context, tenantID string) ([]*catalog.Policy, error)
	PolicyVersions(ctx context.Context, policyID string) ([]*catalog.Policy, error)

	Mirrors(ctx context.Context, tenantID string) ([]*MirrorInfo, error)

	Entitlements(ctx context.Context, tenantID string) ([]*EntitlementInfo, error)
	EntitlementSeries(ctx context.Context, entitlementID string) (*UsageSeries, error)

	Tokens(ctx context.Context, tenantID string) ([]*TokenInfo, error)
	// CreateToken returns the secret, shown once.
	CreateToken(ctx context.Context, role, tenantID, name string) (string, *catalog.Token, error)
	RevokeToken(ctx context.Context, tokenID string) error

	AuditEvents(ctx context.Context, q AuditQuery) ([]*catalog.AuditEvent, error)
	VerifyAuditChain(ctx context.Context) (*ChainStatus, error)

	// WebhookDeliveries may return ErrNotImplemented.
	WebhookDeliveries(ctx context.Context, tenantID string) ([]*WebhookDelivery, error)
	// WebhookSubscriptions lists the endpoints (admin); may return
	// ErrNotImplemented.
	WebhookSubscriptions(ctx context.Context, tenantID string) ([]*WebhookSubscription, error)
	// RedeliverWebhook requeues a delivery due now (admin, writable).
	RedeliverWebhook(ctx context.Context, deliveryID string) error
}
