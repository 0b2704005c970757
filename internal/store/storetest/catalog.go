package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var catalogCases = []testCase{
	{"Tokens", testTokens},
	{"Tenants", testTenants},
	{"Products", testProducts},
	{"Artifacts", testArtifacts},
	{"Releases", testReleases},
	{"ReleaseArtifacts", testReleaseArtifacts},
	{"Pagination", testPagination},
	{"NotFound", testNotFound},
}

func testTokens(t *testing.T, f *fx) {
	tn := f.tenant()
	admin := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleAdmin, Hash: randHash(), Name: "first"}
	f.mutation("token.created", "", func() error { return f.s.CreateToken(f.ctx, admin) })
	ten := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, TenantID: tn.TenantID, Hash: randHash()}
	f.mutation("token.created", tn.TenantID, func() error { return f.s.CreateToken(f.ctx, ten) })

	t.Run("by hash", func(t *testing.T) {
		got, err := f.s.TokenByHash(f.ctx, ten.Hash)
		must(t, err)
		if got.TokenID != ten.TokenID || got.Role != catalog.RoleTenant || got.TenantID != tn.TenantID || got.Hash != ten.Hash {
			t.Fatalf("TokenByHash = %+v, want %+v", got, ten)
		}
		_, err = f.s.TokenByHash(f.ctx, randHash())
		wantCode(t, err, catalog.ENOTFOUND)
	})
	t.Run("payload has no hash", func(t *testing.T) {
		evs := f.eventsAfter(0)
		for _, ev := range evs {
			if ev.EventType == "token.created" && json.Valid(ev.Payload) && strings.Contains(string(ev.Payload), ten.Hash) {
				t.Fatalf("token.created payload carries the token hash: %s", ev.Payload)
			}
		}
	})
	t.Run("list", func(t *testing.T) {
		all, next, err := f.s.Tokens(f.ctx, "", store.Page{})
		must(t, err)
		if len(all) != 2 || next != "" {
			t.Fatalf("Tokens(all) = %d tokens, next %q, want 2, \"\"", len(all), next)
		}
		for _, tok := range all {
			if tok.Hash == "" {
				t.Errorf("token %s listed without its hash", tok.TokenID)
			}
		}
		mine, _, err := f.s.Tokens(f.ctx, tn.TenantID, store.Page{})
		must(t, err)
		if len(mine) != 1 || mine[0].TokenID != ten.TokenID {
			t.Fatalf("Tokens(%s) = %v, want only %s", tn.TenantID, mine, ten.TokenID)
		}
		first, next, err := f.s.Tokens(f.ctx, "", store.Page{Limit: 1})
		must(t, err)
		rest, last, err := f.s.Tokens(f.ctx, "", store.Page{Limit: 1, Cursor: next})
		must(t, err)
		if len(first) != 1 || len(rest) != 1 || first[0].TokenID == rest[0].TokenID || last != "" {
			t.Fatalf("pages = %v (next %q), %v (next %q); want two different tokens, then the end", first, next, rest, last)
		}
	})
	t.Run("touch", func(t *testing.T) {
		at := f.now.Add(time.Hour)
		must(t, f.s.TouchToken(f.ctx, admin.TokenID, at))
		got, err := f.s.Token(f.ctx, admin.TokenID)
		must(t, err)
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) {
			t.Fatalf("last_used_at = %v, want %v", got.LastUsedAt, at)
		}
		must(t, f.s.TouchToken(f.ctx, admin.TokenID, at.Add(30*time.Second)))
		got, _ = f.s.Token(f.ctx, admin.TokenID)
		if !got.LastUsedAt.Equal(at) {
			t.Fatalf("a touch within a minute moved last_used_at to %v, want %v kept", got.LastUsedAt, at)
		}
		must(t, f.s.TouchToken(f.ctx, admin.TokenID, at.Add(2*time.Minute)))
		got, _ = f.s.Token(f.ctx, admin.TokenID)
		if !got.LastUsedAt.Equal(at.Add(2 * time.Minute)) {
			t.Fatalf("last_used_at = %v after a touch two minutes later, want %v", got.LastUsedAt, at.Add(2*time.Minute))
		}
	})
	t.Run("revoke", func(t *testing.T) {
		extra := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenantRO, TenantID: tn.TenantID, Hash: randHash()}
		f.mutation("token.created", tn.TenantID, func() error { return f.s.CreateToken(f.ctx, extra) })
		var got *catalog.Token
		f.mutation("token.revoked", tn.TenantID, func() (err error) {
			got, err = f.s.RevokeToken(f.ctx, extra.TokenID, "tok_revoker")
			return err
		})
		if got.RevokedAt == nil || got.RevokedBy != "tok_revoker" {
			t.Fatalf("revoked token = %+v, want revoked_at and revoked_by set", got)
		}
		_, err := f.s.TokenByHash(f.ctx, extra.Hash)
		wantCode(t, err, catalog.ENOTFOUND)
		again, err := f.s.RevokeToken(f.ctx, extra.TokenID, "tok_other")
		must(t, err)
		if again.RevokedBy != "tok_revoker" || !again.RevokedAt.Equal(*got.RevokedAt) {
			t.Fatalf("revoking twice changed the record: %+v", again)
		}
		_, err = f.s.RevokeToken(f.ctx, catalog.NewID(catalog.PrefixToken), "x")
		wantCode(t, err, catalog.ENOTFOUND)
	})
	t.Run("refused", func(t *testing.T) {
		cases := []struct {
			name string
			tok  catalog.Token
			code string
		}{
			{"same hash", catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleAdmin, Hash: admin.Hash}, catalog.ECONFLICT},
			{"same id", catalog.Token{TokenID: admin.TokenID, Role: catalog.RoleAdmin, Hash: randHash()}, catalog.ECONFLICT},
			{"bad role", catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: "root", Hash: randHash()}, catalog.EINVALID},
			{"bad hash", catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleAdmin, Hash: "abc"}, catalog.EINVALID},
			{"tenant token without tenant", catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, Hash: randHash()}, catalog.EINVALID},
			{"unknown tenant", catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: catalog.RoleTenant, TenantID: "ten_nope", Hash: randHash()}, catalog.ENOTFOUND},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tok := tc.tok
				f.refused(tc.code, func() error { return f.s.CreateToken(f.ctx, &tok) })
			})
		}
	})
}

