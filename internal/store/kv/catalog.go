package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// tokenRecord keeps the hash that catalog.Token leaves out of its JSON.
type tokenRecord struct {
	catalog.Token
	StoredHash string `json:"hash"`
}

// CreateToken stores t, indexed by its hash.
func (db *Store) CreateToken(ctx context.Context, t *catalog.Token) error {
	if err := checkID("token_id", t.TokenID); err != nil {
		return err
	}
	if err := catalog.ValidateSHA256("hash", t.Hash); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("role", t.Role, catalog.TokenRoles); err != nil {
		return err
	}
	base, _ := catalog.BaseRole(t.Role)
	if base == catalog.RoleTenant && t.TenantID == "" {
		return catalog.Invalid("tenant_id", "is required for a tenant token")
	}
	if base == catalog.RoleAdmin && t.TenantID != "" {
		return catalog.Invalid("tenant_id", "must be empty for an admin token")
	}
	if err := checkText("name", t.Name, false); err != nil {
		return err
	}
	keys := auditAnd(bk(iTokenHash, t.Hash), bk(bTokens, t.TokenID))
	if t.TenantID != "" {
		keys = append(keys, bk(bTenants, t.TenantID))
	}
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		if t.TenantID != "" {
			if err := liveTenant(w.Tx, t.TenantID); err != nil {
				return err
			}
		}
		if w.Bucket(iTokenHash).Get([]byte(t.Hash)) != nil {
			return catalog.Errorf(catalog.ECONFLICT, "a token with this hash already exists")
		}
		t.CreatedAt = orNow(t.CreatedAt, w.now)
		if err := w.insert(bTokens, "token", t.TokenID, &tokenRecord{Token: *t, StoredHash: t.Hash}); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iTokenHash, []byte(t.Hash), t.TokenID); err != nil {
			return err
		}
		return w.event(t.TenantID, "token.created", t)
	})
}

// TokenByHash returns the token whose hash is hash.
func (db *Store) TokenByHash(ctx context.Context, hash string) (*catalog.Token, error) {
	var rec tokenRecord
	err := db.view(ctx, func(tx Tx) error {
		id := tx.Bucket(iTokenHash).Get([]byte(hash))
		if id == nil {
			return catalog.Errorf(catalog.ENOTFOUND, "token not found")
		}
		return mustGet(tx, bTokens, "token", string(id), &rec)
	})
	if err != nil {
		return nil, err
	}
	return rec.token(), nil
}

// Token returns the token with id.
func (db *Store) Token(ctx context.Context, id string) (*catalog.Token, error) {
	var rec tokenRecord
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bTokens, "token", id, &rec) }); err != nil {
		return nil, err
	}
	return rec.token(), nil
}

func (r *tokenRecord) token() *catalog.Token {
	t := r.Token
	t.Hash = r.StoredHash
	return &t
}

// Tokens lists tokens in id order. API tokens are few (people and
// automation, not clients), so a tenant's are found by a walk of all.
func (db *Store) Tokens(ctx context.Context, tenantID string, p store.Page) (out []*catalog.Token, next string, err error) {
	p = p.Normalize()
	err = db.view(ctx, func(tx Tx) error {
		out, next = nil, ""
		c := tx.Bucket(bTokens).Cursor()
		k, v := c.Seek([]byte(p.Cursor))
		if p.Cursor != "" && k != nil && string(k) == p.Cursor {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode token %q: %w", k, err)
			}
			if tenantID != "" && rec.TenantID != tenantID {
				continue
			}
			if len(out) == p.Limit {
				next = out[len(out)-1].TokenID
				return nil
			}
			out = append(out, rec.token())
		}
		return nil
	})
	return out, next, err
}

