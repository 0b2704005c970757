package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/update"
)

type policyRequest struct {
	ProductID  string          `json:"product_id"`
	Channel    string          `json:"channel"`
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"`
	Priority   int             `json:"priority"`
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

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	var req policyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !catalog.ValidID(catalog.PrefixProduct, req.ProductID) {
		return catalog.Invalid("product_id", "%q is not a product id", req.ProductID)
	}
	if err := catalog.ValidateChannel("channel", req.Channel); err != nil {
		return err
	}
	cond, err := validatePolicy(req.Action, req.Conditions, req.Priority)
	if err != nil {
		return err
	}
	now := s.now()
	pol := &catalog.Policy{
		PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: t.TenantID, ProductID: req.ProductID, Channel: req.Channel,
		Action: req.Action, Conditions: cond, Priority: req.Priority, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreatePolicy(r.Context(), pol); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pol)
	return nil
}

func (s *Server) policyFor(r *http.Request, p *Principal) (*catalog.Policy, error) {
	id, err := pathID(r, "id", catalog.PrefixPolicy, "policy")
	if err != nil {
		return nil, err
	}
	pol, err := s.Store.Policy(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !p.canSeeTenant(pol.TenantID) {
		return nil, catalog.NotFound("policy", id)
	}
	return pol, nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, p *Principal) error {
	pol, err := s.policyFor(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pol)
	return nil
}

type policyUpdate struct {
	Action     string          `json:"action"`
	Conditions json.RawMessage `json:"conditions"`
	Priority   int             `json:"priority"`
}

// putPolicy stores a new version; the old one is kept.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixPolicy, "policy")
	if err != nil {
		return err
	}
	var req policyUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	cond, err := validatePolicy(req.Action, req.Conditions, req.Priority)
	if err != nil {
		return err
	}
	pol, err := s.Store.UpdatePolicy(r.Context(), id, func(pol *catalog.Policy) error {
		pol.Action, pol.Conditions, pol.Priority = req.Action, cond, req.Priority
		pol.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pol)
	return nil
}

func (s *Server) policyVersions(w http.ResponseWriter, r *http.Request, p *Principal) error {
	pol, err := s.policyFor(r, p)
	if err != nil {
		return err
	}
	items, err := s.Store.PolicyVersions(r.Context(), pol.PolicyID)
	if err != nil {
		return err
	}
	writeList(w, items, "")
	return nil
}

type blockedRequest struct {
	ProductID      string `json:"product_id"`
	BlockedVersion string `json:"blocked_version"`
	Reason         string `json:"reason"`
}

func (s *Server) createBlocked(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	var req blockedRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !catalog.ValidID(catalog.PrefixProduct, req.ProductID) {
		return catalog.Invalid("product_id", "%q is not a product id", req.ProductID)
	}
	if err := catalog.ValidateVersion("blocked_version", req.BlockedVersion); err != nil {
		return err
	}
	if len(req.Reason) > 1000 {
		return catalog.Invalid("reason", "must be at most 1000 bytes")
	}
	b := &catalog.BlockedVersion{
		BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: t.TenantID, ProductID: req.ProductID,
		BlockedVersion: req.BlockedVersion, Reason: req.Reason, CreatedAt: s.now(),
	}
	if err := s.Store.CreateBlockedVersion(r.Context(), b); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, b)
	return nil
}

func (s *Server) deleteBlocked(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	id, err := pathID(r, "bid", catalog.PrefixBlocked, "blocked version")
	if err != nil {
		return err
	}
	if err := s.Store.DeleteBlockedVersion(r.Context(), t.TenantID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type rolloutRequest struct {
	Channel    string   `json:"channel"`
	ReleaseID  string   `json:"release_id"`
	Percentage *float64 `json:"percentage"`
	Status     string   `json:"status"`
}

func validPercentage(p float64) error {
	if p < 0 || p > 100 || p != p {
		return catalog.Invalid("percentage", "must be between 0 and 100")
	}
	return nil
}

func (s *Server) createRollout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	productID, err := pathID(r, "id", catalog.PrefixProduct, "product")
	if err != nil {
		return err
	}
	var req rolloutRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := catalog.ValidateChannel("channel", req.Channel); err != nil {
		return err
	}
	if !catalog.ValidID(catalog.PrefixRelease, req.ReleaseID) {
		return catalog.Invalid("release_id", "%q is not a release id", req.ReleaseID)
	}
	if req.Percentage == nil {
		return catalog.Invalid("percentage", "is required")
	}
	if err := validPercentage(*req.Percentage); err != nil {
		return err
	}
	if req.Status == "" {
		req.Status = catalog.RolloutActive
	}
	if err := catalog.ValidateEnum("status", req.Status, []string{catalog.RolloutActive, catalog.RolloutPaused}); err != nil {
		return err
	}
	rel, err := s.Store.Release(r.Context(), req.ReleaseID)
	if err != nil {
		return err
	}
	if rel.ProductID != productID || rel.Channel != req.Channel {
		return catalog.Invalid("release_id", "release %s is not in product %s channel %s", req.ReleaseID, productID, req.Channel)
	}
	now := s.now()
	ro := &catalog.Rollout{
		RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: productID, Channel: req.Channel, ReleaseID: req.ReleaseID,
		Percentage: *req.Percentage, Status: req.Status, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreateRollout(r.Context(), ro); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ro)
	return nil
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, p *Principal) error {
	productID, err := pathID(r, "id", catalog.PrefixProduct, "product")
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Store.Rollouts(r.Context(), productID, pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixRollout, "rollout")
	if err != nil {
		return err
	}
	ro, err := s.Store.Rollout(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ro)
	return nil
}

type rolloutPatch struct {
	Percentage *float64 `json:"percentage"`
	Status     *string  `json:"status"`
}

func (s *Server) patchRollout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixRollout, "rollout")
	if err != nil {
		return err
	}
	var req rolloutPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Percentage != nil {
		if err := validPercentage(*req.Percentage); err != nil {
			return err
		}
	}
	ro, err := s.Store.UpdateRollout(r.Context(), id, func(ro *catalog.Rollout) error {
		if ro.Status == catalog.RolloutKilled || ro.Status == catalog.RolloutCompleted {
			return catalog.Errorf(catalog.ECONFLICT, "rollout %s is %s and can no longer change", id, ro.Status)
		}
		if req.Percentage != nil {
			ro.Percentage = *req.Percentage
		}
		if req.Status != nil {
			ro.Status = *req.Status
		}
		ro.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ro)
	return nil
}
