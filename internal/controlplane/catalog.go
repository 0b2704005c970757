package controlplane

import (
	"context"
	"encoding/json"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// ProductInput creates a product.
type ProductInput struct {
	Name         string          `json:"name"`
	Distribution string          `json:"distribution"` // default licensed
	Metadata     json.RawMessage `json:"metadata"`
}

// CreateProduct creates a product.
func (a *App) CreateProduct(ctx context.Context, in ProductInput) (*catalog.Product, error) {
	md, err := named(in.Name, &in.Distribution, "distribution", []string{catalog.DistributionLicensed, catalog.DistributionOpen}, in.Metadata)
	pr := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: in.Name, Distribution: in.Distribution, CreatedAt: a.now(), Metadata: md}
	if err == nil {
		err = a.store.CreateProduct(ctx, pr)
	}
	if err != nil {
		return nil, err
	}
	return pr, nil
}

// Products lists products.
func (a *App) Products(ctx context.Context, pg store.Page) ([]*catalog.Product, string, error) {
	return a.store.Products(ctx, pg.Normalize())
}

// Product returns a product.
func (a *App) Product(ctx context.Context, id string) (*catalog.Product, error) {
	if err := checkID(catalog.PrefixProduct, "product", id); err != nil {
		return nil, err
	}
	return a.store.Product(ctx, id)
}

// ReleaseInput creates a release.
type ReleaseInput struct {
	Channel  string          `json:"channel"`
	Version  string          `json:"version"`
	Metadata json.RawMessage `json:"metadata"`
}

// CreateRelease publishes an ACTIVE release of a product.
func (a *App) CreateRelease(ctx context.Context, productID string, in ReleaseInput) (*catalog.Release, error) {
	if err := checkID(catalog.PrefixProduct, "product", productID); err != nil {
		return nil, err
	}
	if err := catalog.ValidateChannel("channel", in.Channel); err != nil {
		return nil, err
	}
	if err := catalog.ValidateVersion("version", in.Version); err != nil {
		return nil, err
	}
	md, err := catalog.NormalizeMetadata("metadata", in.Metadata)
	if err != nil {
		return nil, err
	}
	rel := &catalog.Release{
		ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: productID, Channel: in.Channel,
		Version: in.Version, PublishedAt: a.now(), Status: catalog.ReleaseActive, Metadata: md,
	}
	if err := a.store.CreateRelease(ctx, rel); err != nil {
		return nil, err
	}
	return rel, nil
}

// Releases lists a product's releases.
func (a *App) Releases(ctx context.Context, productID string, pg store.Page) ([]*catalog.Release, string, error) {
	if _, err := a.Product(ctx, productID); err != nil {
		return nil, "", err
	}
	return a.store.Releases(ctx, productID, pg.Normalize())
}

// ReleaseView is a release with its artifacts.
type ReleaseView struct {
	*catalog.Release
	Artifacts []*catalog.ReleaseArtifact `json:"artifacts"`
}

// Release returns a release with its artifacts.
func (a *App) Release(ctx context.Context, id string) (*ReleaseView, error) {
	if err := checkID(catalog.PrefixRelease, "release", id); err != nil {
		return nil, err
	}
	rel, err := a.store.Release(ctx, id)
	if err != nil {
		return nil, err
	}
	ras, err := a.store.ReleaseArtifacts(ctx, id)
	if err != nil {
		return nil, err
	}
	if ras == nil {
		ras = []*catalog.ReleaseArtifact{}
	}
	return &ReleaseView{rel, ras}, nil
}

// RevokeRelease revokes a release (one-way).
func (a *App) RevokeRelease(ctx context.Context, id string) (*catalog.Release, error) {
	if err := checkID(catalog.PrefixRelease, "release", id); err != nil {
		return nil, err
	}
	return a.store.RevokeRelease(ctx, id, a.now())
}

// AttachInput attaches a verified artifact to a release.
type AttachInput struct {
	ArtifactID    string `json:"artifact_id"`
	Platform      string `json:"platform"`
	Arch          string `json:"arch"`
	InstallerType string `json:"installer_type"`
	RequiresAdmin bool   `json:"requires_admin"`
}

// AttachArtifact attaches an artifact to an ACTIVE release.
func (a *App) AttachArtifact(ctx context.Context, releaseID string, in AttachInput) (*catalog.ReleaseArtifact, error) {
	if err := checkID(catalog.PrefixRelease, "release", releaseID); err != nil {
		return nil, err
	}
	if !catalog.ValidID(catalog.PrefixArtifact, in.ArtifactID) {
		return nil, catalog.Invalid("artifact_id", "%q is not an artifact id", in.ArtifactID)
	}
	if err := catalog.ValidateEnum("platform", in.Platform, catalog.Platforms); err != nil {
		return nil, err
	}
	if err := catalog.ValidateEnum("arch", in.Arch, catalog.Arches); err != nil {
		return nil, err
	}
	if err := catalog.ValidateEnum("installer_type", in.InstallerType, catalog.InstallerTypes); err != nil {
		return nil, err
	}
	ra := &catalog.ReleaseArtifact{
		ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: releaseID, ArtifactID: in.ArtifactID,
		Platform: in.Platform, Arch: in.Arch, InstallerType: in.InstallerType, RequiresAdmin: in.RequiresAdmin,
	}
	if err := a.store.AttachArtifact(ctx, ra); err != nil {
		return nil, err
	}
	a.enqueueDeltas(ctx, ra)
	return ra, nil
}

// ReleaseArtifacts lists a release's artifacts.
func (a *App) ReleaseArtifacts(ctx context.Context, releaseID string) ([]*catalog.ReleaseArtifact, error) {
	if err := checkID(catalog.PrefixRelease, "release", releaseID); err != nil {
		return nil, err
	}
	if _, err := a.store.Release(ctx, releaseID); err != nil {
		return nil, err
	}
	return a.store.ReleaseArtifacts(ctx, releaseID)
}