// RevokeToken marks the token revoked and drops its hash from the index,
// so the next request with it fails on every instance.
func (db *Store) RevokeToken(ctx context.Context, id, by string) (*catalog.Token, error) {
	var rec tokenRecord
	err := db.updateGrouped(ctx, auditAnd(bk(bTokens, id)), func(w *wtx) error {
		rec = tokenRecord{} // a redone batch runs this again (group.go)
		if err := mustGet(w.Tx, bTokens, "token", id, &rec); err != nil {
			return err
		}
		if rec.RevokedAt != nil {
			return nil
		}
		at := w.now
		rec.RevokedAt, rec.RevokedBy = &at, by
		if err := w.put(bTokens, []byte(id), &rec); err != nil {
			return err
		}
		if err := w.Bucket(iTokenHash).Delete([]byte(rec.StoredHash)); err != nil {
			return err
		}
		return w.event(rec.TenantID, "token.revoked", rec.Token)
	})
	if err != nil {
		return nil, err
	}
	return rec.token(), nil
}

// TouchToken records a use of the token, at most once per
// catalog.TokenTouchEvery. Shared (shared.go): it writes the record it
// reads, and every other change to it is exclusive.
func (db *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	return db.updateShared(ctx, []BucketKey{{bTokens, []byte(id)}}, func(w *wtx) error {
		var rec tokenRecord
		if err := mustGet(w.Tx, bTokens, "token", id, &rec); err != nil {
			return err
		}
		if rec.LastUsedAt != nil && rec.LastUsedAt.After(at.Add(-catalog.TokenTouchEvery)) {
			return nil
		}
		at := at.UTC()
		rec.LastUsedAt = &at
		return w.put(bTokens, []byte(id), &rec)
	})
}

// CreateTenant stores a new tenant (status active when empty).
func (db *Store) CreateTenant(ctx context.Context, t *catalog.Tenant) error {
	if err := checkID("tenant_id", t.TenantID); err != nil {
		return err
	}
	if err := catalog.ValidateName("name", t.Name); err != nil {
		return err
	}
	if t.Status == "" {
		t.Status = catalog.TenantActive
	}
	if err := validTenantStatus(t.Status); err != nil {
		return err
	}
	md, err := metadata(t.Metadata)
	if err != nil {
		return err
	}
	t.Metadata = md
	keys := []BucketKey{{bMeta, kAuditHead}, {bTenants, []byte(t.TenantID)}}
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		t.CreatedAt = orNow(t.CreatedAt, w.now)
		if err := w.insert(bTenants, "tenant", t.TenantID, t); err != nil {
			return err
		}
		return w.event(t.TenantID, "tenant.created", t)
	})
}

func validTenantStatus(s string) error {
	return catalog.ValidateEnum("status", s, []string{catalog.TenantActive, catalog.TenantSuspended, catalog.TenantDeleted})
}

// Tenant returns one tenant.
func (db *Store) Tenant(ctx context.Context, id string) (*catalog.Tenant, error) {
	var t catalog.Tenant
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bTenants, "tenant", id, &t) }); err != nil {
		return nil, err
	}
	return &t, nil
}

// Tenants lists tenants by id.
func (db *Store) Tenants(ctx context.Context, p store.Page) (out []*catalog.Tenant, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		out, next, err = listObjects(tx, bTenants, p, func(t *catalog.Tenant) string { return t.TenantID })
		return err
	})
	return out, next, err
}

