// Package snapshot is the in-memory catalog view of one tenant (the
// Manifest the TUF assembler builds from verified metadata and the update
// engine serves from), Build (the view from the control plane's catalog),
// the clock plausibility check, and the DSSE primitives (envelope, PAE,
// key ids) that sign acknowledgements, audit exports and leases. The
// schema 1 snapshot codec (DSSE-signed manifests) is gone: TUF is the one
// trust format. It does no I/O.
package snapshot

import (
	"encoding/json"
	"time"
)

// PayloadType is the DSSE payload type of a schema 1 snapshot envelope
// (stored ones are still read as records, never verified).
const PayloadType = "application/vnd.outpost.snapshot+json"

// Schema is the manifest schema of the view.
const Schema = 1

// Manifest is everything one tenant may see at one sequence.
type Manifest struct {
	Schema          int              `json:"schema"`
	SnapshotID      string           `json:"snapshot_id"`
	TenantID        string           `json:"tenant_id"`
	Sequence        int64            `json:"sequence"`
	CreatedAt       time.Time        `json:"created_at"`
	ExpiresAt       time.Time        `json:"expires_at"`
	Previous        string           `json:"previous"`
	Tenant          Tenant           `json:"tenant"`
	Products        []Product        `json:"products"`
	Releases        []Release        `json:"releases"`
	Artifacts       []Artifact       `json:"artifacts"`
	Policies        []Policy         `json:"policies"`
	BlockedVersions []BlockedVersion `json:"blocked_versions"`
	Rollouts        []Rollout        `json:"rollouts"`
	Entitlements    []Entitlement    `json:"entitlements"`
	SeatAssignments []SeatAssignment `json:"seat_assignments"`
	MirrorKeys      []MirrorKey      `json:"mirror_keys"`
	// Deltas (issue 13, optional): binary deltas that rebuild a listed
	// artifact from another listed artifact. Absent when empty, so a
	// manifest without deltas is byte-identical to one from before they
	// existed.
	Deltas []Delta `json:"deltas,omitempty"`
	// LeaseKeys (optional): the vendor keys that sign the tenant's online
	// leases, as the control plane lists them at the build (the TUF
	// document docs/lease_keys.json; absent from a repository published
	// before it). Clients verify a vendor-signed lease against them.
	LeaseKeys []LeaseKey `json:"lease_keys,omitempty"`
}

// Delta is a signed binary delta (internal/delta format): applied to the
// artifact whose sha256 is FromSHA256 it rebuilds the artifact whose
// sha256 is ToSHA256. SHA256 and SizeBytes are the delta file's own.
type Delta struct {
	DeltaID        string `json:"delta_id"`
	FromArtifactID string `json:"from_artifact_id"`
	ToArtifactID   string `json:"to_artifact_id"`
	FromSHA256     string `json:"from_sha256"`
	ToSHA256       string `json:"to_sha256"`
	SHA256         string `json:"sha256"`
	SizeBytes      int64  `json:"size_bytes"`
}

type Tenant struct {
	TenantID string          `json:"tenant_id"`
	Name     string          `json:"name"`
	Status   string          `json:"status"`
	Metadata json.RawMessage `json:"metadata"`
}

type Product struct {
	ProductID    string          `json:"product_id"`
	Name         string          `json:"name"`
	Distribution string          `json:"distribution"`
	Metadata     json.RawMessage `json:"metadata"`
}

type Release struct {
	ReleaseID   string            `json:"release_id"`
	ProductID   string            `json:"product_id"`
	Channel     string            `json:"channel"`
	Version     string            `json:"version"`
	PublishedAt time.Time         `json:"published_at"`
	Status      string            `json:"status"`
	RevokedAt   *time.Time        `json:"revoked_at"`
	Metadata    json.RawMessage   `json:"metadata"`
	Artifacts   []ReleaseArtifact `json:"artifacts"`
}

type ReleaseArtifact struct {
	ReleaseArtifactID string `json:"release_artifact_id"`
	ArtifactID        string `json:"artifact_id"`
	Platform          string `json:"platform"`
	Arch              string `json:"arch"`
	InstallerType     string `json:"installer_type"`
	RequiresAdmin     bool   `json:"requires_admin"`
}

type Artifact struct {
	ArtifactID string `json:"artifact_id"`
	SHA256     string `json:"sha256"`
	SizeBytes  int64  `json:"size_bytes"`
	SourceType string `json:"source_type"`
}

type Policy struct {
	PolicyID   string          `json:"policy_id"`
	ProductID  string          `json:"product_id"`
	Channel    string          `json:"channel"`
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"`
	Priority   int             `json:"priority"`
	Version    int             `json:"version"`
}

type BlockedVersion struct {
	BlocklistID    string `json:"blocklist_id"`
	ProductID      string `json:"product_id"`
	BlockedVersion string `json:"blocked_version"`
	Reason         string `json:"reason"`
}

type Rollout struct {
	RolloutID  string  `json:"rollout_id"`
	ProductID  string  `json:"product_id"`
	Channel    string  `json:"channel"`
	ReleaseID  string  `json:"release_id"`
	Percentage float64 `json:"percentage"`
	Status     string  `json:"status"`
}

type Entitlement struct {
	EntitlementID string          `json:"entitlement_id"`
	ProductID     string          `json:"product_id"`
	Policy        json.RawMessage `json:"policy"`
	StartsAt      time.Time       `json:"starts_at"`
	EndsAt        *time.Time      `json:"ends_at"`
}

type SeatAssignment struct {
	SeatAssignmentID string     `json:"seat_assignment_id"`
	EntitlementID    string     `json:"entitlement_id"`
	SubjectType      string     `json:"subject_type"`
	SubjectID        string     `json:"subject_id"`
	AssignedAt       time.Time  `json:"assigned_at"`
	RevokedAt        *time.Time `json:"revoked_at"`
}

// LeaseKey is a vendor key that signs online leases.
type LeaseKey struct {
	KeyID     string `json:"key_id"`     // hex sha256 of the raw key (KeyID)
	PublicKey string `json:"public_key"` // base64 of the raw 32-byte ed25519 key
}

type MirrorKey struct {
	MirrorID  string `json:"mirror_id"`
	PublicKey string `json:"public_key"` // base64 of the raw 32-byte ed25519 key
}
