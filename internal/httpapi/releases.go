package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
)

type releaseRequest struct {
	Channel  string          `json:"channel"`
	Version  string          `json:"version"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, p *Principal) error {
	productID, err := pathID(r, "id", catalog.PrefixProduct, "product")
	if err != nil {
		return err
	}
	var req releaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := catalog.ValidateChannel("channel", req.Channel); err != nil {
		return err
	}
	if err := catalog.ValidateVersion("version", req.Version); err != nil {
		return err
	}
	md, err := catalog.NormalizeMetadata("metadata", req.Metadata)
	if err != nil {
		return err
	}
	rel := &catalog.Release{
		ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: req.Channel,
		Version: req.Version, PublishedAt: s.now(), Status: catalog.ReleaseActive, Metadata: md,
	}
	if err := s.Store.CreateRelease(r.Context(), rel); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rel)
	return nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, p *Principal) error {
	productID, err := pathID(r, "id", catalog.PrefixProduct, "product")
	if err != nil {
		return err
	}
	if _, err := s.Store.Product(r.Context(), productID); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, next, err := s.Store.Releases(r.Context(), productID, pg)
	if err != nil {
		return err
	}
	writeList(w, items, next)
	return nil
}

type releaseView struct {
	*catalog.Release
	Artifacts []*catalog.ReleaseArtifact `json:"artifacts"`
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixRelease, "release")
	if err != nil {
		return err
	}
	rel, err := s.Store.Release(r.Context(), id)
	if err != nil {
		return err
	}
	ras, err := s.Store.ReleaseArtifacts(r.Context(), id)
	if err != nil {
		return err
	}
	if ras == nil {
		ras = []*catalog.ReleaseArtifact{}
	}
	writeJSON(w, http.StatusOK, releaseView{rel, ras})
	return nil
}

func (s *Server) revokeRelease(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixRelease, "release")
	if err != nil {
		return err
	}
	rel, err := s.Store.RevokeRelease(r.Context(), id, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

type attachRequest struct {
	ArtifactID    string `json:"artifact_id"`
	Platform      string `json:"platform"`
	Arch          string `json:"arch"`
	InstallerType string `json:"installer_type"`
	RequiresAdmin bool   `json:"requires_admin"`
}

func (s *Server) attachArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	releaseID, err := pathID(r, "id", catalog.PrefixRelease, "release")
	if err != nil {
		return err
	}
	var req attachRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !catalog.ValidID(catalog.PrefixArtifact, req.ArtifactID) {
		return catalog.Invalid("artifact_id", "%q is not an artifact id", req.ArtifactID)
	}
	if err := catalog.ValidateEnum("platform", req.Platform, catalog.Platforms); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("arch", req.Arch, catalog.Arches); err != nil {
		return err
	}
	if err := catalog.ValidateEnum("installer_type", req.InstallerType, catalog.InstallerTypes); err != nil {
		return err
	}
	ra := &catalog.ReleaseArtifact{
		ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: releaseID, ArtifactID: req.ArtifactID,
		Platform: req.Platform, Arch: req.Arch, InstallerType: req.InstallerType, RequiresAdmin: req.RequiresAdmin,
	}
	if err := s.Store.AttachArtifact(r.Context(), ra); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ra)
	return nil
}

func (s *Server) listReleaseArtifacts(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixRelease, "release")
	if err != nil {
		return err
	}
	if _, err := s.Store.Release(r.Context(), id); err != nil {
		return err
	}
	ras, err := s.Store.ReleaseArtifacts(r.Context(), id)
	if err != nil {
		return err
	}
	writeList(w, ras, "")
	return nil
}
