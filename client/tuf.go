package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/outpost/outpost/internal/tuf"
)

// AnswerError names the field of an update answer that the verified TUF
// metadata refuses (errors.As; it also matches ErrVerification).
type AnswerError = tuf.AnswerError

// tufMode is the client's TUF trust: the tenant, its root.json (used
// once, to initialise) and the state directory.
type tufMode struct {
	tenantID string
	root     []byte
	dir      string
}

// WithTUF verifies end to end with the tenant's TUF repository (trust:
// tuf on the mirror): trusted metadata is kept in stateDir (files 0600,
// directories 0700) across runs, so rollback and freeze are refused, and
// Download binds the answer to the query, the installed version and the
// release's status in the current metadata before it fetches a byte.
// root is the tenant's root.json from the vendor; it initialises
// stateDir once, afterwards the root chain walked is what counts.
func WithTUF(tenantID string, root []byte, stateDir string) Option {
	return func(c *Client) error {
		switch {
		case tenantID == "":
			return errors.New("tuf: tenant id is required")
		case stateDir == "":
			return errors.New("tuf: state directory is required")
		}
		c.tuf = &tufMode{tenantID: tenantID, root: root, dir: stateDir}
		return nil
	}
}

// RefreshTUF brings the trusted metadata in the state directory up to
// date from the server's /tuf/ (a mirror's; with WithServerKind
// KindControlPlane, the tenant's repository on the control plane,
// /v1/tenants/{tenant}/tuf/) and returns the verified repository.
func (c *Client) RefreshTUF(ctx context.Context) (*tuf.Repository, error) {
	base := "/tuf/"
	if c.kind == KindControlPlane && c.tuf != nil {
		base = c.cpTUFBase()
	}
	return c.refreshTUF(ctx, base)
}

// cpTUFBase is where the control plane serves the tenant's repository.
func (c *Client) cpTUFBase() string { return "/v1/tenants/" + c.tuf.tenantID + "/tuf/" }

// refreshTUF is RefreshTUF from the repository at base.
func (c *Client) refreshTUF(ctx context.Context, base string) (*tuf.Repository, error) {
	if c.tuf == nil {
		return nil, fmt.Errorf("%w: tuf: not configured (WithTUF)", ErrConfig)
	}
	if err := os.MkdirAll(c.tuf.dir, 0o700); err != nil {
		return nil, fmt.Errorf("tuf state: %w", err)
	}
	store := tuf.DirStore{Dir: c.tuf.dir}
	if _, err := store.Get(ctx, "metadata/root.json"); errors.Is(err, tuf.ErrNotFound) {
		if len(c.tuf.root) == 0 {
			return nil, fmt.Errorf("%w: tuf: no trusted root in %s: give the tenant's root.json", ErrConfig, c.tuf.dir)
		}
		if err := tuf.Init(ctx, store, c.tuf.tenantID, c.tuf.root); err != nil {
			return nil, fmt.Errorf("%w: tuf: %w", ErrVerification, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("tuf state: %w", err)
	}
	tc := tuf.NewClient(c.tuf.tenantID, tufFetcher{c: c, base: base}, store, tuf.ClientOptions{Now: c.now})
	if _, err := tc.Update(ctx); err != nil {
		if errors.Is(err, ErrNetwork) {
			return nil, fmt.Errorf("tuf refresh: %w", err)
		}
		return nil, fmt.Errorf("%w: tuf refresh: %w", ErrVerification, err)
	}
	return tc.Repository(), nil
}

// checkTUFRepo refreshes the metadata and binds the decision to the query:
// it returns the signed target to download and the verified repository.
func (c *Client) checkTUFRepo(ctx context.Context, d *Decision) (tuf.Target, *tuf.Repository, error) {
	if d.query == nil {
		return tuf.Target{}, nil, fmt.Errorf("%w: tuf: the decision did not come from Check", ErrConfig)
	}
	repo, err := c.RefreshTUF(ctx)
	if err != nil {
		return tuf.Target{}, nil, err
	}
	q := d.query
	t, err := tuf.CheckAnswer(repo, tuf.AnswerQuery{
		TenantID: c.tuf.tenantID, Product: q.Product, Channel: q.Channel, Platform: q.Platform, Arch: q.Arch,
		InstallerType: q.InstallerType, Version: q.Version,
	}, tuf.Answer{
		ReleaseID: d.Release.ReleaseID, ProductID: d.Release.ProductID, Channel: d.Release.Channel, Version: d.Release.Version,
		ArtifactID: d.Artifact.ArtifactID, SHA256: d.Artifact.SHA256, SizeBytes: d.Artifact.SizeBytes, Target: d.Artifact.Target,
	}, c.now())
	if err != nil {
		return tuf.Target{}, nil, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	return t, repo, nil
}

// tufFetcher reads the server's repository tree under base (a mirror's
// /tuf/, or the tenant's on the control plane).
type tufFetcher struct {
	c    *Client
	base string
}

func (f tufFetcher) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	if err := tuf.CheckPath(path); err != nil {
		return nil, err
	}
	u, err := f.c.resolve(f.base + path)
	if err != nil {
		return nil, err
	}
	req, err := f.c.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.c.send(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		drainClose(resp.Body)
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		defer drainClose(resp.Body)
		return nil, fmt.Errorf("%s: %w", path, responseError(resp))
	case resp.ContentLength > maxBytes:
		drainClose(resp.Body)
		return nil, fmt.Errorf("%s: %d bytes: %w", path, resp.ContentLength, tuf.ErrTooLarge)
	}
	return resp.Body, nil
}