// UpdateTenant applies fn to a copy of the tenant; tenant_id and
// created_at cannot change.
func (db *Store) UpdateTenant(ctx context.Context, id string, fn func(*catalog.Tenant) error) (*catalog.Tenant, error) {
	var cur catalog.Tenant
	err := db.updateGrouped(ctx, auditAnd(bk(bTenants, id)), func(w *wtx) error {
		cur = catalog.Tenant{} // a redone batch runs this again (group.go)
		var old catalog.Tenant
		if err := mustGet(w.Tx, bTenants, "tenant", id, &old); err != nil {
			return err
		}
		if err := mustGet(w.Tx, bTenants, "tenant", id, &cur); err != nil {
			return err
		}
		if err := fn(&cur); err != nil {
			return err
		}
		switch {
		case cur.TenantID != old.TenantID:
			return immutable("tenant_id")
		case !cur.CreatedAt.Equal(old.CreatedAt):
			return immutable("created_at")
		}
		if err := catalog.ValidateName("name", cur.Name); err != nil {
			return err
		}
		if err := validTenantStatus(cur.Status); err != nil {
			return err
		}
		md, err := metadata(cur.Metadata)
		if err != nil {
			return err
		}
		cur.Metadata = md
		if err := w.put(bTenants, []byte(id), &cur); err != nil {
			return err
		}
		return w.event(id, "tenant.updated", &cur)
	})
	if err != nil {
		return nil, err
	}
	return &cur, nil
}

// CreateProduct stores a new product (distribution licensed when empty).
func (db *Store) CreateProduct(ctx context.Context, p *catalog.Product) error {
	if err := checkID("product_id", p.ProductID); err != nil {
		return err
	}
	if err := catalog.ValidateName("name", p.Name); err != nil {
		return err
	}
	if p.Distribution == "" {
		p.Distribution = catalog.DistributionLicensed
	}
	if err := catalog.ValidateEnum("distribution", p.Distribution, []string{catalog.DistributionLicensed, catalog.DistributionOpen}); err != nil {
		return err
	}
	md, err := metadata(p.Metadata)
	if err != nil {
		return err
	}
	p.Metadata = md
	keys := []BucketKey{{bMeta, kAuditHead}, {bProducts, []byte(p.ProductID)}}
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		p.CreatedAt = orNow(p.CreatedAt, w.now)
		if err := w.insert(bProducts, "product", p.ProductID, p); err != nil {
			return err
		}
		return w.event("", "product.created", p)
	})
}

// Product returns one product.
func (db *Store) Product(ctx context.Context, id string) (*catalog.Product, error) {
	var p catalog.Product
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bProducts, "product", id, &p) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// Products lists products by id.
func (db *Store) Products(ctx context.Context, p store.Page) (out []*catalog.Product, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		out, next, err = listObjects(tx, bProducts, p, func(p *catalog.Product) string { return p.ProductID })
		return err
	})
	return out, next, err
}

// CreateArtifact stores a new artifact record.
func (db *Store) CreateArtifact(ctx context.Context, a *catalog.Artifact) error {
	if err := checkID("artifact_id", a.ArtifactID); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("source_type", a.SourceType, []string{catalog.SourceManaged, catalog.SourceExternal}); err != nil {
		return err
	}
	if a.Status == "" {
		a.Status = catalog.ArtifactPending
	}
	if err := catalog.ValidateEnum("status", a.Status, []string{catalog.ArtifactPending, catalog.ArtifactVerified, catalog.ArtifactFailed}); err != nil {
		return err
	}
	if a.SHA256 != "" {
		if err := catalog.ValidateSHA256("sha256", a.SHA256); err != nil {
			return err
		}
	}
	if a.SizeBytes < 0 {
		return catalog.Invalid("size_bytes", "must not be negative")
	}
	if err := checkText("storage_path", a.StoragePath, false); err != nil {
		return err
	}
	if len(a.ExternalURL) > 4096 {
		return catalog.Invalid("external_url", "must be at most 4096 bytes")
	}
	return db.updateGrouped(ctx, auditAnd(bk(bArtifacts, a.ArtifactID)), func(w *wtx) error {
		a.CreatedAt = orNow(a.CreatedAt, w.now)
		if err := w.insert(bArtifacts, "artifact", a.ArtifactID, a); err != nil {
			return err
		}
		return w.event("", "artifact.created", a)
	})
}

// Artifact returns one artifact.
func (db *Store) Artifact(ctx context.Context, id string) (*catalog.Artifact, error) {
	var a catalog.Artifact
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bArtifacts, "artifact", id, &a) }); err != nil {
		return nil, err
	}
	return &a, nil
}

