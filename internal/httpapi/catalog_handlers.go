package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
)

type tokenRequest struct {
	Role     string `json:"role"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
}

type tokenResponse struct {
	*catalog.Token
	Secret string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	secret, t, err := IssueToken(r.Context(), s.Store, req.Role, req.TenantID, req.Name, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenResponse{Token: t, Secret: secret})
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *Principal) error {
	writeList(w, s.Keys.PublicKeys(), "")
	return nil
}

type tenantRequest struct {
	Name     string          `json:"name"`
	Status   string          `json:"status"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req tenantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return err
	}
	if req.Status == "" {
		req.Status = catalog.TenantActive
	}
	if err := catalog.ValidateEnum("status", req.Status, []string{catalog.TenantActive, catalog.TenantSuspended}); err != nil {
		return err
	}
	md, err := catalog.NormalizeMetadata("metadata", req.Metadata)
	if err != nil {
		return err
	}
	t := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: req.Name, Status: req.Status, CreatedAt: s.now(), Metadata: md}
	if err := s.Store.CreateTenant(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Role != catalog.RoleAdmin {
		// A tenant token sees exactly its own tenant.
		t, err := s.Store.Tenant(r.Context(), p.TenantID)
		if err != nil {
			return err
		}
		writeList(w, []*catalog.Tenant{t}, "")
		return nil
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Store.Tenants(r.Context(), pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

// tenantFor loads the tenant named in the path, as p may see it.
func (s *Server) tenantFor(r *http.Request, p *Principal) (*catalog.Tenant, error) {
	id, err := pathID(r, "id", catalog.PrefixTenant, "tenant")
	if err != nil {
		return nil, err
	}
	if !p.canSeeTenant(id) {
		return nil, catalog.NotFound("tenant", id)
	}
	return s.Store.Tenant(r.Context(), id)
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

type tenantPatch struct {
	Name     *string         `json:"name"`
	Status   *string         `json:"status"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) patchTenant(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixTenant, "tenant")
	if err != nil {
		return err
	}
	var req tenantPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name != nil {
		if err := catalog.ValidateName("name", *req.Name); err != nil {
			return err
		}
	}
	if req.Status != nil {
		if err := catalog.ValidateEnum("status", *req.Status, []string{catalog.TenantActive, catalog.TenantSuspended, catalog.TenantDeleted}); err != nil {
			return err
		}
	}
	var md json.RawMessage
	if req.Metadata != nil {
		if md, err = catalog.NormalizeMetadata("metadata", req.Metadata); err != nil {
			return err
		}
	}
	t, err := s.Store.UpdateTenant(r.Context(), id, func(t *catalog.Tenant) error {
		if t.Status == catalog.TenantDeleted {
			return catalog.Errorf(catalog.ECONFLICT, "tenant %s is deleted", id)
		}
		if req.Name != nil {
			t.Name = *req.Name
		}
		if req.Status != nil {
			t.Status = *req.Status
		}
		if md != nil {
			t.Metadata = md
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

type productRequest struct {
	Name         string          `json:"name"`
	Distribution string          `json:"distribution"`
	Metadata     json.RawMessage `json:"metadata"`
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req productRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return err
	}
	if req.Distribution == "" {
		req.Distribution = catalog.DistributionLicensed
	}
	if err := catalog.ValidateEnum("distribution", req.Distribution, []string{catalog.DistributionLicensed, catalog.DistributionOpen}); err != nil {
		return err
	}
	md, err := catalog.NormalizeMetadata("metadata", req.Metadata)
	if err != nil {
		return err
	}
	pr := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: req.Name, Distribution: req.Distribution, CreatedAt: s.now(), Metadata: md}
	if err := s.Store.CreateProduct(r.Context(), pr); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pr)
	return nil
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request, p *Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Store.Products(r.Context(), pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

func (s *Server) getProduct(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixProduct, "product")
	if err != nil {
		return err
	}
	pr, err := s.Store.Product(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pr)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := storeAuditFilter(q.Get("tenant_id"), q.Get("event_type"))
	if p.Role != catalog.RoleAdmin {
		if f.TenantID != "" && f.TenantID != p.TenantID {
			writeList(w, []*catalog.AuditEvent{}, "")
			return nil
		}
		f.TenantID = p.TenantID
	}
	items, next, err := s.Store.AuditEvents(r.Context(), f, pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}
