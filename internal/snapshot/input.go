package snapshot

import "github.com/outpost/outpost/internal/catalog"

// Input is what Build needs: everything a tenant's snapshot may show,
// gathered by the control plane's store (store.SnapshotInput is this type)
// in the transaction that assigns its sequence. The builder decides
// visibility and must not modify the input: stores may share parts of it
// between builds.
type Input struct {
	Tenant           *catalog.Tenant
	Sequence         int64  // the sequence the new snapshot gets
	Previous         string // hex sha256 of the previous envelope, "" for the first
	Products         []*catalog.Product
	Releases         []*catalog.Release // of all products, sorted by id
	ReleaseArtifacts []*catalog.ReleaseArtifact
	Artifacts        []*catalog.Artifact // those referenced by ReleaseArtifacts
	Policies         []*catalog.Policy   // the tenant's, latest versions
	BlockedVersions  []*catalog.BlockedVersion
	Rollouts         []*catalog.Rollout
	Entitlements     []*catalog.Entitlement
	SeatAssignments  []*catalog.SeatAssignment
	Mirrors          []*catalog.Mirror // the tenant's
}
