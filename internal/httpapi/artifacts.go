package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/catalog"
)

type externalArtifactRequest struct {
	ExternalURL string `json:"external_url"`
	SHA256      string `json:"sha256"`
	SizeBytes   int64  `json:"size_bytes"`
}

// createArtifact stores a MANAGED artifact from a raw or multipart body,
// hashing while streaming, or records an EXTERNAL one from a JSON body.
func (s *Server) createArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, s.Config.MaxBodyBytes)
		return s.createExternal(w, r)
	case "multipart/form-data":
		return s.createMultipart(w, r)
	default:
		q := r.URL.Query()
		e, err := s.expect(q.Get("sha256"), q.Get("size_bytes"))
		if err != nil {
			return err
		}
		if r.ContentLength > 0 && e.Size > 0 && r.ContentLength != e.Size {
			return catalog.Invalid("size_bytes", "is %d but the body is %d bytes", e.Size, r.ContentLength)
		}
		return s.storeManaged(w, r.Context(), r.Body, e)
	}
}

func (s *Server) expect(sha, size string) (blob.Expect, error) {
	e := blob.Expect{MaxSize: s.Config.MaxArtifactBytes}
	if sha != "" {
		if err := catalog.ValidateSHA256("sha256", sha); err != nil {
			return e, err
		}
		e.SHA256 = sha
	}
	if size != "" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return e, catalog.Invalid("size_bytes", "must be a non-negative integer")
		}
		if n > s.Config.MaxArtifactBytes {
			return e, catalog.Errorf(catalog.ETOOLARGE, "size_bytes %d exceeds the limit of %d bytes", n, s.Config.MaxArtifactBytes)
		}
		e.Size = n
	}
	return e, nil
}

// createMultipart reads the form fields sha256 and size_bytes (which must
// come before the file part) and streams the part named "file".
func (s *Server) createMultipart(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return catalog.Invalid("body", "malformed multipart body: %v", err)
	}
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return catalog.Invalid("file", "multipart body has no part named \"file\"")
		}
		if err != nil {
			return catalog.Invalid("body", "malformed multipart body: %v", err)
		}
		name := part.FormName()
		if name == "file" {
			e, err := s.expect(fields["sha256"], fields["size_bytes"])
			if err != nil {
				return err
			}
			return s.storeManaged(w, r.Context(), part, e)
		}
		if name != "sha256" && name != "size_bytes" {
			return catalog.Invalid(name, "unknown form field")
		}
		v, err := io.ReadAll(io.LimitReader(part, 128))
		if err != nil {
			return catalog.Invalid(name, "unreadable form field")
		}
		fields[name] = string(v)
	}
}

func (s *Server) storeManaged(w http.ResponseWriter, ctx context.Context, body io.Reader, e blob.Expect) error {
	id := catalog.NewID(catalog.PrefixArtifact)
	key := artifactPrefix + id
	info, err := s.Blobs.Put(ctx, key, body, e)
	switch {
	case errors.Is(err, blob.ErrMismatch):
		return catalog.Invalid("sha256", "the uploaded bytes do not match the declared sha256 or size_bytes; nothing was stored")
	case errors.Is(err, blob.ErrTooLarge):
		return catalog.Errorf(catalog.ETOOLARGE, "artifact exceeds the limit of %d bytes", e.MaxSize)
	case err != nil:
		var me *http.MaxBytesError
		if errors.As(err, &me) {
			return catalog.Errorf(catalog.ETOOLARGE, "artifact exceeds the limit of %d bytes", me.Limit)
		}
		return fmt.Errorf("store artifact bytes: %w", err)
	}
	now := s.now()
	a := &catalog.Artifact{
		ArtifactID: id, SourceType: catalog.SourceManaged, SHA256: info.SHA256, SizeBytes: info.Size,
		StoragePath: key, Status: catalog.ArtifactVerified, VerifiedAt: &now, CreatedAt: now,
	}
	if err := s.Store.CreateArtifact(ctx, a); err != nil {
		// No record, so no object either.
		_ = s.Blobs.Delete(context.WithoutCancel(ctx), key)
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) createExternal(w http.ResponseWriter, r *http.Request) error {
	var req externalArtifactRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := url.Parse(req.ExternalURL)
	if req.ExternalURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.ExternalURL) > 2048 {
		return catalog.Invalid("external_url", "must be an absolute http or https URL of at most 2048 bytes")
	}
	if err := catalog.ValidateSHA256("sha256", req.SHA256); err != nil {
		return err
	}
	if req.SizeBytes < 0 || req.SizeBytes > s.Config.MaxArtifactBytes {
		return catalog.Invalid("size_bytes", "must be between 0 and %d", s.Config.MaxArtifactBytes)
	}
	a := &catalog.Artifact{
		ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceExternal, SHA256: req.SHA256,
		SizeBytes: req.SizeBytes, ExternalURL: req.ExternalURL, Status: catalog.ArtifactPending, CreatedAt: s.now(),
	}
	if err := s.Store.CreateArtifact(r.Context(), a); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixArtifact, "artifact")
	if err != nil {
		return err
	}
	a, err := s.Store.Artifact(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// verifyArtifact re-hashes an artifact from its source and records
// VERIFIED or FAILED.
func (s *Server) verifyArtifact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, err := pathID(r, "id", catalog.PrefixArtifact, "artifact")
	if err != nil {
		return err
	}
	a, err := s.Store.Artifact(r.Context(), id)
	if err != nil {
		return err
	}
	sum, n, verr := s.hashSource(r.Context(), a)
	status := catalog.ArtifactVerified
	reason := ""
	switch {
	case verr != nil:
		status, reason = catalog.ArtifactFailed, verr.Error()
	case n != a.SizeBytes:
		status, reason = catalog.ArtifactFailed, fmt.Sprintf("source has %d bytes, want %d", n, a.SizeBytes)
	case sum != a.SHA256:
		status, reason = catalog.ArtifactFailed, "source sha256 "+sum+" does not match"
	}
	if r.Context().Err() != nil {
		return catalog.Errorf(catalog.EUNAVAILABLE, "verification cancelled")
	}
	now := s.now()
	a, err = s.Store.SetArtifactStatus(r.Context(), id, status, &now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		*catalog.Artifact
		Reason string `json:"reason,omitempty"`
	}{a, reason})
	return nil
}

// hashSource streams an artifact's bytes from its source through sha256,
// reading at most one byte more than the declared size.
func (s *Server) hashSource(ctx context.Context, a *catalog.Artifact) (string, int64, error) {
	var rc io.ReadCloser
	switch a.SourceType {
	case catalog.SourceManaged:
		obj, _, err := s.Blobs.Open(ctx, a.StoragePath)
		if err != nil {
			return "", 0, fmt.Errorf("open stored bytes: %w", err)
		}
		rc = obj
	default:
		ctx, cancel := context.WithTimeout(ctx, s.Config.ExternalTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ExternalURL, nil)
		if err != nil {
			return "", 0, err
		}
		resp, err := s.HTTPClient.Do(req)
		if err != nil {
			return "", 0, fmt.Errorf("fetch external url: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", 0, fmt.Errorf("fetch external url: status %s", resp.Status)
		}
		rc = resp.Body
	}
	defer rc.Close()
	h := sha256.New()
	start := time.Now()
	n, err := io.Copy(h, io.LimitReader(rc, a.SizeBytes+1))
	if err != nil {
		return "", n, fmt.Errorf("read source after %d bytes in %s: %w", n, time.Since(start).Round(time.Millisecond), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// artifactPrefix is where MANAGED artifact bytes live in the blob store.
const artifactPrefix = "artifacts/"
