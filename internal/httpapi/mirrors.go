package httpapi

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
)

type mirrorRequest struct {
	Name            string   `json:"name"`
	VendorURL       string   `json:"vendor_url"`
	AllowedChannels []string `json:"allowed_channels"`
	PublicKey       string   `json:"public_key"`
}

type mirrorCreated struct {
	*catalog.Mirror
	Credential string `json:"credential"`
}

func validateChannels(chs []string) ([]string, error) {
	if len(chs) == 0 {
		return nil, catalog.Invalid("allowed_channels", "must list at least one channel")
	}
	if len(chs) > 64 {
		return nil, catalog.Invalid("allowed_channels", "at most 64 channels")
	}
	out := slices.Clone(chs)
	for _, c := range out {
		if err := catalog.ValidateChannel("allowed_channels", c); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validatePublicKey(s string) error {
	if s == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return catalog.Invalid("public_key", "must be the base64 of a raw 32-byte ed25519 public key")
	}
	return nil
}

func (s *Server) createMirror(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	var req mirrorRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = "mirror"
	}
	if err := catalog.ValidateName("name", req.Name); err != nil {
		return err
	}
	if req.VendorURL != "" {
		if u, err := url.Parse(req.VendorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return catalog.Invalid("vendor_url", "must be an absolute http or https URL")
		}
	}
	chs, err := validateChannels(req.AllowedChannels)
	if err != nil {
		return err
	}
	if err := validatePublicKey(req.PublicKey); err != nil {
		return err
	}
	cred := NewCredential()
	now := s.now()
	m := &catalog.Mirror{
		MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: t.TenantID, Name: req.Name, VendorURL: req.VendorURL,
		AllowedChannels: chs, PublicKey: req.PublicKey, Status: catalog.MirrorActive, CreatedAt: now, UpdatedAt: now,
		CredentialHash: HashSecret(cred),
	}
	if m.CredentialEnc, err = s.Secrets.Seal(m.MirrorID, []byte(cred)); err != nil {
		return err
	}
	if err := s.Store.CreateMirror(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, mirrorCreated{Mirror: m, Credential: cred})
	return nil
}

type mirrorPatch struct {
	Name            *string   `json:"name"`
	AllowedChannels *[]string `json:"allowed_channels"`
	PublicKey       *string   `json:"public_key"`
	Status          *string   `json:"status"`
}

