package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
)

// artifactPrefix is where MANAGED artifact bytes live in the blob store.
const artifactPrefix = "artifacts/"

// UploadInput declares what an uploaded MANAGED artifact must be. Zero
// values declare nothing; the bytes are hashed while they stream either
// way.
type UploadInput struct {
	SHA256    string // lowercase hex
	SizeBytes int64  // -1 when not declared
	Length    int64  // the transport's body length, -1 when unknown
}

// UploadArtifact stores body as a MANAGED artifact, hashing while it
// streams; nothing is stored when the bytes do not match what in declares.
func (a *App) UploadArtifact(ctx context.Context, body io.Reader, in UploadInput) (*catalog.Artifact, error) {
	e := blob.Expect{MaxSize: a.cfg.MaxArtifactBytes}
	if in.SHA256 != "" {
		if err := catalog.ValidateSHA256("sha256", in.SHA256); err != nil {
			return nil, err
		}
		e.SHA256 = in.SHA256
	}
	if in.SizeBytes >= 0 {
		if in.SizeBytes > a.cfg.MaxArtifactBytes {
			return nil, catalog.Errorf(catalog.ETOOLARGE, "size_bytes %d exceeds the limit of %d bytes", in.SizeBytes, a.cfg.MaxArtifactBytes)
		}
		e.Size = in.SizeBytes
		if in.Length > 0 && in.SizeBytes > 0 && in.Length != in.SizeBytes {
			return nil, catalog.Invalid("size_bytes", "is %d but the body is %d bytes", in.SizeBytes, in.Length)
		}
	}
	id := catalog.NewID(catalog.PrefixArtifact)
	key := artifactPrefix + id
	info, err := a.blobs.Put(ctx, key, body, e)
	switch {
	case errors.Is(err, blob.ErrMismatch):
		return nil, catalog.Invalid("sha256", "the uploaded bytes do not match the declared sha256 or size_bytes; nothing was stored")
	case errors.Is(err, blob.ErrTooLarge):
		return nil, catalog.Errorf(catalog.ETOOLARGE, "artifact exceeds the limit of %d bytes", e.MaxSize)
	case err != nil:
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return nil, catalog.Errorf(catalog.ETOOLARGE, "artifact exceeds the limit of %d bytes", me.Limit)
		}
		return nil, fmt.Errorf("store artifact bytes: %w", err)
	}
	now := a.now()
	art := &catalog.Artifact{
		ArtifactID: id, SourceType: catalog.SourceManaged, SHA256: info.SHA256, SizeBytes: info.Size,
		StoragePath: key, Status: catalog.ArtifactVerified, VerifiedAt: &now, CreatedAt: now,
	}
	if err := a.store.CreateArtifact(ctx, art); err != nil {
		// No record, so no object either.
		_ = a.blobs.Delete(context.WithoutCancel(ctx), key)
		return nil, err
	}
	return art, nil
}

// ExternalInput records an EXTERNAL artifact: a URL and what its bytes
// must be.
type ExternalInput struct {
	ExternalURL string `json:"external_url"`
	SHA256      string `json:"sha256"`
	SizeBytes   int64  `json:"size_bytes"`
}

// CreateExternalArtifact records an EXTERNAL artifact, PENDING until
// VerifyArtifact.
func (a *App) CreateExternalArtifact(ctx context.Context, in ExternalInput) (*catalog.Artifact, error) {
	u, err := url.Parse(in.ExternalURL)
	if in.ExternalURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(in.ExternalURL) > 2048 {
		return nil, catalog.Invalid("external_url", "must be an absolute http or https URL of at most 2048 bytes")
	}
	if err := catalog.ValidateSHA256("sha256", in.SHA256); err != nil {
		return nil, err
	}
	if in.SizeBytes < 0 || in.SizeBytes > a.cfg.MaxArtifactBytes {
		return nil, catalog.Invalid("size_bytes", "must be between 0 and %d", a.cfg.MaxArtifactBytes)
	}
	art := &catalog.Artifact{
		ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceExternal, SHA256: in.SHA256,
		SizeBytes: in.SizeBytes, ExternalURL: in.ExternalURL, Status: catalog.ArtifactPending, CreatedAt: a.now(),
	}
	if err := a.store.CreateArtifact(ctx, art); err != nil {
		return nil, err
	}
	return art, nil
}

// Artifact returns an artifact record.
func (a *App) Artifact(ctx context.Context, id string) (*catalog.Artifact, error) {
	if err := checkID(catalog.PrefixArtifact, "artifact", id); err != nil {
		return nil, err
	}
	return a.store.Artifact(ctx, id)
}

