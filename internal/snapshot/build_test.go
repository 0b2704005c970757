package snapshot_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
)

var buildOpts = snapshot.BuildOptions{SnapshotID: "snp_1", Now: snapshottest.Now, TTL: 24 * time.Hour}

// visibilityInput has one product per visibility case, each with one
// release and one verified artifact, plus one release with an unverified
// artifact.
func visibilityInput() *catalog.SnapshotInput {
	ten := snapshottest.TenantID
	at := snapshottest.Now.Add(-48 * time.Hour)
	ended := snapshottest.Now.Add(-time.Hour)
	later := snapshottest.Now.Add(time.Hour)
	in := &catalog.SnapshotInput{
		Tenant:   &catalog.Tenant{TenantID: ten, Name: "T", Status: catalog.TenantActive},
		Sequence: 1,
	}
	prods := []struct{ id, dist string }{
		{"prd_open", catalog.DistributionOpen},
		{"prd_lic_current", catalog.DistributionLicensed},
		{"prd_lic_ended", catalog.DistributionLicensed},
		{"prd_lic_none", catalog.DistributionLicensed},
		{"prd_default_entitled", ""},
		{"prd_lic_future", catalog.DistributionLicensed},
	}
	// Reverse order: Build must sort.
	for i := len(prods) - 1; i >= 0; i-- {
		p := prods[i]
		in.Products = append(in.Products, &catalog.Product{ProductID: p.id, Name: p.id, Distribution: p.dist})
		rid, aid := "rel_"+p.id, "art_"+p.id
		in.Releases = append(in.Releases, &catalog.Release{ReleaseID: rid, ProductID: p.id, Channel: "stable", Version: "1.0.0", PublishedAt: at, Status: catalog.ReleaseActive})
		in.Artifacts = append(in.Artifacts, &catalog.Artifact{ArtifactID: aid, SourceType: catalog.SourceManaged, SHA256: snapshottest.SHA256(i), SizeBytes: 10, Status: catalog.ArtifactVerified})
		in.ReleaseArtifacts = append(in.ReleaseArtifacts, &catalog.ReleaseArtifact{ReleaseArtifactID: "rla_" + p.id, ReleaseID: rid, ArtifactID: aid, Platform: "linux", Arch: "x64", InstallerType: "deb"})
		in.Policies = append(in.Policies, &catalog.Policy{PolicyID: "pol_" + p.id, TenantID: ten, ProductID: p.id, Channel: "stable", Action: catalog.ActionNotify, Version: 1})
		in.BlockedVersions = append(in.BlockedVersions, &catalog.BlockedVersion{BlocklistID: "blk_" + p.id, TenantID: ten, ProductID: p.id, BlockedVersion: "0.9.0"})
		in.Rollouts = append(in.Rollouts, &catalog.Rollout{RolloutID: "rol_" + p.id, ProductID: p.id, Channel: "stable", ReleaseID: rid, Percentage: 50, Status: catalog.RolloutActive})
	}
	ent := func(id, product string, ends *time.Time, starts time.Time) {
		in.Entitlements = append(in.Entitlements, &catalog.Entitlement{EntitlementID: id, TenantID: ten, ProductID: product, Policy: json.RawMessage(`{"max_seats":1}`), StartsAt: starts, EndsAt: ends})
		in.SeatAssignments = append(in.SeatAssignments, &catalog.SeatAssignment{SeatAssignmentID: "sea_" + id, EntitlementID: id, SubjectType: catalog.SubjectUser, SubjectID: "u", AssignedAt: at})
	}
	ent("ent_current", "prd_lic_current", nil, at)
	ent("ent_ended", "prd_lic_ended", &ended, at)
	ent("ent_default", "prd_default_entitled", &later, at)
	ent("ent_future", "prd_lic_future", nil, later) // not ended: visible (offered only once current)
	// A revoked release and a release whose artifact is not verified.
	revoked := snapshottest.Now.Add(-time.Minute)
	in.Releases = append(in.Releases,
		&catalog.Release{ReleaseID: "rel_revoked", ProductID: "prd_open", Channel: "stable", Version: "0.1.0", PublishedAt: at, Status: catalog.ReleaseRevoked, RevokedAt: &revoked},
		&catalog.Release{ReleaseID: "rel_pending", ProductID: "prd_open", Channel: "stable", Version: "0.2.0", PublishedAt: at, Status: catalog.ReleaseActive},
	)
	in.Artifacts = append(in.Artifacts, &catalog.Artifact{ArtifactID: "art_pending", SourceType: catalog.SourceManaged, SHA256: snapshottest.SHA256(99), SizeBytes: 1, Status: catalog.ArtifactPending})
	in.ReleaseArtifacts = append(in.ReleaseArtifacts, &catalog.ReleaseArtifact{ReleaseArtifactID: "rla_pending", ReleaseID: "rel_pending", ArtifactID: "art_pending", Platform: "linux", Arch: "x64", InstallerType: "deb"})
	in.Mirrors = []*catalog.Mirror{
		{MirrorID: "mir_b_active", TenantID: ten, Status: catalog.MirrorActive, PublicKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{MirrorID: "mir_a_nokey", TenantID: ten, Status: catalog.MirrorActive},
		{MirrorID: "mir_c_inactive", TenantID: ten, Status: catalog.MirrorInactive, PublicKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
	}
	return in
}

func ids[T any](list []T, id func(T) string) []string {
	out := []string{}
	for _, v := range list {
		out = append(out, id(v))
	}
	return out
}

func TestBuild_Visibility(t *testing.T) {
	m := snapshot.Build(visibilityInput(), buildOpts)
	visible := []string{"prd_default_entitled", "prd_lic_current", "prd_lic_future", "prd_open"}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"products", ids(m.Products, func(p snapshot.Product) string { return p.ProductID }), visible},
		{"releases", ids(m.Releases, func(r snapshot.Release) string { return r.ReleaseID }),
			[]string{"rel_pending", "rel_prd_default_entitled", "rel_prd_lic_current", "rel_prd_lic_future", "rel_prd_open", "rel_revoked"}},
		{"artifacts", ids(m.Artifacts, func(a snapshot.Artifact) string { return a.ArtifactID }),
			[]string{"art_prd_default_entitled", "art_prd_lic_current", "art_prd_lic_future", "art_prd_open"}},
		{"policies", ids(m.Policies, func(p snapshot.Policy) string { return p.ProductID }), visible},
		{"blocked", ids(m.BlockedVersions, func(b snapshot.BlockedVersion) string { return b.ProductID }), visible},
		{"rollouts", ids(m.Rollouts, func(r snapshot.Rollout) string { return r.ProductID }), visible},
		{"entitlements", ids(m.Entitlements, func(e snapshot.Entitlement) string { return e.EntitlementID }), []string{"ent_current", "ent_default", "ent_future"}},
		{"seats", ids(m.SeatAssignments, func(s snapshot.SeatAssignment) string { return s.SeatAssignmentID }), []string{"sea_ent_current", "sea_ent_default", "sea_ent_future"}},
		{"mirror keys", ids(m.MirrorKeys, func(k snapshot.MirrorKey) string { return k.MirrorID }), []string{"mir_b_active"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	t.Run("revoked release marked", func(t *testing.T) {
		r := m.Releases[len(m.Releases)-1]
		if r.Status != catalog.ReleaseRevoked || r.RevokedAt == nil {
			t.Errorf("got status %s revoked_at %v, want REVOKED with a time", r.Status, r.RevokedAt)
		}
	})
	t.Run("unverified artifact left out of its release", func(t *testing.T) {
		if got := len(m.Releases[0].Artifacts); got != 0 {
			t.Errorf("rel_pending has %d artifacts, want 0", got)
		}
	})
	t.Run("default distribution is licensed", func(t *testing.T) {
		if got := m.Products[0].Distribution; got != catalog.DistributionLicensed {
			t.Errorf("got %q, want licensed", got)
		}
	})
}

func TestBuild_InactiveTenantSeesNoProducts(t *testing.T) {
	in := visibilityInput()
	in.Tenant.Status = catalog.TenantSuspended
	m := snapshot.Build(in, buildOpts)
	if len(m.Products) != 0 || len(m.Releases) != 0 || len(m.Artifacts) != 0 {
		t.Errorf("got %d products, %d releases, %d artifacts, want none", len(m.Products), len(m.Releases), len(m.Artifacts))
	}
}

func TestBuild_EmptyListsAndDefaults(t *testing.T) {
	in := &catalog.SnapshotInput{Tenant: &catalog.Tenant{TenantID: "ten_x", Name: "X", Status: catalog.TenantActive}, Sequence: 1}
	m := snapshot.Build(in, buildOpts)
	b := string(encode(t, m))
	for _, want := range []string{`"products":[]`, `"releases":[]`, `"artifacts":[]`, `"policies":[]`, `"blocked_versions":[]`,
		`"rollouts":[]`, `"entitlements":[]`, `"seat_assignments":[]`, `"mirror_keys":[]`, `"metadata":{}`, `"previous":""`} {
		if !strings.Contains(b, want) {
			t.Errorf("payload lacks %s: %s", want, b)
		}
	}
	if got, want := m.ExpiresAt.Sub(m.CreatedAt), buildOpts.TTL; got != want {
		t.Errorf("expires_at - created_at = %v, want %v", got, want)
	}
}

func TestBuild_SameInputSameBytes(t *testing.T) {
	a := snapshot.Build(visibilityInput(), buildOpts)
	o := buildOpts
	o.SnapshotID, o.Now = "snp_2", o.Now.Add(time.Minute)
	b := snapshot.Build(visibilityInput(), o)
	b.SnapshotID, b.CreatedAt, b.ExpiresAt = a.SnapshotID, a.CreatedAt, a.ExpiresAt
	if x, y := encode(t, a), encode(t, b); string(x) != string(y) {
		t.Errorf("same input gives different bytes:\n%s\n%s", x, y)
	}
}
