package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

func policyVersionKey(id string, version int) []byte {
	return []byte(fmt.Sprintf("%s\x00%010d", id, version))
}

// conditions checks that raw is a JSON object of at most 64 KiB and
// compacts it ({} when empty). The update engine owns its language.
func conditions(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > 64<<10 {
		return nil, catalog.Invalid("conditions", "must be at most 64 KiB")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, catalog.Invalid("conditions", "must be a JSON object")
	}
	return buf.Bytes(), nil
}

func validatePolicy(p *catalog.Policy) error {
	if err := catalog.ValidateChannel("channel", p.Channel); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("action", p.Action, catalog.Actions); err != nil {
		return err
	}
	c, err := conditions(p.Conditions)
	if err != nil {
		return err
	}
	p.Conditions = c
	return nil
}

func (w *wtx) putPolicy(p *catalog.Policy) error {
	if err := w.put(bPolicyVers, policyVersionKey(p.PolicyID, p.Version), p); err != nil {
		return err
	}
	return w.put(bPolicies, []byte(p.PolicyID), p)
}

// CreatePolicy stores version 1 of a tenant product policy.
func (db *Store) CreatePolicy(ctx context.Context, p *catalog.Policy) error {
	if err := checkID("policy_id", p.PolicyID); err != nil {
		return err
	}
	if err := validatePolicy(p); err != nil {
		return err
	}
	keys := auditAnd(bk(bTenants, p.TenantID), bk(bProducts, p.ProductID), bk(bPolicies, p.PolicyID))
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		if err := liveTenant(w.Tx, p.TenantID); err != nil {
			return err
		}
		if err := exists(w.Tx, bProducts, "product", p.ProductID); err != nil {
			return err
		}
		if w.Bucket(bPolicies).Get([]byte(p.PolicyID)) != nil {
			return catalog.Errorf(catalog.ECONFLICT, "policy %q already exists", p.PolicyID)
		}
		p.Version = 1
		p.CreatedAt = orNow(p.CreatedAt, w.now)
		p.UpdatedAt = p.CreatedAt
		if err := w.putPolicy(p); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iPolicyTenant, key(p.TenantID, p.PolicyID), ""); err != nil {
			return err
		}
		return w.event(p.TenantID, "policy.created", p)
	})
}

// Policy returns a policy's latest version.
func (db *Store) Policy(ctx context.Context, id string) (*catalog.Policy, error) {
	var p catalog.Policy
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bPolicies, "policy", id, &p) }); err != nil {
		return nil, err
	}
	return &p, nil
}

// Policies lists a tenant's policies (latest versions) by id.
func (db *Store) Policies(ctx context.Context, tenantID string, p store.Page) (out []*catalog.Policy, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bTenants, "tenant", tenantID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.Policy](tx, iPolicyTenant, bPolicies, prefix(tenantID), p)
		return err
	})
	return out, next, err
}

// UpdatePolicy stores fn's change as a new version; the old one is kept.
func (db *Store) UpdatePolicy(ctx context.Context, id string, fn func(*catalog.Policy) error) (*catalog.Policy, error) {
	var cur catalog.Policy
	err := db.updateGrouped(ctx, auditAnd(bk(bPolicies, id)), func(w *wtx) error {
		cur = catalog.Policy{} // a redone batch runs this again (group.go)
		var old catalog.Policy
		if err := mustGet(w.Tx, bPolicies, "policy", id, &old); err != nil {
			return err
		}
		if err := mustGet(w.Tx, bPolicies, "policy", id, &cur); err != nil {
			return err
		}
		if err := fn(&cur); err != nil {
			return err
		}
		switch {
		case cur.PolicyID != old.PolicyID:
			return immutable("policy_id")
		case cur.TenantID != old.TenantID:
			return immutable("tenant_id")
		case cur.ProductID != old.ProductID:
			return immutable("product_id")
		case cur.Version != old.Version:
			return immutable("version")
		case !cur.CreatedAt.Equal(old.CreatedAt):
			return immutable("created_at")
		}
		if err := validatePolicy(&cur); err != nil {
			return err
		}
		cur.Version = old.Version + 1
		cur.UpdatedAt = w.now
		if err := w.putPolicy(&cur); err != nil {
			return err
		}
		return w.event(cur.TenantID, "policy.updated", &cur)
	})
	if err != nil {
		return nil, err
	}
	return &cur, nil
}

