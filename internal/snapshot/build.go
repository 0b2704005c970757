package snapshot

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// BuildOptions are the parts of a manifest that do not come from the
// catalog.
type BuildOptions struct {
	SnapshotID string
	Now        time.Time
	TTL        time.Duration
	// Deltas are the offered deltas the control plane holds; Build lists
	// those whose from and to artifacts are both listed, with the sha256s
	// those artifacts have.
	Deltas []Delta
	// LeaseKeys are the vendor keys that sign the tenant's online leases
	// (listed sorted by key id; none: no lease_keys).
	LeaseKeys []LeaseKey
}

// Build decides what the tenant of in may see and returns its
// manifest with every list sorted by id and never nil:
//   - products: open ones, and licensed ones (the default) for which the
//     tenant holds an entitlement that has not ended at o.Now; none when
//     the tenant is not active;
//   - releases (ACTIVE and REVOKED) of those products, with the release
//     artifacts whose artifact is VERIFIED, and those artifacts;
//   - policies, blocked versions and rollouts of those products (rollouts
//     only when their release is listed), the tenant's entitlements for
//     them and their seat assignments;
//   - mirror_keys: the tenant's mirrors that have a public key and are not
//     deactivated (a mirror reporting a sync error still signs leases).
//
// The same input gives the same manifest apart from snapshot_id,
// created_at and expires_at.
func Build(in *catalog.SnapshotInput, o BuildOptions) *Manifest {
	now := o.Now.UTC().Truncate(time.Second)
	m := &Manifest{
		Schema:          Schema,
		SnapshotID:      o.SnapshotID,
		Sequence:        in.Sequence,
		CreatedAt:       now,
		ExpiresAt:       now.Add(o.TTL),
		Previous:        in.Previous,
		Products:        []Product{},
		Releases:        make([]Release, 0, len(in.Releases)),
		Artifacts:       make([]Artifact, 0, len(in.Artifacts)),
		Policies:        []Policy{},
		BlockedVersions: []BlockedVersion{},
		Rollouts:        []Rollout{},
		Entitlements:    []Entitlement{},
		SeatAssignments: []SeatAssignment{},
		MirrorKeys:      []MirrorKey{},
	}
	if in.Tenant == nil {
		return m
	}
	ten := in.Tenant
	m.TenantID = ten.TenantID
	m.Tenant = Tenant{TenantID: ten.TenantID, Name: ten.Name, Status: ten.Status, Metadata: object(ten.Metadata)}
	mine := func(tenantID string) bool { return tenantID == "" || tenantID == ten.TenantID }

	// Visible products.
	entitled := map[string]bool{}
	for _, e := range in.Entitlements {
		if e != nil && mine(e.TenantID) && !e.Ended(o.Now) {
			entitled[e.ProductID] = true
		}
	}
	visible := map[string]bool{}
	if ten.Status == catalog.TenantActive {
		for _, p := range in.Products {
			if p == nil {
				continue
			}
			dist := p.Distribution
			if dist == "" {
				dist = catalog.DistributionLicensed
			}
			if dist == catalog.DistributionOpen || (dist == catalog.DistributionLicensed && entitled[p.ProductID]) {
				visible[p.ProductID] = true
				m.Products = append(m.Products, Product{ProductID: p.ProductID, Name: p.Name, Distribution: dist, Metadata: object(p.Metadata)})
			}
		}
	}

	// Releases, their verified artifacts, and those artifacts.
	verified := make(map[string]*catalog.Artifact, len(in.Artifacts))
	for _, a := range in.Artifacts {
		if a != nil && a.Status == catalog.ArtifactVerified {
			verified[a.ArtifactID] = a
		}
	}
	byRelease := make(map[string][]ReleaseArtifact, len(in.Releases))
	used := make(map[string]bool, len(in.Artifacts))
	for _, ra := range in.ReleaseArtifacts {
		if ra == nil || verified[ra.ArtifactID] == nil {
			continue
		}
		byRelease[ra.ReleaseID] = append(byRelease[ra.ReleaseID], ReleaseArtifact{
			ReleaseArtifactID: ra.ReleaseArtifactID, ArtifactID: ra.ArtifactID, Platform: ra.Platform,
			Arch: ra.Arch, InstallerType: ra.InstallerType, RequiresAdmin: ra.RequiresAdmin,
		})
	}
	listed := map[string]bool{}
	for _, r := range in.Releases {
		if r == nil || !visible[r.ProductID] || (r.Status != catalog.ReleaseActive && r.Status != catalog.ReleaseRevoked) {
			continue
		}
		ras := byRelease[r.ReleaseID]
		if ras == nil {
			ras = []ReleaseArtifact{}
		}
		slices.SortFunc(ras, func(a, b ReleaseArtifact) int { return cmp.Compare(a.ReleaseArtifactID, b.ReleaseArtifactID) })
		for _, ra := range ras {
			if !used[ra.ArtifactID] {
				used[ra.ArtifactID] = true
				a := verified[ra.ArtifactID]
				m.Artifacts = append(m.Artifacts, Artifact{ArtifactID: a.ArtifactID, SHA256: a.SHA256, SizeBytes: a.SizeBytes, SourceType: a.SourceType})
			}
		}
		listed[r.ReleaseID] = true
		m.Releases = append(m.Releases, Release{
			ReleaseID: r.ReleaseID, ProductID: r.ProductID, Channel: r.Channel, Version: r.Version,
			PublishedAt: r.PublishedAt.UTC(), Status: r.Status, RevokedAt: utcPtr(r.RevokedAt),
			Metadata: object(r.Metadata), Artifacts: ras,
		})
	}

	for _, p := range in.Policies {
		if p != nil && mine(p.TenantID) && visible[p.ProductID] {
			m.Policies = append(m.Policies, Policy{
				PolicyID: p.PolicyID, ProductID: p.ProductID, Channel: p.Channel, Action: p.Action,
				Conditions: object(p.Conditions), Priority: p.Priority, Version: p.Version,
			})
		}
	}
	for _, b := range in.BlockedVersions {
		if b != nil && mine(b.TenantID) && visible[b.ProductID] {
			m.BlockedVersions = append(m.BlockedVersions, BlockedVersion{
				BlocklistID: b.BlocklistID, ProductID: b.ProductID, BlockedVersion: b.BlockedVersion, Reason: b.Reason,
			})
		}
	}
	for _, r := range in.Rollouts {
		if r != nil && visible[r.ProductID] && listed[r.ReleaseID] {
			m.Rollouts = append(m.Rollouts, Rollout{
				RolloutID: r.RolloutID, ProductID: r.ProductID, Channel: r.Channel, ReleaseID: r.ReleaseID,
				Percentage: r.Percentage, Status: r.Status,
			})
		}
	}
	ents := map[string]bool{}
	for _, e := range in.Entitlements {
		if e != nil && mine(e.TenantID) && visible[e.ProductID] {
			ents[e.EntitlementID] = true
			m.Entitlements = append(m.Entitlements, Entitlement{
				EntitlementID: e.EntitlementID, ProductID: e.ProductID, Policy: object(e.Policy),
				StartsAt: e.StartsAt.UTC(), EndsAt: utcPtr(e.EndsAt),
			})
		}
	}
	for _, s := range in.SeatAssignments {
		if s != nil && ents[s.EntitlementID] {
			m.SeatAssignments = append(m.SeatAssignments, SeatAssignment{
				SeatAssignmentID: s.SeatAssignmentID, EntitlementID: s.EntitlementID, SubjectType: s.SubjectType,
				SubjectID: s.SubjectID, AssignedAt: s.AssignedAt.UTC(), RevokedAt: utcPtr(s.RevokedAt),
			})
		}
	}
	for _, mi := range in.Mirrors {
		if mi != nil && mine(mi.TenantID) && mi.Status != catalog.MirrorInactive && mi.PublicKey != "" {
			m.MirrorKeys = append(m.MirrorKeys, MirrorKey{MirrorID: mi.MirrorID, PublicKey: mi.PublicKey})
		}
	}

	sortBy(m.Products, func(p *Product) string { return p.ProductID })
	sortBy(m.Releases, func(r *Release) string { return r.ReleaseID })
	sortBy(m.Artifacts, func(a *Artifact) string { return a.ArtifactID })
	sortBy(m.Policies, func(p *Policy) string { return p.PolicyID })
	sortBy(m.BlockedVersions, func(b *BlockedVersion) string { return b.BlocklistID })
	sortBy(m.Rollouts, func(r *Rollout) string { return r.RolloutID })
	sortBy(m.Entitlements, func(e *Entitlement) string { return e.EntitlementID })
	sortBy(m.SeatAssignments, func(s *SeatAssignment) string { return s.SeatAssignmentID })
	sortBy(m.MirrorKeys, func(k *MirrorKey) string { return k.MirrorID })
	m.Deltas = listedDeltas(m.Artifacts, o.Deltas)
	if len(o.LeaseKeys) > 0 {
		m.LeaseKeys = slices.Clone(o.LeaseKeys)
		sortBy(m.LeaseKeys, func(k *LeaseKey) string { return k.KeyID })
	}
	return m
}

