package catalog

// SnapshotInput is everything a snapshot of one tenant may draw on, read in
// the same transaction that assigns its sequence. The builder (pure code)
// decides visibility; the store only gathers. The builder must not modify
// the input: implementations may share parts of it between builds.
type SnapshotInput struct {
	Tenant           *Tenant
	Sequence         int64  // the sequence the new snapshot gets
	Previous         string // hex sha256 of the previous envelope, "" for the first
	Products         []*Product
	Releases         []*Release // of all products, sorted by id
	ReleaseArtifacts []*ReleaseArtifact
	Artifacts        []*Artifact // those referenced by ReleaseArtifacts
	Policies         []*Policy   // the tenant's, latest versions
	BlockedVersions  []*BlockedVersion
	Rollouts         []*Rollout
	Entitlements     []*Entitlement
	SeatAssignments  []*SeatAssignment
	Mirrors          []*Mirror // the tenant's
}
