package tuf

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// VersionID names a TUF snapshot version where a schema-1 snapshot id
// would go (a mirror's status, its sync reports): "tuf-<version>".
func VersionID(v int64) string { return "tuf-" + strconv.FormatInt(v, 10) }

// ParseVersionID returns the snapshot version a VersionID names, and
// false for anything else (no sign, no leading zero, at most 18 digits).
func ParseVersionID(id string) (int64, bool) {
	d, ok := strings.CutPrefix(id, "tuf-")
	if !ok || len(d) == 0 || len(d) > 18 || d[0] == '0' {
		return 0, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(d, 10, 64)
	return v, err == nil
}

// Manifest assembles the verified repository into the tenant view the
// update engine and the licence ledger consume: the same manifest
// snapshot.Build gave the builder, apart from snapshot_id
// ("tuf-<snapshot version>"), sequence (the snapshot version),
// created_at (zero), expires_at (the timestamp's) and previous (empty).
// Only the products the top-level targets delegate to are included, with
// the targets found where their delegation says.
func (r *Repository) Manifest() (*snapshot.Manifest, error) {
	top := r.Roles[metadata.TARGETS]
	if top == nil || r.Snapshot == nil || r.Timestamp == nil {
		return nil, errors.New("assemble: incomplete repository")
	}
	m := &snapshot.Manifest{
		Schema:          snapshot.Schema,
		SnapshotID:      VersionID(r.Snapshot.Signed.Version),
		TenantID:        r.TenantID,
		Sequence:        r.Snapshot.Signed.Version,
		ExpiresAt:       r.Timestamp.Signed.Expires.UTC(),
		Products:        []snapshot.Product{},
		Releases:        []snapshot.Release{},
		Artifacts:       []snapshot.Artifact{},
		Policies:        []snapshot.Policy{},
		BlockedVersions: []snapshot.BlockedVersion{},
		Rollouts:        []snapshot.Rollout{},
		Entitlements:    []snapshot.Entitlement{},
		SeatAssignments: []snapshot.SeatAssignment{},
		MirrorKeys:      []snapshot.MirrorKey{},
	}
	for _, d := range []struct {
		path string
		dst  any
	}{
		{DocTenant, &m.Tenant}, {DocPolicies, &m.Policies}, {DocBlockedVersions, &m.BlockedVersions},
		{DocRollouts, &m.Rollouts}, {DocEntitlements, &m.Entitlements}, {DocSeatAssignments, &m.SeatAssignments},
		{DocMirrorKeys, &m.MirrorKeys},
	} {
		data, ok := r.Docs[d.path]
		if !ok {
			return nil, fmt.Errorf("assemble: document %s missing", d.path)
		}
		if err := json.Unmarshal(data, d.dst); err != nil {
			return nil, fmt.Errorf("assemble: document %s: %w", d.path, err)
		}
	}
	if m.Tenant.TenantID != r.TenantID {
		return nil, fmt.Errorf("assemble: tenant document names %q: %w", m.Tenant.TenantID, ErrWrongTenant)
	}

	releases := map[string]*snapshot.Release{}
	artifacts := map[string]snapshot.Artifact{}
	in := interner{}
	if top.Signed.Delegations != nil {
		for _, dr := range top.Signed.Delegations.Roles {
			pid, ok := strings.CutPrefix(dr.Name, productRolePrefix)
			if !ok {
				return nil, fmt.Errorf("assemble: delegated role %s is not a product role", dr.Name)
			}
			if err := r.assembleProduct(m, pid, dr.Name, releases, artifacts, in); err != nil {
				return nil, err
			}
		}
	}
	for _, rel := range releases {
		slices.SortFunc(rel.Artifacts, func(a, b snapshot.ReleaseArtifact) int { return cmp.Compare(a.ReleaseArtifactID, b.ReleaseArtifactID) })
		m.Releases = append(m.Releases, *rel)
	}
	for _, a := range artifacts {
		m.Artifacts = append(m.Artifacts, a)
	}
	slices.SortFunc(m.Products, func(a, b snapshot.Product) int { return cmp.Compare(a.ProductID, b.ProductID) })
	slices.SortFunc(m.Releases, func(a, b snapshot.Release) int { return cmp.Compare(a.ReleaseID, b.ReleaseID) })
	slices.SortFunc(m.Artifacts, func(a, b snapshot.Artifact) int { return cmp.Compare(a.ArtifactID, b.ArtifactID) })
	if len(m.Deltas) > 0 {
		slices.SortFunc(m.Deltas, func(a, b snapshot.Delta) int { return cmp.Compare(a.DeltaID, b.DeltaID) })
		for i, d := range m.Deltas {
			from, okf := artifacts[d.FromArtifactID]
			to, okt := artifacts[d.ToArtifactID]
			if !okf || !okt || from.SHA256 != d.FromSHA256 || to.SHA256 != d.ToSHA256 || (i > 0 && m.Deltas[i-1].DeltaID == d.DeltaID) {
				return nil, fmt.Errorf("assemble: delta %s does not name listed artifacts with their sha256s, or is listed twice", d.DeltaID)
			}
		}
	}
	return m, nil
}

// ProductName is a product's name as its verified document gives it ("" when
// the repository holds no document for it).
func (r *Repository) ProductName(productID string) string {
	data, ok := r.Docs[ProductDoc(productID)]
	if !ok {
		return ""
	}
	var doc struct {
		Product snapshot.Product `json:"product"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.Product.ProductID != productID {
		return ""
	}
	return doc.Product.Name
}

// assembleProduct adds a product, its releases and artifacts.
func (r *Repository) assembleProduct(m *snapshot.Manifest, pid, role string, releases map[string]*snapshot.Release, artifacts map[string]snapshot.Artifact, in interner) error {
	pr := r.Roles[role]
	if pr == nil {
		return fmt.Errorf("assemble: role %s missing", role)
	}
	data, ok := r.Docs[ProductDoc(pid)]
	if !ok {
		return fmt.Errorf("assemble: document %s missing", ProductDoc(pid))
	}
	var doc productDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("assemble: document %s: %w", ProductDoc(pid), err)
	}
	if doc.Product.ProductID != pid {
		return fmt.Errorf("assemble: document %s names product %q", ProductDoc(pid), doc.Product.ProductID)
	}
	m.Products = append(m.Products, doc.Product)
	m.Deltas = append(m.Deltas, doc.Deltas...)
	for _, rel := range doc.Releases {
		if rel.ProductID != pid || releases[rel.ReleaseID] != nil {
			return fmt.Errorf("assemble: product %s: release %s misplaced or duplicated", pid, rel.ReleaseID)
		}
		rel.Artifacts = []snapshot.ReleaseArtifact{}
		releases[rel.ReleaseID] = &rel
	}
	if d := pr.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
		for _, name := range d.SuccinctRoles.GetRoles() {
			if r.Roles[name] == nil {
				return fmt.Errorf("assemble: role %s missing", name)
			}
		}
	}
	for _, name := range productRoles(r.Roles, role) {
		err := eachArtifact(r.Roles, r.compact, name, func(e heldTarget) error {
			return addTarget(pid, e, releases, artifacts, in)
		})
		if err != nil {
			return fmt.Errorf("assemble: %w", err)
		}
	}
	return nil
}

// addTarget adds an artifact target to its release, refusing one whose
// custom fields disagree with its path or its release.
func addTarget(pid string, e heldTarget, releases map[string]*snapshot.Release, artifacts map[string]snapshot.Artifact, in interner) error {
	path := e.path
	var c Custom
	if err := json.Unmarshal([]byte(e.custom), &c); err != nil {
		return fmt.Errorf("target %s: custom: %w", path, err)
	}
	in.custom(&c)
	if c.Product != pid || path != ArtifactTarget(pid, c.ReleaseArtifact) {
		return fmt.Errorf("target %s: custom names product %q, release artifact %q", path, c.Product, c.ReleaseArtifact)
	}
	rel := releases[c.Release]
	if rel == nil {
		rel = &snapshot.Release{
			ReleaseID: c.Release, ProductID: c.Product, Channel: c.Channel, Version: c.Version,
			PublishedAt: c.PublishedAt.UTC(), Status: c.Status, RevokedAt: c.RevokedAt, Metadata: json.RawMessage(c.ReleaseMetadata),
			Artifacts: []snapshot.ReleaseArtifact{},
		}
		if len(rel.Metadata) == 0 {
			rel.Metadata = json.RawMessage("{}")
		}
		releases[c.Release] = rel
	} else if rel.ProductID != c.Product || rel.Channel != c.Channel || rel.Version != c.Version || rel.Status != c.Status {
		return fmt.Errorf("target %s: release %s fields disagree with its other artifacts", path, c.Release)
	}
	rel.Artifacts = append(rel.Artifacts, snapshot.ReleaseArtifact{
		ReleaseArtifactID: c.ReleaseArtifact, ArtifactID: c.Artifact, Platform: c.Platform, Arch: c.Arch,
		InstallerType: c.InstallerType, RequiresAdmin: c.RequiresAdmin,
	})
	a := snapshot.Artifact{ArtifactID: c.Artifact, SHA256: hex.EncodeToString(e.sum[:]), SizeBytes: e.length, SourceType: c.SourceType}
	if old, ok := artifacts[c.Artifact]; ok && old != a {
		return fmt.Errorf("target %s: artifact %s listed with different bytes", path, c.Artifact)
	}
	artifacts[c.Artifact] = a
	return nil
}

// Fresh applies the one expiry rule the mirror and the client share: a
// repository may be used at now only while its root, timestamp, snapshot
// and every targets role reached are unexpired. Past that, Update must
// bring a newer timestamp (or a bundle must) before anything is served
// or installed from it.
func (r *Repository) Fresh(now time.Time) error {
	if r == nil || r.Root == nil || r.Timestamp == nil || r.Snapshot == nil {
		return errors.New("fresh: no verified repository")
	}
	check := func(role string, exp time.Time) error {
		if now.After(exp) {
			return fmt.Errorf("fresh: %s expired at %s: %w", role, exp.UTC().Format(time.RFC3339), ErrExpired)
		}
		return nil
	}
	if err := check("root", r.Root.Signed.Expires); err != nil {
		return err
	}
	if err := check("timestamp", r.Timestamp.Signed.Expires); err != nil {
		return err
	}
	if err := check("snapshot", r.Snapshot.Signed.Expires); err != nil {
		return err
	}
	for name, t := range r.Roles {
		if err := check(name, t.Signed.Expires); err != nil {
			return err
		}
	}
	return nil
}
