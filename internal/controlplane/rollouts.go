package controlplane

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/update"
)

// PolicyInput creates a tenant's policy for a product channel.
type PolicyInput struct {
	ProductID  string          `json:"product_id"`
	Channel    string          `json:"channel"`
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"` // docs/conditions.md; default {}
	Priority   int             `json:"priority"`
}

// PolicyUpdate is a policy's next version: its writable fields, whole.
type PolicyUpdate struct {
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"`
	Priority   int             `json:"priority"`
	Unchanged  Unchanged       `json:"-"`
}

func validatePolicy(action string, conditions json.RawMessage, priority int) (json.RawMessage, error) {
	if err := catalog.ValidateEnum("action", action, catalog.Actions); err != nil {
		return nil, err
	}
	if priority < -1_000_000 || priority > 1_000_000 {
		return nil, catalog.Invalid("priority", "must be between -1000000 and 1000000")
	}
	if len(conditions) == 0 || string(conditions) == "null" {
		conditions = json.RawMessage(`{}`)
	}
	if _, err := update.ParseConditions(conditions); err != nil {
		return nil, err
	}
	return compactJSON(conditions), nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// CreatePolicy creates version 1 of a policy.
func (a *App) CreatePolicy(ctx context.Context, tenantID string, in PolicyInput) (*catalog.Policy, error) {
	t, err := a.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !catalog.ValidID(catalog.PrefixProduct, in.ProductID) {
		return nil, catalog.Invalid("product_id", "%q is not a product id", in.ProductID)
	}
	if err := catalog.ValidateChannel("channel", in.Channel); err != nil {
		return nil, err
	}
	cond, err := validatePolicy(in.Action, in.Conditions, in.Priority)
	if err != nil {
		return nil, err
	}
	now := a.now()
	pol := &catalog.Policy{
		PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: t.TenantID, ProductID: in.ProductID, Channel: in.Channel,
		Action: in.Action, Conditions: cond, Priority: in.Priority, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := a.store.CreatePolicy(ctx, pol); err != nil {
		return nil, err
	}
	return pol, nil
}

// Policies lists a tenant's policies (latest versions).
func (a *App) Policies(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Policy, string, error) {
	return ofTenant(ctx, a, tenantID, pg, a.store.Policies)
}

// Policy returns a policy's latest version.
func (a *App) Policy(ctx context.Context, id string) (*catalog.Policy, error) {
	return load(ctx, catalog.PrefixPolicy, "policy", id, a.store.Policy, func(x *catalog.Policy) string { return x.TenantID })
}

// UpdatePolicy stores a new version; the old one is kept.
func (a *App) UpdatePolicy(ctx context.Context, id string, in PolicyUpdate) (*catalog.Policy, error) {
	if err := checkID(catalog.PrefixPolicy, "policy", id); err != nil {
		return nil, err
	}
	cond, err := validatePolicy(in.Action, in.Conditions, in.Priority)
	if err != nil {
		return nil, err
	}
	return a.store.UpdatePolicy(ctx, id, func(pol *catalog.Policy) error {
		if err := in.Unchanged.check(pol); err != nil {
			return err
		}
		pol.Action, pol.Conditions, pol.Priority = in.Action, cond, in.Priority
		pol.UpdatedAt = a.now()
		return nil
	})
}

// PolicyVersions lists every version of a policy.
func (a *App) PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error) {
	pol, err := a.Policy(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.store.PolicyVersions(ctx, pol.PolicyID)
}

// BlockedInput blocks a version of a product for a tenant.
type BlockedInput struct {
	ProductID      string `json:"product_id"`
	BlockedVersion string `json:"blocked_version"`
	Reason         string `json:"reason"`
}

// CreateBlockedVersion blocks a version for a tenant.
func (a *App) CreateBlockedVersion(ctx context.Context, tenantID string, in BlockedInput) (*catalog.BlockedVersion, error) {
	t, err := a.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !catalog.ValidID(catalog.PrefixProduct, in.ProductID) {
		return nil, catalog.Invalid("product_id", "%q is not a product id", in.ProductID)
	}
	if err := catalog.ValidateVersion("blocked_version", in.BlockedVersion); err != nil {
		return nil, err
	}
	if len(in.Reason) > 1000 {
		return nil, catalog.Invalid("reason", "must be at most 1000 bytes")
	}
	b := &catalog.BlockedVersion{
		BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: t.TenantID, ProductID: in.ProductID,
		BlockedVersion: in.BlockedVersion, Reason: in.Reason, CreatedAt: a.now(),
	}
	if err := a.store.CreateBlockedVersion(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}

// BlockedVersions lists a tenant's blocked versions.
func (a *App) BlockedVersions(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.BlockedVersion, string, error) {
	return ofTenant(ctx, a, tenantID, pg, a.store.BlockedVersions)
}

// DeleteBlockedVersion unblocks a version.
func (a *App) DeleteBlockedVersion(ctx context.Context, tenantID, id string) error {
	t, err := a.Tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if err := checkID(catalog.PrefixBlocked, "blocked version", id); err != nil {
		return err
	}
	return a.store.DeleteBlockedVersion(ctx, t.TenantID, id)
}

// RolloutInput starts a staged rollout of a release.
type RolloutInput struct {
	Channel    string   `json:"channel"`
	ReleaseID  string   `json:"release_id"`
	Percentage *float64 `json:"percentage"` // required, 0-100
	Status     string   `json:"status"`     // default active
	// Schedule and HealthGate are optional (docs/fleet.md).
	Schedule   json.RawMessage `json:"schedule,omitempty"`
	HealthGate json.RawMessage `json:"health_gate,omitempty"`
}

// RolloutPatch changes a rollout; nil fields stay.
type RolloutPatch struct {
	Percentage *float64 `json:"percentage"`
	Status     *string  `json:"status"`
	// Schedule and HealthGate replace the rollout's when given; JSON null
	// removes them.
	Schedule   json.RawMessage `json:"schedule,omitempty"`
	HealthGate json.RawMessage `json:"health_gate,omitempty"`
	Unchanged  Unchanged       `json:"-"`
}

func validPercentage(p float64) error {
	if p < 0 || p > 100 || p != p {
		return catalog.Invalid("percentage", "must be between 0 and 100")
	}
	return nil
}

// CreateRollout starts a rollout of a release of the product's channel.
func (a *App) CreateRollout(ctx context.Context, productID string, in RolloutInput) (*catalog.Rollout, error) {
	if err := checkID(catalog.PrefixProduct, "product", productID); err != nil {
		return nil, err
	}
	if err := catalog.ValidateChannel("channel", in.Channel); err != nil {
		return nil, err
	}
	if !catalog.ValidID(catalog.PrefixRelease, in.ReleaseID) {
		return nil, catalog.Invalid("release_id", "%q is not a release id", in.ReleaseID)
	}
	if in.Percentage == nil {
		return nil, catalog.Invalid("percentage", "is required")
	}
	if err := validPercentage(*in.Percentage); err != nil {
		return nil, err
	}
	if in.Status == "" {
		in.Status = catalog.RolloutActive
	}
	sched, gate, err := validateRolloutRules(in.Schedule, in.HealthGate)
	if err != nil {
		return nil, err
	}
	if err := catalog.ValidateEnum("status", in.Status, []string{catalog.RolloutActive, catalog.RolloutPaused}); err != nil {
		return nil, err
	}
	rel, err := a.store.Release(ctx, in.ReleaseID)
	if err != nil {
		return nil, err
	}
	if rel.ProductID != productID || rel.Channel != in.Channel {
		return nil, catalog.Invalid("release_id", "release %s is not in product %s channel %s", in.ReleaseID, productID, in.Channel)
	}
	now := a.now()
	ro := &catalog.Rollout{
		RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: productID, Channel: in.Channel, ReleaseID: in.ReleaseID,
		Percentage: *in.Percentage, Status: in.Status, CreatedAt: now, UpdatedAt: now,
		Schedule: sched, HealthGate: gate,
	}
	if err := a.store.CreateRollout(ctx, ro); err != nil {
		return nil, err
	}
	return ro, nil
}

// Rollouts lists a product's rollouts.
func (a *App) Rollouts(ctx context.Context, productID string, pg store.Page) ([]*catalog.Rollout, string, error) {
	if err := checkID(catalog.PrefixProduct, "product", productID); err != nil {
		return nil, "", err
	}
	return a.store.Rollouts(ctx, productID, pg.Normalize())
}

// Rollout returns a rollout.
func (a *App) Rollout(ctx context.Context, id string) (*catalog.Rollout, error) {
	if err := checkID(catalog.PrefixRollout, "rollout", id); err != nil {
		return nil, err
	}
	return a.store.Rollout(ctx, id)
}

// UpdateRollout changes a rollout's percentage or status; a killed or
// completed rollout no longer changes.
func (a *App) UpdateRollout(ctx context.Context, id string, in RolloutPatch) (*catalog.Rollout, error) {
	if err := checkID(catalog.PrefixRollout, "rollout", id); err != nil {
		return nil, err
	}
	if in.Percentage != nil {
		if err := validPercentage(*in.Percentage); err != nil {
			return nil, err
		}
	}
	sched, gate, err := validateRolloutRules(in.Schedule, in.HealthGate)
	if err != nil {
		return nil, err
	}
	return a.store.UpdateRollout(ctx, id, func(ro *catalog.Rollout) error {
		if err := in.Unchanged.check(ro); err != nil {
			return err
		}
		if ro.Status == catalog.RolloutKilled || ro.Status == catalog.RolloutCompleted {
			return catalog.Errorf(catalog.ECONFLICT, "rollout %s is %s and can no longer change", id, ro.Status)
		}
		if in.Percentage != nil {
			ro.Percentage = *in.Percentage
		}
		if in.Status != nil {
			ro.Status = *in.Status
		}
		if in.Schedule != nil {
			ro.Schedule = sched
		}
		if in.HealthGate != nil {
			ro.HealthGate = gate
		}
		ro.UpdatedAt = a.now()
		return nil
	})
}
