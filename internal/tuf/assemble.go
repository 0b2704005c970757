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

// Manifest assembles the verified repository into the tenant view the
// update engine and the licence ledger consume: the same manifest
// snapshot.Build gave the builder, apart from snapshot_id
// ("tuf-<snapshot version>"), sequence (the snapshot version),
// created_at (zero), expires_at (the timestamp's) and previous (empty).
// Only the products the top-level targets delegate to are included, with
// the targets found where their delegation says. It assembles every
// product; an Assembler reuses the unchanged ones between versions.
func (r *Repository) Manifest() (*snapshot.Manifest, error) {
	return new(Assembler).Manifest(r)
}

// Assembler assembles successive verified versions of one repository
// into manifests (Repository.Manifest), keeping each product's part
// (its product, releases and artifacts) with the versions of the roles
// it came from: a product whose role and bins kept their versions is
// reused as it is, so a one-release change re-reads one product, not
// the catalog. The manifests it returns share those parts: treat them
// as read-only. The zero value is ready; not safe for concurrent use.
type Assembler struct {
	parts map[string]*productPart // by product id
}

// productPart is one product's share of a manifest.
type productPart struct {
	key       string // the versions of its role and bins
	product   snapshot.Product
	releases  []snapshot.Release  // by release id
	artifacts []snapshot.Artifact // by artifact id
	deltas    []snapshot.Delta    // from its document (docs/deltas.md)
}