func testTenants(t *testing.T, f *fx) {
	tn := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Acme", Metadata: json.RawMessage(`{"b": 1, "a": 2}`)}
	f.mutation("tenant.created", tn.TenantID, func() error { return f.s.CreateTenant(f.ctx, tn) })

	t.Run("get", func(t *testing.T) {
		got, err := f.s.Tenant(f.ctx, tn.TenantID)
		must(t, err)
		if got.Name != "Acme" || got.Status != catalog.TenantActive || got.CreatedAt.IsZero() {
			t.Fatalf("Tenant = %+v, want name Acme, status active, created_at set", got)
		}
		var md map[string]int
		must(t, json.Unmarshal(got.Metadata, &md))
		if md["a"] != 2 || md["b"] != 1 {
			t.Fatalf("metadata = %s, want a=2 b=1", got.Metadata)
		}
	})
	t.Run("duplicate id", func(t *testing.T) {
		f.refused(catalog.ECONFLICT, func() error {
			return f.s.CreateTenant(f.ctx, &catalog.Tenant{TenantID: tn.TenantID, Name: "Again"})
		})
	})
	t.Run("invalid", func(t *testing.T) {
		for _, bad := range []catalog.Tenant{
			{TenantID: catalog.NewID(catalog.PrefixTenant), Name: ""},
			{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "x", Status: "gone"},
			{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "x", Metadata: json.RawMessage(`[1]`)},
			{TenantID: "", Name: "x"},
		} {
			f.refused(catalog.EINVALID, func() error { return f.s.CreateTenant(f.ctx, &bad) })
		}
	})
	t.Run("update", func(t *testing.T) {
		var got *catalog.Tenant
		f.mutation("tenant.updated", tn.TenantID, func() (err error) {
			got, err = f.s.UpdateTenant(f.ctx, tn.TenantID, func(t *catalog.Tenant) error {
				t.Status, t.Name = catalog.TenantSuspended, "Acme Corp"
				return nil
			})
			return err
		})
		if got.Status != catalog.TenantSuspended || got.Name != "Acme Corp" {
			t.Fatalf("UpdateTenant = %+v", got)
		}
		stored, err := f.s.Tenant(f.ctx, tn.TenantID)
		must(t, err)
		if stored.Status != catalog.TenantSuspended || stored.Name != "Acme Corp" {
			t.Fatalf("stored after update = %+v", stored)
		}
	})
	t.Run("update refused", func(t *testing.T) {
		cases := []struct {
			name string
			fn   func(*catalog.Tenant) error
			code string
		}{
			{"tenant_id", func(t *catalog.Tenant) error { t.TenantID = "ten_other"; return nil }, catalog.EINVALID},
			{"created_at", func(t *catalog.Tenant) error { t.CreatedAt = t.CreatedAt.Add(time.Hour); return nil }, catalog.EINVALID},
			{"status", func(t *catalog.Tenant) error { t.Status = "gone"; return nil }, catalog.EINVALID},
			{"fn error", func(t *catalog.Tenant) error { return catalog.Errorf(catalog.ECONFLICT, "no") }, catalog.ECONFLICT},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { _, err := f.s.UpdateTenant(f.ctx, tn.TenantID, tc.fn); return err })
			})
		}
		got, err := f.s.Tenant(f.ctx, tn.TenantID)
		must(t, err)
		if got.TenantID != tn.TenantID || got.Status != catalog.TenantSuspended {
			t.Fatalf("refused updates changed the tenant: %+v", got)
		}
		f.refused(catalog.ENOTFOUND, func() error {
			_, err := f.s.UpdateTenant(f.ctx, "ten_nope", func(*catalog.Tenant) error { return nil })
			return err
		})
	})
}