// Verification is an artifact after VerifyArtifact, with the reason a
// FAILED one failed.
type Verification struct {
	*catalog.Artifact
	Reason string `json:"reason,omitempty"`
}

// VerifyArtifact re-hashes an artifact from its source and records
// VERIFIED or FAILED.
func (a *App) VerifyArtifact(ctx context.Context, id string) (*Verification, error) {
	art, err := a.Artifact(ctx, id)
	if err != nil {
		return nil, err
	}
	sum, n, verr := a.hashSource(ctx, art)
	status := catalog.ArtifactVerified
	reason := ""
	switch {
	case verr != nil:
		status, reason = catalog.ArtifactFailed, verr.Error()
	case n != art.SizeBytes:
		status, reason = catalog.ArtifactFailed, fmt.Sprintf("source has %d bytes, want %d", n, art.SizeBytes)
	case sum != art.SHA256:
		status, reason = catalog.ArtifactFailed, "source sha256 "+sum+" does not match"
	}
	if ctx.Err() != nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "verification cancelled")
	}
	now := a.now()
	art, err = a.store.SetArtifactStatus(ctx, id, status, &now)
	if err != nil {
		return nil, err
	}
	return &Verification{art, reason}, nil
}

// openSource opens an artifact's bytes at their source: the blob store or
// the EXTERNAL URL.
func (a *App) openSource(ctx context.Context, art *catalog.Artifact) (io.ReadCloser, error) {
	if art.SourceType == catalog.SourceManaged {
		obj, _, err := a.blobs.Open(ctx, art.StoragePath)
		if err != nil {
			return nil, fmt.Errorf("open stored bytes: %w", err)
		}
		return obj, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, art.ExternalURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch external url: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch external url: status %s", resp.Status)
	}
	return resp.Body, nil
}

// hashSource streams an artifact's bytes from its source through sha256,
// reading at most one byte more than the declared size.
func (a *App) hashSource(ctx context.Context, art *catalog.Artifact) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ExternalTimeout)
	defer cancel()
	rc, err := a.openSource(ctx, art)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	start := time.Now()
	n, err := io.Copy(h, io.LimitReader(rc, art.SizeBytes+1))
	if err != nil {
		return "", n, fmt.Errorf("read source after %d bytes in %s: %w", n, time.Since(start).Round(time.Millisecond), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Delivery is how to hand out an artifact's bytes: a URL to send the
// client to, or the bytes.
type Delivery struct {
	Artifact *catalog.Artifact
	Redirect string        // EXTERNAL artifacts and presigned blob URLs
	Body     io.ReadCloser // otherwise; an io.ReadSeeker when local (Range requests)
	ModTime  time.Time
}

// OpenArtifact hands out an artifact: to an admin any artifact; to a
// tenant one of an ACTIVE release in the tenant's latest snapshot; to a
// mirror one of an ACTIVE release in its allowed channels. The caller
// closes Body.
func (a *App) OpenArtifact(ctx context.Context, id string) (*Delivery, error) {
	if err := checkID(catalog.PrefixArtifact, "artifact", id); err != nil {
		return nil, err
	}
	if p := principal(ctx); p.Role != catalog.RoleAdmin {
		v, err := a.view(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		allowed := len(v.channels[id]) > 0
		if p.Role == RoleMirror {
			allowed = false
			for _, ch := range p.Mirror.AllowedChannels {
				allowed = allowed || v.channels[id][ch]
			}
		}
		if !allowed {
			return nil, catalog.NotFound("artifact", id)
		}
	}
	art, err := a.store.Artifact(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &Delivery{Artifact: art}
	if art.SourceType == catalog.SourceExternal {
		d.Redirect = art.ExternalURL
		return d, nil
	}
	if a.cfg.ArtifactDelivery == DeliveryRedirect {
		u, err := a.blobs.PresignGet(ctx, art.StoragePath, a.cfg.PresignTTL)
		if err == nil {
			d.Redirect = u
			return d, nil
		}
		if !errors.Is(err, blob.ErrNotSupported) {
			return nil, err
		}
	}
	obj, info, err := a.blobs.Open(ctx, art.StoragePath)
	if err != nil {
		return nil, err
	}
	d.Body, d.ModTime = obj, info.ModTime
	if d.ModTime.IsZero() {
		d.ModTime = art.CreatedAt
	}
	return d, nil
}