// Manifest assembles r (see Repository.Manifest), reusing the parts of
// the products whose roles did not change since the last call.
func (a *Assembler) Manifest(r *Repository) (*snapshot.Manifest, error) {
	top := r.Roles[metadata.TARGETS]
	if top == nil || r.Snapshot == nil || r.Timestamp == nil {
		return nil, errors.New("assemble: incomplete repository")
	}
	// The licence ledger refuses leases on a clock behind it
	// (snapshot.CheckClock, the same rule as CheckClock).
	signedAt, err := SignedAt(r.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	m := &snapshot.Manifest{
		Schema:          snapshot.Schema,
		SnapshotID:      VersionID(r.Snapshot.Signed.Version),
		TenantID:        r.TenantID,
		Sequence:        r.Snapshot.Signed.Version,
		CreatedAt:       signedAt,
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
	if data, ok := r.Docs[DocLeaseKeys]; ok { // optional: absent before it existed
		if err := json.Unmarshal(data, &m.LeaseKeys); err != nil {
			return nil, fmt.Errorf("assemble: document %s: %w", DocLeaseKeys, err)
		}
	}
	if m.Tenant.TenantID != r.TenantID {
		return nil, fmt.Errorf("assemble: tenant document names %q: %w", m.Tenant.TenantID, ErrWrongTenant)
	}

	parts := map[string]*productPart{}
	var nrel, nart int
	if top.Signed.Delegations != nil {
		for _, dr := range top.Signed.Delegations.Roles {
			pid, ok := strings.CutPrefix(dr.Name, productRolePrefix)
			if !ok {
				return nil, fmt.Errorf("assemble: delegated role %s is not a product role", dr.Name)
			}
			if parts[pid] != nil {
				return nil, fmt.Errorf("assemble: product %s delegated twice", pid)
			}
			key, err := r.partKey(dr.Name)
			if err != nil {
				return nil, err
			}
			p := a.parts[pid]
			if p == nil || p.key != key {
				if p, err = r.assembleProduct(pid, dr.Name); err != nil {
					return nil, err
				}
				p.key = key
			}
			parts[pid] = p
			nrel += len(p.releases)
			nart += len(p.artifacts)
		}
	}
	// Parts are checked on their own; what crosses products is checked
	// here: a release id in two products, an artifact id listed with
	// different bytes.
	relRuns := make([][]snapshot.Release, 0, len(parts))
	artRuns := make([][]snapshot.Artifact, 0, len(parts))
	for _, p := range parts {
		m.Products = append(m.Products, p.product)
		relRuns = append(relRuns, p.releases)
		artRuns = append(artRuns, p.artifacts)
		m.Deltas = append(m.Deltas, p.deltas...)
	}
	slices.SortFunc(m.Products, func(a, b snapshot.Product) int { return cmp.Compare(a.ProductID, b.ProductID) })
	m.Releases = mergeSorted(relRuns, nrel, func(a, b *snapshot.Release) int { return cmp.Compare(a.ReleaseID, b.ReleaseID) })
	for i := 1; i < len(m.Releases); i++ {
		if m.Releases[i].ReleaseID == m.Releases[i-1].ReleaseID {
			return nil, fmt.Errorf("assemble: release %s listed by products %s and %s", m.Releases[i].ReleaseID, m.Releases[i-1].ProductID, m.Releases[i].ProductID)
		}
	}
	m.Artifacts = mergeSorted(artRuns, nart, func(a, b *snapshot.Artifact) int { return cmp.Compare(a.ArtifactID, b.ArtifactID) })
	m.Artifacts = slices.CompactFunc(m.Artifacts, func(a, b snapshot.Artifact) bool { return a == b })
	for i := 1; i < len(m.Artifacts); i++ {
		if m.Artifacts[i].ArtifactID == m.Artifacts[i-1].ArtifactID {
			return nil, fmt.Errorf("assemble: artifact %s listed with different bytes", m.Artifacts[i].ArtifactID)
		}
	}
	if len(m.Deltas) > 0 {
		slices.SortFunc(m.Deltas, func(a, b snapshot.Delta) int { return cmp.Compare(a.DeltaID, b.DeltaID) })
		listed := func(id, sum string) bool {
			i, ok := slices.BinarySearchFunc(m.Artifacts, id, func(a snapshot.Artifact, id string) int { return cmp.Compare(a.ArtifactID, id) })
			return ok && m.Artifacts[i].SHA256 == sum
		}
		for i, d := range m.Deltas {
			if !listed(d.FromArtifactID, d.FromSHA256) || !listed(d.ToArtifactID, d.ToSHA256) || (i > 0 && m.Deltas[i-1].DeltaID == d.DeltaID) {
				return nil, fmt.Errorf("assemble: delta %s does not name listed artifacts with their sha256s, or is listed twice", d.DeltaID)
			}
		}
	}
	a.parts = parts
	return m, nil
}

// mergeSorted merges runs, each sorted by compare, into one sorted
// slice of n elements: O(n log len(runs)), where sorting the whole again
// would be O(n log n) string comparisons at every version.
func mergeSorted[T any](runs [][]T, n int, compare func(a, b *T) int) []T {
	out := make([]T, 0, n)
	// h is a binary min-heap of the runs not yet drained, by their head.
	h := make([][]T, 0, len(runs))
	for _, r := range runs {
		if len(r) > 0 {
			h = append(h, r)
		}
	}
	less := func(i, j int) bool { return compare(&h[i][0], &h[j][0]) < 0 }
	down := func(i int) {
		for {
			l, small := 2*i+1, i
			if l < len(h) && less(l, small) {
				small = l
			}
			if r := l + 1; r < len(h) && less(r, small) {
				small = r
			}
			if small == i {
				return
			}
			h[i], h[small] = h[small], h[i]
			i = small
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		out = append(out, h[0][0])
		if h[0] = h[0][1:]; len(h[0]) == 0 {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		if len(h) > 0 {
			down(0)
		}
	}
	return out
}

// partKey names the versions of a product's role and of its bins: the
// same key means the same signed content, so the same part.
func (r *Repository) partKey(role string) (string, error) {
	pr := r.Roles[role]
	if pr == nil {
		return "", fmt.Errorf("assemble: role %s missing", role)
	}
	key := strconv.FormatInt(pr.Signed.Version, 10)
	if d := pr.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
		var b strings.Builder
		b.WriteString(key)
		for _, name := range d.SuccinctRoles.GetRoles() {
			t := r.Roles[name]
			if t == nil {
				return "", fmt.Errorf("assemble: role %s missing", name)
			}
			b.WriteByte(',')
			b.WriteString(strconv.FormatInt(t.Signed.Version, 10))
		}
		key = b.String()
	}
	return key, nil
}

// assembleProduct reads a product's part: its product, releases and
// artifacts.
func (r *Repository) assembleProduct(pid, role string) (*productPart, error) {
	data, ok := r.Docs[ProductDoc(pid)]
	if !ok {
		return nil, fmt.Errorf("assemble: document %s missing", ProductDoc(pid))
	}
	var doc productDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("assemble: document %s: %w", ProductDoc(pid), err)
	}
	if doc.Product.ProductID != pid {
		return nil, fmt.Errorf("assemble: document %s names product %q", ProductDoc(pid), doc.Product.ProductID)
	}
	p := &productPart{product: doc.Product, deltas: doc.Deltas}
	releases := map[string]*snapshot.Release{}
	artifacts := map[string]snapshot.Artifact{}
	in := interner{}
	for _, rel := range doc.Releases {
		if rel.ProductID != pid || releases[rel.ReleaseID] != nil {
			return nil, fmt.Errorf("assemble: product %s: release %s misplaced or duplicated", pid, rel.ReleaseID)
		}
		rel.Artifacts = []snapshot.ReleaseArtifact{}
		releases[rel.ReleaseID] = &rel
	}
	for _, name := range productRoles(r.Roles, role) {
		err := eachArtifact(r.Roles, r.compact, name, func(e heldTarget) error {
			return addTarget(pid, e, releases, artifacts, in)
		})
		if err != nil {
			return nil, fmt.Errorf("assemble: %w", err)
		}
	}
	p.releases = make([]snapshot.Release, 0, len(releases))
	for _, rel := range releases {
		slices.SortFunc(rel.Artifacts, func(a, b snapshot.ReleaseArtifact) int { return cmp.Compare(a.ReleaseArtifactID, b.ReleaseArtifactID) })
		p.releases = append(p.releases, *rel)
	}
	p.artifacts = make([]snapshot.Artifact, 0, len(artifacts))
	for _, a := range artifacts {
		p.artifacts = append(p.artifacts, a)
	}
	slices.SortFunc(p.releases, func(a, b snapshot.Release) int { return cmp.Compare(a.ReleaseID, b.ReleaseID) })
	slices.SortFunc(p.artifacts, func(a, b snapshot.Artifact) int { return cmp.Compare(a.ArtifactID, b.ArtifactID) })
	return p, nil
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
// and every targets role reached are unexpired, and while now is not
// behind the timestamp's signed time by more than ClockSkew (CheckClock).
// Past expiry, Update must bring a newer timestamp (or a bundle must)
// before anything is served or installed from it.
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
	if err := checkTimestampClock(r.Timestamp, now); err != nil {
		return fmt.Errorf("fresh: %w", err)
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
