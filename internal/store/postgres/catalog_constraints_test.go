package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// TestCatalog_DatabaseEnforces: migration 6 makes the database refuse,
// whoever writes, what the seed's model forbids of releases, artifacts,
// leases, policies, blocked versions, rollouts, snapshots and mirrors: a
// reference to nothing, a second row where a unique key allows one, and
// a change the seed's rules forbid. The store's own rows commit, and its
// own writes (a revocation, a renewal, a release of a lease, a deleted
// blocked version) keep passing. Each case runs on the state the ones
// before it left.
func TestCatalog_DatabaseEnforces(t *testing.T) {
	ctx, db, tn := openWithTenant(t)
	other := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "other"}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "widget"}
	for _, err := range []error{db.CreateTenant(ctx, other), db.CreateProduct(ctx, p)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ents := map[string]*catalog.Entitlement{}
	for _, tenant := range []string{tn.TenantID, other.TenantID} {
		e := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tenant, ProductID: p.ProductID,
			Policy: json.RawMessage(`{"max_seats":5}`), StartsAt: t0}
		if err := db.CreateEntitlement(ctx, e); err != nil {
			t.Fatal(err)
		}
		ents[tenant] = e
	}
	rel := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "1.0.0",
		Status: catalog.ReleaseActive}
	if err := db.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	stored, err := db.Release(ctx, rel.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}

	raw := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	revoked := *stored
	revoked.Status, revoked.RevokedAt = catalog.ReleaseRevoked, &t0
	edited := *stored
	edited.Version = "1.0.1"
	unrevoked := revoked
	unrevoked.Status, unrevoked.RevokedAt = catalog.ReleaseActive, nil
	release := func(id, product, channel, version string) *catalog.Release {
		return &catalog.Release{ReleaseID: id, ProductID: product, Channel: channel, Version: version, PublishedAt: t0, Status: catalog.ReleaseActive}
	}
	beta := catalog.NewID(catalog.PrefixRelease)

	art := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: "MANAGED", SHA256: "aa", SizeBytes: 1,
		StoragePath: "a", Status: "PENDING", CreatedAt: t0}
	verified := *art
	verified.Status, verified.VerifiedAt = catalog.ArtifactVerified, &t0
	swapped := verified
	swapped.SHA256 = "bb"
	ra := func(id, release, artifact string) *catalog.ReleaseArtifact {
		return &catalog.ReleaseArtifact{ReleaseArtifactID: id, ReleaseID: release, ArtifactID: artifact, Platform: "linux", Arch: "x64", InstallerType: "zip"}
	}
	ra1, ra2 := catalog.NewID(catalog.PrefixReleaseArtifact), catalog.NewID(catalog.PrefixReleaseArtifact)
	ra1Moved := ra(ra1, rel.ReleaseID, art.ArtifactID)
	ra1Moved.Arch = "arm64"

	lease := func(id, ent, tenant, subject string) *catalog.Lease {
		return &catalog.Lease{LeaseID: id, EntitlementID: ent, TenantID: tenant, SubjectType: catalog.SubjectMachine, SubjectID: subject,
			IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), TokenHash: "cc"}
	}
	l1 := catalog.NewID(catalog.PrefixLease)
	mine := ents[tn.TenantID].EntitlementID
	renewed := lease(l1, mine, tn.TenantID, "m1")
	renewed.IssuedAt, renewed.ExpiresAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
	released := *renewed
	released.ReleasedAt = &t0
	afterRelease := released
	afterRelease.ExpiresAt = t0.Add(3 * time.Hour)

	pol := func(id, tenant, product string, version int) *catalog.Policy {
		return &catalog.Policy{PolicyID: id, TenantID: tenant, ProductID: product, Channel: "stable", Action: catalog.ActionNotify,
			Conditions: json.RawMessage(`{}`), Version: version, CreatedAt: t0, UpdatedAt: t0}
	}
	pol1 := catalog.NewID(catalog.PrefixPolicy)
	blocked := func(id, version string) *catalog.BlockedVersion {
		return &catalog.BlockedVersion{BlocklistID: id, TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: version, CreatedAt: t0}
	}
	blk1, blk2 := catalog.NewID(catalog.PrefixBlocked), catalog.NewID(catalog.PrefixBlocked)
	rollout := func(id, release, channel string) *catalog.Rollout {
		return &catalog.Rollout{RolloutID: id, ProductID: p.ProductID, Channel: channel, ReleaseID: release, Percentage: 10, Status: "active",
			CreatedAt: t0, UpdatedAt: t0}
	}
	snap := func(id, tenant string, seq int64) *catalog.Snapshot {
		return &catalog.Snapshot{SnapshotID: id, TenantID: tenant, Sequence: seq, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Hash: "dd"}
	}
	snp1 := catalog.NewID(catalog.PrefixSnapshot)
	snp1Edited := snap(snp1, tn.TenantID, 100)
	snp1Edited.Hash = "ee"

	put := func(bucket, id string, v any) func() string {
		return func() string { return behind(t, db.pool, putRow, bucket, []byte(id), raw(v)) }
	}
	sql := func(q string, args ...any) func() string {
		return func() string { return behind(t, db.pool, q, args...) }
	}
	policyVersion := pol1 + "\x00" + fmt.Sprintf("%010d", 1) // store/kv policyVersionKey
	for _, c := range []struct {
		name string
		do   func() string
		want string
	}{
		// Releases.
		{"a release of an unknown product", put("releases", beta, release(beta, "prd_nosuchproduct", "beta", "1.0.0")), fk},
		{"a second release of one product, channel and version", put("releases", beta, release(beta, p.ProductID, "stable", "1.0.0")), unique},
		{"the same version in another channel", put("releases", beta, release(beta, p.ProductID, "beta", "1.0.0")), ok},
		{"a release whose key is not its id", put("releases", "rel_someotherid", release(catalog.NewID(catalog.PrefixRelease), p.ProductID, "beta", "2.0.0")), rule},
		{"a release edited", put("releases", rel.ReleaseID, &edited), rule},
		{"a release revoked", put("releases", rel.ReleaseID, &revoked), ok},
		{"a revoked release made active again", put("releases", rel.ReleaseID, &unrevoked), rule},
		{"a release deleted", sql("DELETE FROM outpost_kv WHERE bucket = 'releases'"), rule},
		// Artifacts and what releases ship.
		{"an artifact", put("artifacts", art.ArtifactID, art), ok},
		{"an artifact verified", put("artifacts", art.ArtifactID, &verified), ok},
		{"an artifact's sha256 changed", put("artifacts", art.ArtifactID, &swapped), rule},
		{"a release artifact of an unknown artifact", put("release_artifacts", ra1, ra(ra1, rel.ReleaseID, "art_nosuchartifact")), fk},
		{"a release artifact of an unknown release", put("release_artifacts", ra1, ra(ra1, "rel_nosuchrelease", art.ArtifactID)), fk},
		{"a release artifact", put("release_artifacts", ra1, ra(ra1, rel.ReleaseID, art.ArtifactID)), ok},
		{"a second artifact for one release and target", put("release_artifacts", ra2, ra(ra2, rel.ReleaseID, art.ArtifactID)), unique},
		{"a release artifact edited", put("release_artifacts", ra1, ra1Moved), rule},
		// Leases.
		{"a lease of an unknown entitlement", put("leases", l1, lease(l1, "ent_nosuchentitlement", tn.TenantID, "m1")), fk},
		{"a lease of another tenant's entitlement", put("leases", l1, lease(l1, ents[other.TenantID].EntitlementID, tn.TenantID, "m1")), fk},
		{"a lease", put("leases", l1, lease(l1, mine, tn.TenantID, "m1")), ok},
		{"a lease moved to another subject", put("leases", l1, lease(l1, mine, tn.TenantID, "m2")), rule},
		{"a lease renewed", put("leases", l1, renewed), ok},
		{"a lease released", put("leases", l1, &released), ok},
		{"a released lease changed", put("leases", l1, &afterRelease), rule},
		{"a lease deleted", sql("DELETE FROM outpost_kv WHERE bucket = 'leases'"), rule},
		// Policies and their history.
		{"a policy of an unknown tenant", put("policies", pol1, pol(pol1, "ten_nosuchtenant", p.ProductID, 1)), fk},
		{"a policy of an unknown product", put("policies", pol1, pol(pol1, tn.TenantID, "prd_nosuchproduct", 1)), fk},
		{"a policy", put("policies", pol1, pol(pol1, tn.TenantID, p.ProductID, 1)), ok},
		{"a policy version", put("policy_versions", policyVersion, pol(pol1, tn.TenantID, p.ProductID, 1)), ok},
		{"a policy version rewritten", put("policy_versions", policyVersion, pol(pol1, tn.TenantID, p.ProductID, 2)), rule},
		{"a policy version deleted", sql("DELETE FROM outpost_kv WHERE bucket = 'policy_versions'"), rule},
		// Blocked versions.
		{"a blocked version", put("blocked_versions", blk1, blocked(blk1, "1.0.0")), ok},
		{"a version blocked twice", put("blocked_versions", blk2, blocked(blk2, "1.0.0")), unique},
		{"a blocked version deleted", sql("DELETE FROM outpost_kv WHERE bucket = 'blocked_versions' AND k = $1", []byte(blk1)), ok},
		{"then blocked again", put("blocked_versions", blk2, blocked(blk2, "1.0.0")), ok},
		// Rollouts.
		{"a rollout of a release of another channel", put("rollouts", "rol_a", rollout("rol_a", rel.ReleaseID, "beta")), fk},
		{"a rollout of an unknown release", put("rollouts", "rol_a", rollout("rol_a", "rel_nosuchrelease", "stable")), fk},
		{"a rollout", put("rollouts", "rol_a", rollout("rol_a", rel.ReleaseID, "stable")), ok},
		{"a rollout moved to a release of another channel", put("rollouts", "rol_a", rollout("rol_a", beta, "stable")), fk},
		// Snapshots and mirrors.
		{"a snapshot of an unknown tenant", put("snapshots", snp1, snap(snp1, "ten_nosuchtenant", 100)), fk},
		{"a snapshot", put("snapshots", snp1, snap(snp1, tn.TenantID, 100)), ok},
		{"a second snapshot with its sequence", put("snapshots", "snp_b", snap("snp_b", tn.TenantID, 100)), unique},
		{"another tenant's snapshot with that sequence", put("snapshots", "snp_b", snap("snp_b", other.TenantID, 100)), ok},
		{"a snapshot edited", put("snapshots", snp1, snp1Edited), rule},
		{"a snapshot pruned", sql("DELETE FROM outpost_kv WHERE bucket = 'snapshots' AND k = $1", []byte(snp1)), ok},
		{"a mirror of an unknown tenant", put("mirrors", "mir_a", &catalog.Mirror{MirrorID: "mir_a", TenantID: "ten_nosuchtenant"}), fk},
		{"a mirror", put("mirrors", "mir_a", &catalog.Mirror{MirrorID: "mir_a", TenantID: tn.TenantID}), ok},
		{"a mirror moved to another tenant", put("mirrors", "mir_a", &catalog.Mirror{MirrorID: "mir_a", TenantID: other.TenantID}), rule},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.do(); got != c.want {
				t.Fatalf("SQLSTATE = %q, want %q", got, c.want)
			}
		})
	}

	// The store's own writes pass the rules: a release revoked, a lease
	// issued, renewed and released, a blocked version deleted.
	t.Run("the store's writes", func(t *testing.T) {
		r2 := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "2.0.0",
			Status: catalog.ReleaseActive}
		if err := db.CreateRelease(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RevokeRelease(ctx, r2.ReleaseID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		l := &catalog.Lease{EntitlementID: mine, SubjectType: catalog.SubjectMachine, SubjectID: "m9", IssuedAt: now, ExpiresAt: now.Add(time.Hour), TokenHash: fmt.Sprintf("%064x", 9)}
		got, err := db.AcquireLease(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		again := *l
		again.IssuedAt, again.ExpiresAt = now.Add(time.Minute), now.Add(2*time.Hour)
		if _, err := db.AcquireLease(ctx, &again); err != nil {
			t.Fatalf("renew: %v", err)
		}
		if _, err := db.ReleaseLease(ctx, got.LeaseID, "", true, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteBlockedVersion(ctx, tn.TenantID, blk2); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMigrate_CatalogConstraintsBackfill: migration 6 projects the rows
// already stored, so the rules hold for them too, and a database whose
// rows break one stops at it, as it was.
func TestMigrate_CatalogConstraintsBackfill(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	base := [][3]string{
		{"tenants", "ten_a", `{"tenant_id":"ten_a","name":"a"}`},
		{"products", "prd_a", `{"product_id":"prd_a","name":"a"}`},
		{"entitlements", "ent_a", `{"entitlement_id":"ent_a","tenant_id":"ten_a","product_id":"prd_a","policy_json":{},"starts_at":"2026-01-01T00:00:00Z","ends_at":null}`},
		{"releases", "rel_a", `{"release_id":"rel_a","product_id":"prd_a","channel":"stable","version":"1.0.0","status":"ACTIVE"}`},
		{"artifacts", "art_a", `{"artifact_id":"art_a","sha256":"aa","status":"VERIFIED"}`},
		{"release_artifacts", "rla_a", `{"release_artifact_id":"rla_a","release_id":"rel_a","artifact_id":"art_a","platform":"linux","arch":"x64","installer_type":"zip"}`},
		{"leases", "lea_a", `{"lease_id":"lea_a","entitlement_id":"ent_a","tenant_id":"ten_a","subject_type":"machine","subject_id":"m"}`},
		{"rollouts", "rol_a", `{"rollout_id":"rol_a","product_id":"prd_a","channel":"stable","release_id":"rel_a"}`},
		{"snapshots", "snp_a", `{"snapshot_id":"snp_a","tenant_id":"ten_a","sequence":1}`},
		// Rows of other buckets are no JSON, nor even UTF-8: the
		// migration must never parse them.
		{"lease_counts", "ent_a", "\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff"},
		{"idempotency", "key-a", "\xfe\xed sealed \x00 answer"},
	}
	for _, c := range []struct {
		name    string
		extra   [][3]string
		wantErr string
	}{
		{"rows that keep the rules", nil, ""},
		{"a release of a product that does not exist", [][3]string{
			{"releases", "rel_b", `{"release_id":"rel_b","product_id":"prd_gone","channel":"stable","version":"1.0.0"}`},
		}, "outpost_release_ref"},
		{"two releases of one version", [][3]string{
			{"releases", "rel_b", `{"release_id":"rel_b","product_id":"prd_a","channel":"stable","version":"1.0.0"}`},
		}, "outpost_releases_one_version"},
		{"a lease of another tenant's entitlement", [][3]string{
			{"tenants", "ten_b", `{"tenant_id":"ten_b","name":"b"}`},
			{"leases", "lea_b", `{"lease_id":"lea_b","entitlement_id":"ent_a","tenant_id":"ten_b","subject_type":"machine","subject_id":"m"}`},
		}, "outpost_leases_entitlement"},
		{"a row whose key is not its id", [][3]string{
			{"rollouts", "rol_b", `{"rollout_id":"rol_c","product_id":"prd_a","channel":"stable","release_id":"rel_a"}`},
		}, "does not hold its own id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, pool, conn := schemaAt(t, url, 5)
			for _, r := range append(base[:len(base):len(base)], c.extra...) {
				if _, err := conn.Exec(ctx, putRow, r[0], []byte(r[1]), []byte(r[2])); err != nil {
					t.Fatalf("%s %s: %v", r[0], r[1], err)
				}
			}
			err := migrateTo(ctx, pool, name, migrations)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("migrate: %v, want %s named", err, c.wantErr)
				}
				if got := applied(t, conn); len(got) != 5 {
					t.Fatalf("schema_migrations = %v after a failed migration, want 1..5", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for table, want := range map[string]int{"outpost_release_ref": 1, "outpost_artifact_ref": 1, "outpost_release_artifact_ref": 1,
				"outpost_lease_ref": 1, "outpost_rollout_ref": 1, "outpost_snapshot_ref": 1} {
				var n int
				if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != want {
					t.Errorf("%s holds %d rows (%v), want %d", table, n, err, want)
				}
			}
			if got := behind(t, pool, putRow, "releases", []byte("rel_c"),
				[]byte(`{"release_id":"rel_c","product_id":"prd_a","channel":"stable","version":"1.0.0"}`)); got != "23505" {
				t.Fatalf("a second release of a backfilled version: SQLSTATE %q, want 23505", got)
			}
		})
	}
}