func testProducts(t *testing.T, f *fx) {
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Widget"}
	f.mutation("product.created", "", func() error { return f.s.CreateProduct(f.ctx, p) })
	got, err := f.s.Product(f.ctx, p.ProductID)
	must(t, err)
	if got.Distribution != catalog.DistributionLicensed || got.Name != "Widget" {
		t.Fatalf("Product = %+v, want licensed Widget", got)
	}
	open := f.product(catalog.DistributionOpen)
	if got, _ := f.s.Product(f.ctx, open.ProductID); got == nil || got.Distribution != catalog.DistributionOpen {
		t.Fatalf("open product = %+v", got)
	}
	f.refused(catalog.EINVALID, func() error {
		return f.s.CreateProduct(f.ctx, &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "x", Distribution: "free"})
	})
	f.refused(catalog.ECONFLICT, func() error {
		return f.s.CreateProduct(f.ctx, &catalog.Product{ProductID: p.ProductID, Name: "x"})
	})
}

func testArtifacts(t *testing.T, f *fx) {
	a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceExternal, SHA256: randHash(), SizeBytes: 10, ExternalURL: "https://example.com/a.zip", Status: catalog.ArtifactPending}
	f.mutation("artifact.created", "", func() error { return f.s.CreateArtifact(f.ctx, a) })
	got, err := f.s.Artifact(f.ctx, a.ArtifactID)
	must(t, err)
	if got.SHA256 != a.SHA256 || got.ExternalURL != a.ExternalURL || got.Status != catalog.ArtifactPending {
		t.Fatalf("Artifact = %+v", got)
	}
	at := f.now
	var upd *catalog.Artifact
	f.mutation("artifact.verified", "", func() (err error) {
		upd, err = f.s.SetArtifactStatus(f.ctx, a.ArtifactID, catalog.ArtifactVerified, &at)
		return err
	})
	if upd.Status != catalog.ArtifactVerified || upd.VerifiedAt == nil || !upd.VerifiedAt.Equal(at) {
		t.Fatalf("SetArtifactStatus = %+v", upd)
	}
	f.mutation("artifact.failed", "", func() error {
		_, err := f.s.SetArtifactStatus(f.ctx, a.ArtifactID, catalog.ArtifactFailed, &at)
		return err
	})
	if got, _ := f.s.Artifact(f.ctx, a.ArtifactID); got.Status != catalog.ArtifactFailed {
		t.Fatalf("status after failed = %s", got.Status)
	}
	f.refused(catalog.EINVALID, func() error {
		_, err := f.s.SetArtifactStatus(f.ctx, a.ArtifactID, "MAYBE", nil)
		return err
	})
	f.refused(catalog.ENOTFOUND, func() error {
		_, err := f.s.SetArtifactStatus(f.ctx, "art_nope", catalog.ArtifactVerified, &at)
		return err
	})
	f.refused(catalog.EINVALID, func() error {
		return f.s.CreateArtifact(f.ctx, &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: "FTP"})
	})
	f.refused(catalog.EINVALID, func() error {
		return f.s.CreateArtifact(f.ctx, &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: "XYZ"})
	})
}

