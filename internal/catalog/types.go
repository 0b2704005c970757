package catalog

import (
	"encoding/json"
	"time"
)

// Tenant statuses.
const (
	TenantActive    = "active"
	TenantSuspended = "suspended"
	TenantDeleted   = "deleted"
)

// Product distributions: open products are visible to every
// active tenant, licensed ones only to tenants with an unended entitlement.
const (
	DistributionLicensed = "licensed"
	DistributionOpen     = "open"
)

// Release statuses.
const (
	ReleaseActive  = "ACTIVE"
	ReleaseRevoked = "REVOKED"
)

// Artifact source types and statuses.
const (
	SourceManaged  = "MANAGED"
	SourceExternal = "EXTERNAL"

	ArtifactPending  = "PENDING"
	ArtifactVerified = "VERIFIED"
	ArtifactFailed   = "FAILED"
)

// Policy actions.
const (
	ActionNone     = "NONE"
	ActionNotify   = "NOTIFY"
	ActionDownload = "DOWNLOAD"
	ActionInstall  = "INSTALL"
)

// Rollout statuses.
const (
	RolloutActive    = "active"
	RolloutPaused    = "paused"
	RolloutCompleted = "completed"
	RolloutKilled    = "killed"
)

// Mirror statuses.
const (
	MirrorActive   = "active"
	MirrorInactive = "inactive"
	MirrorError    = "error"
)

// Token roles. The read-only variants may call GET routes only.
const (
	RoleAdmin    = "admin"
	RoleTenant   = "tenant"
	RoleAdminRO  = "admin_ro"
	RoleTenantRO = "tenant_ro"
)

// TokenRoles are the roles an API token may have.
var TokenRoles = []string{RoleAdmin, RoleTenant, RoleAdminRO, RoleTenantRO}

// BaseRole returns the role a token role acts as (admin or tenant) and
// whether it is read-only.
func BaseRole(role string) (base string, readOnly bool) {
	switch role {
	case RoleAdminRO:
		return RoleAdmin, true
	case RoleTenantRO:
		return RoleTenant, true
	}
	return role, false
}

// Actor types of audit events.
const (
	ActorUser           = "user"
	ActorServiceAccount = "service_account"
	ActorSystem         = "system"
	ActorMirror         = "mirror"
)

// Subject types of leases and seats.
const (
	SubjectUser    = "user"
	SubjectMachine = "machine"
	SubjectDevice  = "device"
)

type Tenant struct {
	TenantID  string          `json:"tenant_id"`
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	CreatedAt time.Time       `json:"created_at"`
	Metadata  json.RawMessage `json:"metadata"`
}

type Product struct {
	ProductID    string          `json:"product_id"`
	Name         string          `json:"name"`
	Distribution string          `json:"distribution"`
	CreatedAt    time.Time       `json:"created_at"`
	Metadata     json.RawMessage `json:"metadata"`
}

type Release struct {
	ReleaseID   string          `json:"release_id"`
	ProductID   string          `json:"product_id"`
	Channel     string          `json:"channel"`
	Version     string          `json:"version"`
	PublishedAt time.Time       `json:"published_at"`
	RevokedAt   *time.Time      `json:"revoked_at"`
	Status      string          `json:"status"`
	Metadata    json.RawMessage `json:"metadata"`
}

type ReleaseArtifact struct {
	ReleaseArtifactID string `json:"release_artifact_id"`
	ReleaseID         string `json:"release_id"`
	ArtifactID        string `json:"artifact_id"`
	Platform          string `json:"platform"`
	Arch              string `json:"arch"`
	InstallerType     string `json:"installer_type"`
	RequiresAdmin     bool   `json:"requires_admin"`
}

type Artifact struct {
	ArtifactID  string     `json:"artifact_id"`
	SourceType  string     `json:"source_type"`
	SHA256      string     `json:"sha256"`
	SizeBytes   int64      `json:"size_bytes"`
	StoragePath string     `json:"storage_path,omitempty"`
	ExternalURL string     `json:"external_url,omitempty"`
	Status      string     `json:"status"`
	VerifiedAt  *time.Time `json:"verified_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

// Policy is one version of a tenant product policy. Version grows by one
// on every change; older versions are kept.
type Policy struct {
	PolicyID   string          `json:"policy_id"`
	TenantID   string          `json:"tenant_id"`
	ProductID  string          `json:"product_id"`
	Channel    string          `json:"channel"`
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"`
	Priority   int             `json:"priority"`
	Version    int             `json:"version"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

type BlockedVersion struct {
	BlocklistID    string    `json:"blocklist_id"`
	TenantID       string    `json:"tenant_id"`
	ProductID      string    `json:"product_id"`
	BlockedVersion string    `json:"blocked_version"`
	Reason         string    `json:"reason"`
	CreatedAt      time.Time `json:"created_at"`
}

type Rollout struct {
	RolloutID  string    `json:"rollout_id"`
	ProductID  string    `json:"product_id"`
	Channel    string    `json:"channel"`
	ReleaseID  string    `json:"release_id"`
	Percentage float64   `json:"percentage"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Schedule and HealthGate, when set, let the control plane advance
	// and halt the rollout itself (fleet.ParseSchedule, fleet.ParseGate;
	// docs/fleet.md).
	Schedule   json.RawMessage `json:"schedule,omitempty"`
	HealthGate json.RawMessage `json:"health_gate,omitempty"`
}

