package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/update"
)

type entitlementRequest struct {
	ProductID string          `json:"product_id"`
	Policy    json.RawMessage `json:"policy_json"`
	StartsAt  *time.Time      `json:"starts_at"`
	EndsAt    *time.Time      `json:"ends_at"`
}

func (s *Server) createEntitlement(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	var req entitlementRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !catalog.ValidID(catalog.PrefixProduct, req.ProductID) {
		return catalog.Invalid("product_id", "%q is not a product id", req.ProductID)
	}
	if _, err := catalog.ParseEntitlementPolicy(req.Policy); err != nil {
		return err
	}
	now := s.now()
	starts := now
	if req.StartsAt != nil {
		starts = req.StartsAt.UTC()
	}
	if req.EndsAt != nil && !req.EndsAt.After(starts) {
		return catalog.Invalid("ends_at", "must be after starts_at")
	}
	e := &catalog.Entitlement{
		EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: t.TenantID, ProductID: req.ProductID,
		Policy: compactJSON(req.Policy), StartsAt: starts, EndsAt: utcPtr(req.EndsAt), CreatedAt: now, UpdatedAt: now,
	}
	if err := s.Store.CreateEntitlement(r.Context(), e); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) entitlementFor(r *http.Request, p *Principal) (*catalog.Entitlement, error) {
	id, err := pathID(r, "id", catalog.PrefixEntitlement, "entitlement")
	if err != nil {
		return nil, err
	}
	e, err := s.Store.Entitlement(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !p.canSeeTenant(e.TenantID) {
		return nil, catalog.NotFound("entitlement", id)
	}
	return e, nil
}

func (s *Server) getEntitlement(w http.ResponseWriter, r *http.Request, p *Principal) error {
	e, err := s.entitlementFor(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

type entitlementPatch struct {
	Policy   json.RawMessage `json:"policy_json"`
	StartsAt *time.Time      `json:"starts_at"`
	EndsAt   *time.Time      `json:"ends_at"`
}

func (s *Server) patchEntitlement(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixEntitlement, "entitlement")
	if err != nil {
		return err
	}
	var req entitlementPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Policy != nil {
		if _, err := catalog.ParseEntitlementPolicy(req.Policy); err != nil {
			return err
		}
	}
	e, err := s.Store.UpdateEntitlement(r.Context(), id, func(e *catalog.Entitlement) error {
		if req.Policy != nil {
			e.Policy = compactJSON(req.Policy)
		}
		if req.StartsAt != nil {
			e.StartsAt = req.StartsAt.UTC()
		}
		if req.EndsAt != nil {
			e.EndsAt = utcPtr(req.EndsAt)
		}
		if e.EndsAt != nil && !e.EndsAt.After(e.StartsAt) {
			return catalog.Invalid("ends_at", "must be after starts_at")
		}
		e.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

type subjectRequest struct {
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
}

func (q *subjectRequest) validate() error {
	if err := catalog.ValidateEnum("subject_type", q.SubjectType, catalog.SubjectTypes); err != nil {
		return err
	}
	return license.ValidateSubjectID("subject_id", q.SubjectID)
}

func (s *Server) assignSeat(w http.ResponseWriter, r *http.Request, p *Principal) error {
	e, err := s.entitlementFor(r, p)
	if err != nil {
		return err
	}
	var req subjectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	seat := &catalog.SeatAssignment{
		SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: e.EntitlementID, SubjectType: req.SubjectType,
		SubjectID: req.SubjectID, AssignedAt: s.now(), AssignedBy: p.TokenID,
	}
	if err := s.Store.AssignSeat(r.Context(), seat); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, seat)
	return nil
}

func (s *Server) listSeats(w http.ResponseWriter, r *http.Request, p *Principal) error {
	e, err := s.entitlementFor(r, p)
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Store.Seats(r.Context(), e.EntitlementID, pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *Server) revokeSeat(w http.ResponseWriter, r *http.Request, p *Principal) error {
	e, err := s.entitlementFor(r, p)
	if err != nil {
		return err
	}
	seatID, err := pathID(r, "seat", catalog.PrefixSeat, "seat assignment")
	if err != nil {
		return err
	}
	seat, err := s.Store.RevokeSeat(r.Context(), e.EntitlementID, seatID, p.TokenID, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seat)
	return nil
}

type leaseResponse struct {
	*catalog.Lease
	Token string `json:"token"`
}

// createLease issues (or renews) a vendor-signed lease token. Only its
// sha256 is stored.
func (s *Server) createLease(w http.ResponseWriter, r *http.Request, p *Principal) error {
	e, err := s.entitlementFor(r, p)
	if err != nil {
		return err
	}
	var req subjectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	pol, err := catalog.ParseEntitlementPolicy(e.Policy)
	if err != nil {
		return err
	}
	signers := s.Keys.Signers()
	if len(signers) == 0 {
		return catalog.Errorf(catalog.EUNAVAILABLE, "no active signing key")
	}
	now := s.now()
	expires := now.Add(time.Duration(pol.LeaseTTL))
	if e.EndsAt != nil && e.EndsAt.Before(expires) {
		expires = *e.EndsAt
	}
	var token string
	l := &catalog.Lease{
		LeaseID: catalog.NewID(catalog.PrefixLease), EntitlementID: e.EntitlementID, TenantID: e.TenantID,
		SubjectType: req.SubjectType, SubjectID: req.SubjectID, IssuedAt: now, ExpiresAt: expires,
	}
	l, err = s.Store.AcquireLease(r.Context(), l, func(final *catalog.Lease) (string, error) {
		token, err = license.Issue(license.Claims{
			LeaseID: final.LeaseID, EntitlementID: e.EntitlementID, TenantID: e.TenantID, ProductID: e.ProductID,
			SubjectType: final.SubjectType, SubjectID: final.SubjectID, Features: pol.Features,
			IssuedAt: final.IssuedAt.Unix(), ExpiresAt: final.ExpiresAt.Unix(), Grace: int64(time.Duration(pol.OfflineGrace) / time.Second),
			Issuer: "vendor",
		}, signers[0].Key)
		return license.TokenHash(token), err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, leaseResponse{Lease: l, Token: token})
	return nil
}

func (s *Server) releaseLease(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixLease, "lease")
	if err != nil {
		return err
	}
	l, err := s.Store.Lease(r.Context(), id)
	if err != nil {
		return err
	}
	if !p.canSeeTenant(l.TenantID) {
		return catalog.NotFound("lease", id)
	}
	l, err = s.Store.ReleaseLease(r.Context(), id, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

// updatesCheck answers a tenant's client from the tenant's latest snapshot
// with the same engine and document as the mirror.
func (s *Server) updatesCheck(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Role != catalog.RoleTenant {
		return catalog.Errorf(catalog.EFORBIDDEN, "update checks need a tenant token")
	}
	v, err := s.view(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	update.Handle(w, r, v.engine, s.now())
	return nil
}

// downloadArtifact serves a tenant's client an artifact of an ACTIVE
// release in the tenant's latest snapshot (the url of an update answer).
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixArtifact, "artifact")
	if err != nil {
		return err
	}
	if p.Role != catalog.RoleTenant {
		return s.serveArtifact(w, r, id)
	}
	v, err := s.view(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	if len(v.channels[id]) == 0 {
		return catalog.NotFound("artifact", id)
	}
	return s.serveArtifact(w, r, id)
}