// PolicyVersions lists every version of a policy, oldest first.
func (db *Store) PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error) {
	var out []*catalog.Policy
	err := db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bPolicies, "policy", id); err != nil {
			return err
		}
		pfx := prefix(id)
		c := tx.Bucket(bPolicyVers).Cursor()
		for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			var p catalog.Policy
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode policy version %q: %w", k, err)
			}
			out = append(out, &p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateBlockedVersion blocks a version of a product for a tenant.
func (db *Store) CreateBlockedVersion(ctx context.Context, b *catalog.BlockedVersion) error {
	if err := checkID("blocklist_id", b.BlocklistID); err != nil {
		return err
	}
	if err := checkText("blocked_version", b.BlockedVersion, true); err != nil {
		return err
	}
	if err := checkText("reason", b.Reason, false); err != nil {
		return err
	}
	keys := auditAnd(bk(bTenants, b.TenantID), bk(bProducts, b.ProductID), bk(iBlockedTPV, b.TenantID, b.ProductID, b.BlockedVersion),
		bk(bBlocked, b.BlocklistID))
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		if err := liveTenant(w.Tx, b.TenantID); err != nil {
			return err
		}
		if err := exists(w.Tx, bProducts, "product", b.ProductID); err != nil {
			return err
		}
		tpv := key(b.TenantID, b.ProductID, b.BlockedVersion)
		if id := w.Bucket(iBlockedTPV).Get(tpv); id != nil {
			return catalog.Errorf(catalog.ECONFLICT, "version %s of product %s is already blocked (%s)", b.BlockedVersion, b.ProductID, id)
		}
		b.CreatedAt = orNow(b.CreatedAt, w.now)
		if err := w.insert(bBlocked, "blocked version", b.BlocklistID, b); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iBlockedTPV, tpv, b.BlocklistID); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iBlockedTenant, key(b.TenantID, b.BlocklistID), ""); err != nil {
			return err
		}
		return w.event(b.TenantID, "blocked_version.created", b)
	})
}

// BlockedVersions lists a tenant's blocked versions by id.
func (db *Store) BlockedVersions(ctx context.Context, tenantID string, p store.Page) (out []*catalog.BlockedVersion, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bTenants, "tenant", tenantID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.BlockedVersion](tx, iBlockedTenant, bBlocked, prefix(tenantID), p)
		return err
	})
	return out, next, err
}

// DeleteBlockedVersion unblocks; an entry of another tenant is not found.
func (db *Store) DeleteBlockedVersion(ctx context.Context, tenantID, id string) error {
	return db.updateGrouped(ctx, auditAnd(bk(bBlocked, id)), func(w *wtx) error {
		var b catalog.BlockedVersion
		if err := mustGet(w.Tx, bBlocked, "blocked version", id, &b); err != nil {
			return err
		}
		if b.TenantID != tenantID {
			return catalog.NotFound("blocked version", id)
		}
		for _, del := range []struct {
			bucket, key []byte
		}{
			{bBlocked, []byte(id)},
			{iBlockedTPV, key(b.TenantID, b.ProductID, b.BlockedVersion)},
			{iBlockedTenant, key(b.TenantID, id)},
		} {
			if err := w.Bucket(del.bucket).Delete(del.key); err != nil {
				return err
			}
		}
		return w.event(b.TenantID, "blocked_version.deleted", &b)
	})
}

var rolloutStatuses = []string{catalog.RolloutActive, catalog.RolloutPaused, catalog.RolloutCompleted, catalog.RolloutKilled}

func validPercentage(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return catalog.Invalid("percentage", "must be between 0 and 100")
	}
	return nil
}