// SetArtifactStatus records a verification outcome: VERIFIED or FAILED.
func (db *Store) SetArtifactStatus(ctx context.Context, id, status string, verifiedAt *time.Time) (*catalog.Artifact, error) {
	if err := catalog.ValidateEnum("status", status, []string{catalog.ArtifactVerified, catalog.ArtifactFailed}); err != nil {
		return nil, err
	}
	var a catalog.Artifact
	err := db.updateGrouped(ctx, auditAnd(bk(bArtifacts, id)), func(w *wtx) error {
		a = catalog.Artifact{} // a redone batch runs this again (group.go)
		if err := mustGet(w.Tx, bArtifacts, "artifact", id, &a); err != nil {
			return err
		}
		a.Status = status
		if verifiedAt != nil {
			t := verifiedAt.UTC()
			a.VerifiedAt = &t
		}
		if err := w.put(bArtifacts, []byte(id), &a); err != nil {
			return err
		}
		ev := "artifact.verified"
		if status == catalog.ArtifactFailed {
			ev = "artifact.failed"
		}
		return w.event("", ev, &a)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateRelease appends a release; the product must exist and
// product+channel+version must be new.
func (db *Store) CreateRelease(ctx context.Context, r *catalog.Release) error {
	if err := checkID("release_id", r.ReleaseID); err != nil {
		return err
	}
	if err := checkID("product_id", r.ProductID); err != nil {
		return err
	}
	if err := catalog.ValidateChannel("channel", r.Channel); err != nil {
		return err
	}
	if err := catalog.ValidateVersion("version", r.Version); err != nil {
		return err
	}
	if r.Status == "" {
		r.Status = catalog.ReleaseActive
	}
	if r.Status != catalog.ReleaseActive || r.RevokedAt != nil {
		return catalog.Invalid("status", "a new release must be ACTIVE")
	}
	md, err := metadata(r.Metadata)
	if err != nil {
		return err
	}
	r.Metadata = md
	pcv := key(r.ProductID, r.Channel, r.Version)
	// Shared (shared.go): the product is changed by exclusive writes
	// only; the release id and its product+channel+version are keys this
	// write checks and writes.
	keys := []BucketKey{{bMeta, kAuditHead}, {bProducts, []byte(r.ProductID)}, {iReleasePCV, pcv}, {bReleases, []byte(r.ReleaseID)}}
	return db.updateShared(ctx, keys, func(w *wtx) error {
		if err := exists(w.Tx, bProducts, "product", r.ProductID); err != nil {
			return err
		}
		if id := w.Bucket(iReleasePCV).Get(pcv); id != nil {
			return catalog.Errorf(catalog.ECONFLICT, "release %s already exists for product %s channel %s version %s", id, r.ProductID, r.Channel, r.Version)
		}
		r.PublishedAt = orNow(r.PublishedAt, w.now)
		raw, err := w.insertEncoded(bReleases, "release", r.ReleaseID, r)
		if err != nil {
			return err
		}
		if err := putIdx(w.Tx, iReleasePCV, pcv, r.ReleaseID); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iReleaseProduct, key(r.ProductID, r.ReleaseID), ""); err != nil {
			return err
		}
		return w.eventEncoded("", "release.created", raw)
	})
}

// Release returns one release.
func (db *Store) Release(ctx context.Context, id string) (*catalog.Release, error) {
	var r catalog.Release
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bReleases, "release", id, &r) }); err != nil {
		return nil, err
	}
	return &r, nil
}

// Releases lists a product's releases by id.
func (db *Store) Releases(ctx context.Context, productID string, p store.Page) (out []*catalog.Release, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bProducts, "product", productID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.Release](tx, iReleaseProduct, bReleases, prefix(productID), p)
		return err
	})
	return out, next, err
}