// listedDeltas keeps the deltas between two listed artifacts whose hashes
// match theirs, sorted by id; nil when there are none.
func listedDeltas(arts []Artifact, ds []Delta) []Delta {
	if len(ds) == 0 {
		return nil
	}
	sha := make(map[string]string, len(arts))
	for i := range arts {
		sha[arts[i].ArtifactID] = arts[i].SHA256
	}
	var out []Delta
	seen := map[string]bool{}
	for _, d := range ds {
		from, okf := sha[d.FromArtifactID]
		to, okt := sha[d.ToArtifactID]
		if !okf || !okt || from != d.FromSHA256 || to != d.ToSHA256 || from == to || seen[d.DeltaID] {
			continue
		}
		seen[d.DeltaID] = true
		out = append(out, d)
	}
	sortBy(out, func(d *Delta) string { return d.DeltaID })
	return out
}

// sortBy sorts by id; the store hands most lists over sorted already, so
// that case is a single pass.
func sortBy[T any](list []T, id func(*T) string) {
	sorted := true
	for i := 1; i < len(list) && sorted; i++ {
		sorted = id(&list[i-1]) <= id(&list[i])
	}
	if !sorted {
		slices.SortStableFunc(list, func(a, b T) int { return cmp.Compare(id(&a), id(&b)) })
	}
}

// object returns raw, or {} when it is empty or null.
func object(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