// CreateRollout stages a release of the product and channel.
func (db *Store) CreateRollout(ctx context.Context, r *catalog.Rollout) error {
	if err := checkID("rollout_id", r.RolloutID); err != nil {
		return err
	}
	if err := catalog.ValidateChannel("channel", r.Channel); err != nil {
		return err
	}
	if err := validPercentage(r.Percentage); err != nil {
		return err
	}
	if r.Status == "" {
		r.Status = catalog.RolloutActive
	}
	if err := catalog.ValidateEnum("status", r.Status, rolloutStatuses); err != nil {
		return err
	}
	keys := auditAnd(bk(bProducts, r.ProductID), bk(bReleases, r.ReleaseID), bk(bRollouts, r.RolloutID))
	return db.updateGrouped(ctx, keys, func(w *wtx) error {
		if err := exists(w.Tx, bProducts, "product", r.ProductID); err != nil {
			return err
		}
		var rel catalog.Release
		if err := mustGet(w.Tx, bReleases, "release", r.ReleaseID, &rel); err != nil {
			return err
		}
		if rel.ProductID != r.ProductID || rel.Channel != r.Channel {
			return catalog.Invalid("release_id", "release %s is not in product %s channel %s", rel.ReleaseID, r.ProductID, r.Channel)
		}
		r.CreatedAt = orNow(r.CreatedAt, w.now)
		r.UpdatedAt = r.CreatedAt
		if err := w.insert(bRollouts, "rollout", r.RolloutID, r); err != nil {
			return err
		}
		if err := putIdx(w.Tx, iRolloutProduct, key(r.ProductID, r.RolloutID), ""); err != nil {
			return err
		}
		return w.event("", "rollout.created", r)
	})
}

// Rollout returns one rollout.
func (db *Store) Rollout(ctx context.Context, id string) (*catalog.Rollout, error) {
	var r catalog.Rollout
	if err := db.view(ctx, func(tx Tx) error { return mustGet(tx, bRollouts, "rollout", id, &r) }); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollouts lists a product's rollouts by id.
func (db *Store) Rollouts(ctx context.Context, productID string, p store.Page) (out []*catalog.Rollout, next string, err error) {
	err = db.view(ctx, func(tx Tx) error {
		if err := exists(tx, bProducts, "product", productID); err != nil {
			return err
		}
		out, next, err = listByIndex[catalog.Rollout](tx, iRolloutProduct, bRollouts, prefix(productID), p)
		return err
	})
	return out, next, err
}

// UpdateRollout changes percentage and status (legal transitions only).
func (db *Store) UpdateRollout(ctx context.Context, id string, fn func(*catalog.Rollout) error) (*catalog.Rollout, error) {
	return db.UpdateRolloutAudited(ctx, id, fn, nil)
}

// UpdateRolloutAudited is UpdateRollout that also appends the event
// reason returns for the updated rollout (with its dedup key), in the
// same transaction: the move and its reason commit together or not at
// all. A nil reason, or a nil event, appends nothing more.
func (db *Store) UpdateRolloutAudited(ctx context.Context, id string, fn func(*catalog.Rollout) error, reason func(*catalog.Rollout) (*catalog.AuditEvent, string, error)) (*catalog.Rollout, error) {
	var cur catalog.Rollout
	err := db.update(ctx, func(w *wtx) error {
		var old catalog.Rollout
		if err := mustGet(w.Tx, bRollouts, "rollout", id, &old); err != nil {
			return err
		}
		cur = old
		if err := fn(&cur); err != nil {
			return err
		}
		switch {
		case cur.RolloutID != old.RolloutID:
			return immutable("rollout_id")
		case cur.ProductID != old.ProductID:
			return immutable("product_id")
		case cur.Channel != old.Channel:
			return immutable("channel")
		case cur.ReleaseID != old.ReleaseID:
			return immutable("release_id")
		case !cur.CreatedAt.Equal(old.CreatedAt):
			return immutable("created_at")
		}
		if err := validPercentage(cur.Percentage); err != nil {
			return err
		}
		if err := catalog.ValidateRolloutTransition(old.Status, cur.Status); err != nil {
			return err
		}
		cur.UpdatedAt = w.now
		if err := w.put(bRollouts, []byte(id), &cur); err != nil {
			return err
		}
		if err := w.event("", "rollout.updated", &cur); err != nil {
			return err
		}
		if reason == nil {
			return nil
		}
		ev, dedupKey, err := reason(&cur)
		if err != nil || ev == nil {
			return err
		}
		if err := checkAudit(ev, dedupKey); err != nil {
			return err
		}
		_, err = w.appendAudit(ev, dedupKey)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cur, nil
}