func (s *Server) patchMirror(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixMirror, "mirror")
	if err != nil {
		return err
	}
	var req mirrorPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	var chs []string
	if req.AllowedChannels != nil {
		if chs, err = validateChannels(*req.AllowedChannels); err != nil {
			return err
		}
	}
	if req.PublicKey != nil {
		if err := validatePublicKey(*req.PublicKey); err != nil {
			return err
		}
	}
	if req.Status != nil {
		if err := catalog.ValidateEnum("status", *req.Status, []string{catalog.MirrorActive, catalog.MirrorInactive}); err != nil {
			return err
		}
	}
	if req.Name != nil {
		if err := catalog.ValidateName("name", *req.Name); err != nil {
			return err
		}
	}
	m, err := s.Store.UpdateMirror(r.Context(), id, func(m *catalog.Mirror) error {
		if req.Name != nil {
			m.Name = *req.Name
		}
		if chs != nil {
			m.AllowedChannels = chs
		}
		if req.PublicKey != nil {
			m.PublicKey = *req.PublicKey
		}
		if req.Status != nil {
			m.Status = *req.Status
		}
		m.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// deleteMirror deactivates a mirror: its credential stops working at once.
// The record stays for the audit trail.
func (s *Server) deleteMirror(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixMirror, "mirror")
	if err != nil {
		return err
	}
	m, err := s.Store.UpdateMirror(r.Context(), id, func(m *catalog.Mirror) error {
		m.Status = catalog.MirrorInactive
		m.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

type mirrorSelf struct {
	MirrorID        string   `json:"mirror_id"`
	TenantID        string   `json:"tenant_id"`
	AllowedChannels []string `json:"allowed_channels"`
	Status          string   `json:"status"`
}

func (s *Server) mirrorSelf(w http.ResponseWriter, r *http.Request, p *Principal) error {
	m := p.Mirror
	writeJSON(w, http.StatusOK, mirrorSelf{MirrorID: m.MirrorID, TenantID: m.TenantID, AllowedChannels: m.AllowedChannels, Status: m.Status})
	return nil
}

// mirrorSnapshot returns the tenant's newest envelope verbatim, or 304 when
// the mirror already holds it (?after=N).
func (s *Server) mirrorSnapshot(w http.ResponseWriter, r *http.Request, p *Principal) error {
	after := int64(0)
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return catalog.Invalid("after", "must be a non-negative integer")
		}
		after = n
	}
	head, err := s.latestHead(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	if head.Sequence <= after {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	snap, err := s.Store.Snapshot(r.Context(), head.SnapshotID)
	if err != nil {
		return err
	}
	writeEnvelope(w, snap)
	return nil
}

// mirrorArtifact serves an artifact of the tenant's latest snapshot that
// belongs to an ACTIVE release in one of the mirror's channels: bytes
// (with Range), or a redirect to a presigned or external URL.
func (s *Server) mirrorArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixArtifact, "artifact")
	if err != nil {
		return err
	}
	v, err := s.view(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	allowed := false
	for _, ch := range p.Mirror.AllowedChannels {
		if v.channels[id][ch] {
			allowed = true
			break
		}
	}
	if !allowed {
		return catalog.NotFound("artifact", id)
	}
	return s.serveArtifact(w, r, id)
}

func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request, id string) error {
	a, err := s.Store.Artifact(r.Context(), id)
	if err != nil {
		return err
	}
	if a.SourceType == catalog.SourceExternal {
		http.Redirect(w, r, a.ExternalURL, http.StatusFound)
		return nil
	}
	if s.Config.ArtifactDelivery == DeliveryRedirect {
		u, err := s.Blobs.PresignGet(r.Context(), a.StoragePath, s.Config.PresignTTL)
		if err == nil {
			http.Redirect(w, r, u, http.StatusFound)
			return nil
		}
		if !errors.Is(err, blob.ErrNotSupported) {
			return err
		}
	}
	obj, info, err := s.Blobs.Open(r.Context(), a.StoragePath)
	if err != nil {
		return err
	}
	defer obj.Close()
	w.Header().Set("ETag", `"`+a.SHA256+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	modTime := info.ModTime
	if modTime.IsZero() {
		modTime = a.CreatedAt
	}
	http.ServeContent(w, r, "", modTime, obj)
	return nil
}

type mirrorStatusRequest struct {
	Status         string `json:"status"`
	LastSnapshotID string `json:"last_snapshot_id"`
	Sequence       int64  `json:"sequence"`
	Error          string `json:"error"`
}

func (s *Server) mirrorStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	var req mirrorStatusRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Status == "" {
		req.Status = catalog.MirrorActive
	}
	if err := catalog.ValidateEnum("status", req.Status, []string{catalog.MirrorActive, catalog.MirrorError}); err != nil {
		return err
	}
	if req.LastSnapshotID != "" && !catalog.ValidID(catalog.PrefixSnapshot, req.LastSnapshotID) {
		return catalog.Invalid("last_snapshot_id", "is not a snapshot id")
	}
	if len(req.Error) > 2000 {
		req.Error = req.Error[:2000]
	}
	now := s.now()
	m, err := s.Store.UpdateMirror(r.Context(), p.Mirror.MirrorID, func(m *catalog.Mirror) error {
		if m.Status == catalog.MirrorInactive {
			return catalog.Errorf(catalog.EUNAUTHORIZED, "mirror is deactivated")
		}
		m.Status = req.Status
		m.LastSyncAt = &now
		if req.LastSnapshotID != "" {
			m.LastSnapshotID = req.LastSnapshotID
		}
		m.LastSyncError = req.Error
		m.UpdatedAt = now
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}