func testReleases(t *testing.T, f *fx) {
	p := f.product("")
	r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "1.0.0"}
	f.mutation("release.created", "", func() error { return f.s.CreateRelease(f.ctx, r) })
	got, err := f.s.Release(f.ctx, r.ReleaseID)
	must(t, err)
	if got.Status != catalog.ReleaseActive || got.PublishedAt.IsZero() || got.RevokedAt != nil || got.Version != "1.0.0" {
		t.Fatalf("Release = %+v", got)
	}

	t.Run("create refused", func(t *testing.T) {
		cases := []struct {
			name string
			rel  catalog.Release
			code string
		}{
			{"same product channel version", catalog.Release{ProductID: p.ProductID, Channel: "stable", Version: "1.0.0"}, catalog.ECONFLICT},
			{"unknown product", catalog.Release{ProductID: "prd_nope", Channel: "stable", Version: "1.0.1"}, catalog.ENOTFOUND},
			{"bad version", catalog.Release{ProductID: p.ProductID, Channel: "stable", Version: "v1"}, catalog.EINVALID},
			{"bad channel", catalog.Release{ProductID: p.ProductID, Channel: "Stable!", Version: "1.0.2"}, catalog.EINVALID},
			{"created revoked", catalog.Release{ProductID: p.ProductID, Channel: "stable", Version: "1.0.3", Status: catalog.ReleaseRevoked}, catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rel := tc.rel
				rel.ReleaseID = catalog.NewID(catalog.PrefixRelease)
				f.refused(tc.code, func() error { return f.s.CreateRelease(f.ctx, &rel) })
			})
		}
		if err := f.s.CreateRelease(f.ctx, &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: "prd_nope", Channel: "stable", Version: "1.0.1"}); err == nil || !strings.Contains(err.Error(), "prd_nope") {
			t.Fatalf("unknown product error %v does not name the product", err)
		}
	})
	t.Run("same version other channel", func(t *testing.T) {
		f.release(p.ProductID, "beta", "1.0.0")
	})
	t.Run("revoke one-way", func(t *testing.T) {
		at := f.now.Add(time.Minute)
		var rev *catalog.Release
		f.mutation("release.revoked", "", func() (err error) {
			rev, err = f.s.RevokeRelease(f.ctx, r.ReleaseID, at)
			return err
		})
		if rev.Status != catalog.ReleaseRevoked || rev.RevokedAt == nil || !rev.RevokedAt.Equal(at) {
			t.Fatalf("RevokeRelease = %+v", rev)
		}
		stored, err := f.s.Release(f.ctx, r.ReleaseID)
		must(t, err)
		if stored.Status != catalog.ReleaseRevoked {
			t.Fatalf("stored status %s after revoke", stored.Status)
		}
		f.refused(catalog.ECONFLICT, func() error { _, err := f.s.RevokeRelease(f.ctx, r.ReleaseID, at); return err })
		f.refused(catalog.ENOTFOUND, func() error { _, err := f.s.RevokeRelease(f.ctx, "rel_nope", at); return err })
		// A revoked version stays taken: releases are append-only.
		f.refused(catalog.ECONFLICT, func() error {
			return f.s.CreateRelease(f.ctx, &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "1.0.0"})
		})
	})
	t.Run("list by product", func(t *testing.T) {
		other := f.product("")
		f.release(other.ProductID, "stable", "9.9.9")
		rels, next, err := f.s.Releases(f.ctx, p.ProductID, store.Page{})
		must(t, err)
		if len(rels) != 2 || next != "" {
			t.Fatalf("Releases = %d items, next %q; want 2 and no next", len(rels), next)
		}
		for _, rel := range rels {
			if rel.ProductID != p.ProductID {
				t.Fatalf("Releases of %s returned %s of %s", p.ProductID, rel.ReleaseID, rel.ProductID)
			}
		}
	})
}