type Entitlement struct {
	EntitlementID string          `json:"entitlement_id"`
	TenantID      string          `json:"tenant_id"`
	ProductID     string          `json:"product_id"`
	Policy        json.RawMessage `json:"policy_json"`
	StartsAt      time.Time       `json:"starts_at"`
	EndsAt        *time.Time      `json:"ends_at"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

// Current reports whether the entitlement is in force at t:
// starts_at <= t < ends_at (an open ends_at runs forever).
func (e *Entitlement) Current(t time.Time) bool {
	return !t.Before(e.StartsAt) && (e.EndsAt == nil || t.Before(*e.EndsAt))
}

// Ended reports whether the entitlement has ended at t.
func (e *Entitlement) Ended(t time.Time) bool {
	return e.EndsAt != nil && !t.Before(*e.EndsAt)
}

// Overlaps reports whether the [starts_at, ends_at) ranges of e and o meet.
func (e *Entitlement) Overlaps(o *Entitlement) bool {
	aEndsAfterBStarts := e.EndsAt == nil || e.EndsAt.After(o.StartsAt)
	bEndsAfterAStarts := o.EndsAt == nil || o.EndsAt.After(e.StartsAt)
	return aEndsAfterBStarts && bEndsAfterAStarts
}

type Lease struct {
	LeaseID       string     `json:"lease_id"`
	EntitlementID string     `json:"entitlement_id"`
	TenantID      string     `json:"tenant_id"`
	SubjectType   string     `json:"subject_type"`
	SubjectID     string     `json:"subject_id"`
	IssuedAt      time.Time  `json:"issued_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	ReleasedAt    *time.Time `json:"released_at"`
	TokenHash     string     `json:"token_hash"`
	// HolderHash is the sha256 of the holder secret the lease was bound
	// to when acquired; renewing or releasing it needs that secret.
	HolderHash string `json:"holder_hash,omitempty"`
}

// Active reports whether the lease holds a seat at t.
func (l *Lease) Active(t time.Time) bool {
	return l.ReleasedAt == nil && t.Before(l.ExpiresAt)
}

type SeatAssignment struct {
	SeatAssignmentID string     `json:"seat_assignment_id"`
	EntitlementID    string     `json:"entitlement_id"`
	SubjectType      string     `json:"subject_type"`
	SubjectID        string     `json:"subject_id"`
	AssignedAt       time.Time  `json:"assigned_at"`
	AssignedBy       string     `json:"assigned_by"`
	RevokedAt        *time.Time `json:"revoked_at"`
	RevokedBy        string     `json:"revoked_by,omitempty"`
}

// Snapshot is a stored, signed manifest. Envelope holds the DSSE envelope
// bytes exactly as signed; they never change once stored.
type Snapshot struct {
	SnapshotID string    `json:"snapshot_id"`
	TenantID   string    `json:"tenant_id"`
	Sequence   int64     `json:"sequence"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Hash       string    `json:"hash"` // hex sha256 of Envelope
	Envelope   []byte    `json:"-"`
}

// Mirror is a registered mirror instance. CredentialEnc is the credential
// encrypted with the data-encryption key; CredentialHash is its sha256,
// used to authenticate.
type Mirror struct {
	MirrorID        string     `json:"mirror_id"`
	TenantID        string     `json:"tenant_id"`
	Name            string     `json:"name"`
	VendorURL       string     `json:"vendor_url"`
	AllowedChannels []string   `json:"allowed_channels"`
	PublicKey       string     `json:"public_key,omitempty"` // base64 raw ed25519
	Status          string     `json:"status"`
	LastSyncAt      *time.Time `json:"last_sync_at"`
	LastSnapshotID  string     `json:"last_snapshot_id"`
	LastSyncError   string     `json:"last_sync_error,omitempty"`
	// AuditHead is the head of the mirror's own audit chain the control
	// plane has accepted: an upload must extend it.
	AuditHead      AuditHead `json:"audit_head"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	CredentialHash string    `json:"-"`
	CredentialEnc  []byte    `json:"-"`
}

// Token is an API token; only its sha256 is stored. A revoked or
// expired token authenticates nothing; last_used_at is updated at most
// once a minute (TokenTouchEvery).
type Token struct {
	TokenID    string     `json:"token_id"`
	Role       string     `json:"role"`
	TenantID   string     `json:"tenant_id,omitempty"`
	Name       string     `json:"name,omitempty"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	RevokedBy  string     `json:"revoked_by,omitempty"`
}

// TokenTouchEvery is how stale a token's last_used_at may get: a request
// writes it only when the stored value is older.
const TokenTouchEvery = time.Minute

// Usable reports why a token cannot authenticate at now ("" when it can).
func (t *Token) Usable(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "token is revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "token has expired"
	}
	return ""
}

// AuditHead names the last event of a hash chain: its sequence and hash
// (0 and "" for an empty chain).
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// AuditEvent is one link of the hash chain:
// hash = sha256(prev_hash || canonical event), see internal/audit.
type AuditEvent struct {
	EventID   string          `json:"event_id"`
	Seq       int64           `json:"seq"`
	TenantID  string          `json:"tenant_id"`
	ActorType string          `json:"actor_type"`
	ActorID   string          `json:"actor_id"`
	EventType string          `json:"event_type"`
	Payload   json.RawMessage `json:"payload"`
	CreatedAt time.Time       `json:"created_at"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// Actor is who makes a change; the store records it in the audit event.
type Actor struct {
	Type string
	ID   string
}