// RevokeRelease marks a release REVOKED; it is one-way.
func (db *Store) RevokeRelease(ctx context.Context, id string, at time.Time) (*catalog.Release, error) {
	var r catalog.Release
	err := db.updateGrouped(ctx, auditAnd(bk(bReleases, id)), func(w *wtx) error {
		r = catalog.Release{} // a redone batch runs this again (group.go)
		if err := mustGet(w.Tx, bReleases, "release", id, &r); err != nil {
			return err
		}
		if r.Status == catalog.ReleaseRevoked {
			return catalog.Errorf(catalog.ECONFLICT, "release %s is already revoked", id)
		}
		t := orNow(at, w.now).UTC()
		r.Status, r.RevokedAt = catalog.ReleaseRevoked, &t
		if err := w.put(bReleases, []byte(id), &r); err != nil {
			return err
		}
		return w.event("", "release.revoked", &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// AttachArtifact adds a verified artifact to an active release, one per
// platform+arch+installer_type.
func (db *Store) AttachArtifact(ctx context.Context, ra *catalog.ReleaseArtifact) error {
	if err := checkID("release_artifact_id", ra.ReleaseArtifactID); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("platform", ra.Platform, catalog.Platforms); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("arch", ra.Arch, catalog.Arches); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("installer_type", ra.InstallerType, catalog.InstallerTypes); err != nil {
		return err
	}
	keys := auditAnd(bk(bReleases, ra.ReleaseID), bk(bArtifacts, ra.ArtifactID),
		bk(iRelArtTarget, ra.ReleaseID, ra.Platform, ra.Arch, ra.InstallerType), bk(bRelArts, ra.ReleaseArtifactID))
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		var r catalog.Release
		if err := mustGet(w.Tx, bReleases, "release", ra.ReleaseID, &r); err != nil {
			return err
		}
		if r.Status != catalog.ReleaseActive {
			return catalog.Errorf(catalog.ECONFLICT, "release %s is %s: artifacts attach only to ACTIVE releases", r.ReleaseID, r.Status)
		}
		var a catalog.Artifact
		if err := mustGet(w.Tx, bArtifacts, "artifact", ra.ArtifactID, &a); err != nil {
			return err
		}
		if a.Status != catalog.ArtifactVerified {
			return catalog.Errorf(catalog.ECONFLICT, "artifact %s is %s: only VERIFIED artifacts can be attached", a.ArtifactID, a.Status)
		}
		target := key(ra.ReleaseID, ra.Platform, ra.Arch, ra.InstallerType)
		if id := w.Bucket(iRelArtTarget).Get(target); id != nil {
			return catalog.Errorf(catalog.ECONFLICT, "release %s already has artifact %s for %s/%s/%s", ra.ReleaseID, id, ra.Platform, ra.Arch, ra.InstallerType)
		}
		if err := w.insert(bRelArts, "release artifact", ra.ReleaseArtifactID, ra); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iRelArtTarget, target, ra.ReleaseArtifactID); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iRelArtRelease, key(ra.ReleaseID, ra.ReleaseArtifactID), ""); err != nil {
			return err
		}
		return w.event("", "release.artifact_attached", ra)
	})
}

// ReleaseArtifacts lists a release's artifacts by id.
func (db *Store) ReleaseArtifacts(ctx context.Context, releaseID string) ([]*catalog.ReleaseArtifact, error) {
	var out []*catalog.ReleaseArtifact
	err := db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bReleases, "release", releaseID); err != nil {
			return err
		}
		pfx := prefix(releaseID)
		for cur := ""; ; {
			items, next, err := listByIndex[catalog.ReleaseArtifact](tx, iRelArtRelease, bRelArts, pfx, store.Page{Limit: store.MaxLimit, Cursor: cur})
			if err != nil {
				return err
			}
			out = append(out, items...)
			if next == "" {
				return nil
			}
			cur = next
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