func testReleaseArtifacts(t *testing.T, f *fx) {
	p := f.product("")
	r := f.release(p.ProductID, "stable", "1.0.0")
	verified := f.artifact(catalog.ArtifactVerified)
	ra := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: verified.ArtifactID, Platform: "windows", Arch: "x64", InstallerType: "msi", RequiresAdmin: true}
	f.mutation("release.artifact_attached", "", func() error { return f.s.AttachArtifact(f.ctx, ra) })

	t.Run("refused", func(t *testing.T) {
		pending := f.artifact(catalog.ArtifactPending)
		failed := f.artifact(catalog.ArtifactFailed)
		revoked := f.release(p.ProductID, "stable", "0.9.0")
		_, err := f.s.RevokeRelease(f.ctx, revoked.ReleaseID, f.now)
		must(t, err)
		cases := []struct {
			name                      string
			rel, art, platform, instl string
			code                      string
		}{
			{"same platform arch installer", r.ReleaseID, f.artifact(catalog.ArtifactVerified).ArtifactID, "windows", "msi", catalog.ECONFLICT},
			{"pending artifact", r.ReleaseID, pending.ArtifactID, "linux", "zip", catalog.ECONFLICT},
			{"failed artifact", r.ReleaseID, failed.ArtifactID, "linux", "zip", catalog.ECONFLICT},
			{"revoked release", revoked.ReleaseID, verified.ArtifactID, "linux", "zip", catalog.ECONFLICT},
			{"unknown release", "rel_nope", verified.ArtifactID, "linux", "zip", catalog.ENOTFOUND},
			{"unknown artifact", r.ReleaseID, "art_nope", "linux", "zip", catalog.ENOTFOUND},
			{"bad platform", r.ReleaseID, verified.ArtifactID, "beos", "zip", catalog.EINVALID},
			{"bad installer", r.ReleaseID, verified.ArtifactID, "linux", "floppy", catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error {
					return f.s.AttachArtifact(f.ctx, &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: tc.rel, ArtifactID: tc.art, Platform: tc.platform, Arch: "x64", InstallerType: tc.instl})
				})
			})
		}
	})
	t.Run("other installer same platform", func(t *testing.T) {
		second := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: verified.ArtifactID, Platform: "windows", Arch: "x64", InstallerType: "msix"}
		must(t, f.s.AttachArtifact(f.ctx, second))
		got, err := f.s.ReleaseArtifacts(f.ctx, r.ReleaseID)
		must(t, err)
		if len(got) != 2 || got[0].ReleaseArtifactID != ra.ReleaseArtifactID || got[1].ReleaseArtifactID != second.ReleaseArtifactID || !got[0].RequiresAdmin {
			t.Fatalf("ReleaseArtifacts = %+v", got)
		}
	})
	t.Run("revoked release keeps its artifacts", func(t *testing.T) {
		_, err := f.s.RevokeRelease(f.ctx, r.ReleaseID, f.now)
		must(t, err)
		got, err := f.s.ReleaseArtifacts(f.ctx, r.ReleaseID)
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("ReleaseArtifacts after revoke = %d, want 2", len(got))
		}
	})
}

// testPagination walks every list with several page sizes.
func testPagination(t *testing.T, f *fx) {
	const n = 23
	tn := f.tenant()
	p := f.product("")
	ent := f.entitlement(tn.TenantID, p.ProductID, entPolicy(n+5, catalog.SeatsExplicit))
	var tenants, products, releases, policies, blocked, rollouts, seats, mirrors, snapshots []string
	tenants = append(tenants, tn.TenantID)
	products = append(products, p.ProductID)
	for i := range n {
		tenants = append(tenants, f.tenant().TenantID)
		products = append(products, f.product("").ProductID)
		r := f.release(p.ProductID, "stable", fmt.Sprintf("1.%d.0", i))
		releases = append(releases, r.ReleaseID)
		pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionNotify, Priority: i}
		must(t, f.s.CreatePolicy(f.ctx, pol))
		policies = append(policies, pol.PolicyID)
		b := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: fmt.Sprintf("1.%d.0", i)}
		must(t, f.s.CreateBlockedVersion(f.ctx, b))
		blocked = append(blocked, b.BlocklistID)
		ro := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID, Percentage: 10, Status: catalog.RolloutActive}
		must(t, f.s.CreateRollout(f.ctx, ro))
		rollouts = append(rollouts, ro.RolloutID)
		st := f.seat(ent.EntitlementID, fmt.Sprintf("user-%d", i))
		must(t, f.s.AssignSeat(f.ctx, st))
		seats = append(seats, st.SeatAssignmentID)
		m := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, Name: "m", AllowedChannels: []string{"stable"}, CredentialHash: randHash()}
		must(t, f.s.CreateMirror(f.ctx, m))
		mirrors = append(mirrors, m.MirrorID)
		s, err := f.s.CreateSnapshot(f.ctx, tn.TenantID, fakeBuild(nil))
		must(t, err)
		snapshots = append(snapshots, s.SnapshotID)
	}
	for _, limit := range []int{1, 5, n, n + 1, 1000} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			equalIDs(t, "tenants", walk(t, limit, func(pg store.Page) ([]*catalog.Tenant, string, error) { return f.s.Tenants(f.ctx, pg) }, func(x *catalog.Tenant) string { return x.TenantID }), tenants)
			equalIDs(t, "products", walk(t, limit, func(pg store.Page) ([]*catalog.Product, string, error) { return f.s.Products(f.ctx, pg) }, func(x *catalog.Product) string { return x.ProductID }), products)
			equalIDs(t, "releases", walk(t, limit, func(pg store.Page) ([]*catalog.Release, string, error) { return f.s.Releases(f.ctx, p.ProductID, pg) }, func(x *catalog.Release) string { return x.ReleaseID }), releases)
			equalIDs(t, "policies", walk(t, limit, func(pg store.Page) ([]*catalog.Policy, string, error) { return f.s.Policies(f.ctx, tn.TenantID, pg) }, func(x *catalog.Policy) string { return x.PolicyID }), policies)
			equalIDs(t, "blocked", walk(t, limit, func(pg store.Page) ([]*catalog.BlockedVersion, string, error) {
				return f.s.BlockedVersions(f.ctx, tn.TenantID, pg)
			}, func(x *catalog.BlockedVersion) string { return x.BlocklistID }), blocked)
			equalIDs(t, "rollouts", walk(t, limit, func(pg store.Page) ([]*catalog.Rollout, string, error) { return f.s.Rollouts(f.ctx, p.ProductID, pg) }, func(x *catalog.Rollout) string { return x.RolloutID }), rollouts)
			equalIDs(t, "seats", walk(t, limit, func(pg store.Page) ([]*catalog.SeatAssignment, string, error) {
				return f.s.Seats(f.ctx, ent.EntitlementID, pg)
			}, func(x *catalog.SeatAssignment) string { return x.SeatAssignmentID }), seats)
			equalIDs(t, "mirrors", walk(t, limit, func(pg store.Page) ([]*catalog.Mirror, string, error) { return f.s.Mirrors(f.ctx, tn.TenantID, pg) }, func(x *catalog.Mirror) string { return x.MirrorID }), mirrors)
			equalIDs(t, "snapshots", walk(t, limit, func(pg store.Page) ([]*catalog.Snapshot, string, error) { return f.s.Snapshots(f.ctx, tn.TenantID, pg) }, func(x *catalog.Snapshot) string { return x.SnapshotID }), snapshots)
			equalIDs(t, "entitlements", walk(t, limit, func(pg store.Page) ([]*catalog.Entitlement, string, error) {
				return f.s.Entitlements(f.ctx, tn.TenantID, pg)
			}, func(x *catalog.Entitlement) string { return x.EntitlementID }), []string{ent.EntitlementID})
		})
	}
	t.Run("default and max limit", func(t *testing.T) {
		items, next, err := f.s.Tenants(f.ctx, store.Page{Limit: -1})
		must(t, err)
		if len(items) != n+1 || next != "" {
			t.Fatalf("limit -1: %d items next %q, want %d and none", len(items), next, n+1)
		}
	})
	t.Run("lists of one parent only", func(t *testing.T) {
		other := f.tenant()
		for name, list := range map[string]func() (int, error){
			"policies": func() (int, error) {
				x, _, err := f.s.Policies(f.ctx, other.TenantID, store.Page{})
				return len(x), err
			},
			"blocked": func() (int, error) {
				x, _, err := f.s.BlockedVersions(f.ctx, other.TenantID, store.Page{})
				return len(x), err
			},
			"mirrors": func() (int, error) { x, _, err := f.s.Mirrors(f.ctx, other.TenantID, store.Page{}); return len(x), err },
			"snapshots": func() (int, error) {
				x, _, err := f.s.Snapshots(f.ctx, other.TenantID, store.Page{})
				return len(x), err
			},
			"ents": func() (int, error) {
				x, _, err := f.s.Entitlements(f.ctx, other.TenantID, store.Page{})
				return len(x), err
			},
		} {
			got, err := list()
			must(t, err)
			if got != 0 {
				t.Fatalf("%s of a fresh tenant: %d items, want 0", name, got)
			}
		}
	})
}

// testNotFound checks every getter and every list of a missing parent.
func testNotFound(t *testing.T, f *fx) {
	ctx := f.ctx
	pg := store.Page{}
	cases := map[string]func() error{
		"Tenant":                 func() error { _, err := f.s.Tenant(ctx, "ten_nope"); return err },
		"Product":                func() error { _, err := f.s.Product(ctx, "prd_nope"); return err },
		"Artifact":               func() error { _, err := f.s.Artifact(ctx, "art_nope"); return err },
		"Release":                func() error { _, err := f.s.Release(ctx, "rel_nope"); return err },
		"Releases":               func() error { _, _, err := f.s.Releases(ctx, "prd_nope", pg); return err },
		"ReleaseArtifacts":       func() error { _, err := f.s.ReleaseArtifacts(ctx, "rel_nope"); return err },
		"Policy":                 func() error { _, err := f.s.Policy(ctx, "pol_nope"); return err },
		"Policies":               func() error { _, _, err := f.s.Policies(ctx, "ten_nope", pg); return err },
		"PolicyVersions":         func() error { _, err := f.s.PolicyVersions(ctx, "pol_nope"); return err },
		"BlockedVersions":        func() error { _, _, err := f.s.BlockedVersions(ctx, "ten_nope", pg); return err },
		"DeleteBlockedVersion":   func() error { return f.s.DeleteBlockedVersion(ctx, "ten_nope", "blk_nope") },
		"Rollout":                func() error { _, err := f.s.Rollout(ctx, "rol_nope"); return err },
		"Rollouts":               func() error { _, _, err := f.s.Rollouts(ctx, "prd_nope", pg); return err },
		"Entitlement":            func() error { _, err := f.s.Entitlement(ctx, "ent_nope"); return err },
		"Entitlements":           func() error { _, _, err := f.s.Entitlements(ctx, "ten_nope", pg); return err },
		"Seats":                  func() error { _, _, err := f.s.Seats(ctx, "ent_nope", pg); return err },
		"Lease":                  func() error { _, err := f.s.Lease(ctx, "lea_nope"); return err },
		"ReleaseLease":           func() error { _, err := f.s.ReleaseLease(ctx, "lea_nope", "", false, f.now); return err },
		"RevokeSeat":             func() error { _, err := f.s.RevokeSeat(ctx, "ent_nope", "sea_nope", "x", f.now); return err },
		"Snapshot":               func() error { _, err := f.s.Snapshot(ctx, "snp_nope"); return err },
		"SnapshotBySequence":     func() error { _, err := f.s.SnapshotBySequence(ctx, "ten_nope", 1); return err },
		"LatestSnapshot":         func() error { _, err := f.s.LatestSnapshot(ctx, "ten_nope"); return err },
		"Snapshots":              func() error { _, _, err := f.s.Snapshots(ctx, "ten_nope", pg); return err },
		"CreateSnapshot":         func() error { _, err := f.s.CreateSnapshot(ctx, "ten_nope", fakeBuild(nil)); return err },
		"Mirror":                 func() error { _, err := f.s.Mirror(ctx, "mir_nope"); return err },
		"MirrorByCredentialHash": func() error { _, err := f.s.MirrorByCredentialHash(ctx, randHash()); return err },
		"Mirrors":                func() error { _, _, err := f.s.Mirrors(ctx, "ten_nope", pg); return err },
		"TokenByHash":            func() error { _, err := f.s.TokenByHash(ctx, randHash()); return err },
		"Idempotency":            func() error { _, err := f.s.Idempotency(ctx, "nope"); return err },
		"UpdatePolicy": func() error {
			_, err := f.s.UpdatePolicy(ctx, "pol_nope", func(*catalog.Policy) error { return nil })
			return err
		},
		"UpdateRollout": func() error {
			_, err := f.s.UpdateRollout(ctx, "rol_nope", func(*catalog.Rollout) error { return nil })
			return err
		},
		"UpdateEntitlement": func() error {
			_, err := f.s.UpdateEntitlement(ctx, "ent_nope", func(*catalog.Entitlement) error { return nil })
			return err
		},
		"UpdateMirror": func() error {
			_, err := f.s.UpdateMirror(ctx, "mir_nope", func(*catalog.Mirror) error { return nil })
			return err
		},
		"AcquireLease": func() error { _, err := f.s.AcquireLease(ctx, f.lease("ent_nope", "m1", f.now)); return err },
		"AssignSeat":   func() error { return f.s.AssignSeat(ctx, f.seat("ent_nope", "u1")) },
	}
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f.refused(catalog.ENOTFOUND, cases[name])
		})
	}
	t.Run("message names the id", func(t *testing.T) {
		_, err := f.s.Tenant(ctx, "ten_nope")
		if err == nil || !strings.Contains(err.Error(), "ten_nope") {
			t.Fatalf("error %v does not name the id", err)
		}
	})
}
