package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/wire"
)

// HTTPSource fetches from the control plane (/v1/mirror/…) or from an
// upstream mirror (/v1/snapshot, /v1/artifacts/by-sha256/…).
type HTTPSource struct {
	base     *url.URL
	token    string
	upstream bool
	client   *http.Client
	maxEnv   int64
	// The last TUF timestamp and its ETag (If-None-Match).
	tsMu   gosync.Mutex
	tsETag string
	tsBody []byte
}

// NewControlPlane is a source reading the vendor's control plane with the
// mirror credential. client may be nil.
func NewControlPlane(baseURL, credential string, client *http.Client, maxEnvelope int64) (*HTTPSource, error) {
	return newHTTP(baseURL, credential, false, client, maxEnvelope)
}

// UpstreamSource reads another mirror (chained mirrors). Unlike the
// control plane it has no mirror record and takes no status reports.
type UpstreamSource struct{ h *HTTPSource }

// NewUpstream is a source reading another mirror; token is its client
// token, or "".
func NewUpstream(baseURL, token string, client *http.Client, maxEnvelope int64) (*UpstreamSource, error) {
	h, err := newHTTP(baseURL, token, true, client, maxEnvelope)
	if err != nil {
		return nil, err
	}
	return &UpstreamSource{h: h}, nil
}

// Name implements Source.
func (u *UpstreamSource) Name() string { return u.h.Name() }

// Snapshot implements Source: the upstream's held envelope, whatever
// after is (verification tells an unchanged one apart).
func (u *UpstreamSource) Snapshot(ctx context.Context, after int64) ([]byte, error) {
	return u.h.Snapshot(ctx, after)
}

// Artifact implements Source, by sha256.
func (u *UpstreamSource) Artifact(ctx context.Context, a snapshot.Artifact, offset int64) (*fetch.Body, error) {
	return u.h.Artifact(ctx, a, offset)
}

func newHTTP(baseURL, token string, upstream bool, client *http.Client, maxEnv int64) (*HTTPSource, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("source url %q: must be an http(s) URL", baseURL)
	}
	if maxEnv <= 0 {
		maxEnv = snapshot.DefaultMaxSize
	}
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport}
	}
	c := *client
	host, scheme := u.Host, u.Scheme
	// Follow redirects (presigned S3, external URLs) but never hand the
	// credential to another host, nor to ours over another scheme (an
	// https → http downgrade would send it in clear). Range is kept, so a
	// resume works across the redirect.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("too many redirects")
		}
		if req.URL.Host != host || req.URL.Scheme != scheme {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &HTTPSource{base: u, token: token, upstream: upstream, client: &c, maxEnv: maxEnv}, nil
}

// Name implements Source.
func (s *HTTPSource) Name() string {
	if s.upstream {
		return "upstream " + s.base.String()
	}
	return "controlplane " + s.base.String()
}

func (s *HTTPSource) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	req.Header.Set("User-Agent", "outpost-mirror")
	return req, nil
}

// statusError turns a non-2xx answer into an error; 4xx other than 408
// and 429 are permanent, and a 429 or 503 carries its Retry-After.
func statusError(what string, resp *http.Response) error {
	err := fmt.Errorf("%s: http %d: %w", what, resp.StatusCode, wire.ReadError(resp))
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := wire.ParseRetryAfter(resp.Header.Get(wire.HeaderRetryAfter), time.Now()); ok {
			return &RetryAfterError{Err: err, After: d}
		}
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout:
		return &PermanentError{Err: err}
	}
	return err
}

// Snapshot implements Source.
func (s *HTTPSource) Snapshot(ctx context.Context, after int64) ([]byte, error) {
	path := "/v1/mirror/snapshot?after=" + strconv.FormatInt(after, 10)
	if s.upstream {
		path = "/v1/snapshot"
	}
	req, err := s.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, ErrNotModified
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError("fetch snapshot", resp)
	}
	if resp.ContentLength > s.maxEnv {
		return nil, permanent("fetch snapshot: %d bytes is over the %d byte cap", resp.ContentLength, s.maxEnv)
	}
	env, err := io.ReadAll(io.LimitReader(resp.Body, s.maxEnv+1))
	if err != nil {
		return nil, fmt.Errorf("fetch snapshot: %w", err)
	}
	if int64(len(env)) > s.maxEnv {
		return nil, permanent("fetch snapshot: over the %d byte cap", s.maxEnv)
	}
	return env, nil
}

// Artifact implements Source: a ranged GET (fetch.HTTP) followed across
// redirects.
func (s *HTTPSource) Artifact(ctx context.Context, a snapshot.Artifact, offset int64) (*fetch.Body, error) {
	path := "/v1/mirror/artifacts/" + url.PathEscape(a.ArtifactID)
	if s.upstream {
		path = "/v1/artifacts/by-sha256/" + url.PathEscape(a.SHA256)
	}
	open := fetch.HTTP(s.client.Do,
		func(ctx context.Context) (*http.Request, error) { return s.request(ctx, http.MethodGet, path, nil) },
		func(resp *http.Response) error { return statusError("fetch artifact "+a.ArtifactID, resp) })
	b, err := open(ctx, offset)
	if err != nil {
		return nil, fmt.Errorf("fetch artifact %s: %w", a.ArtifactID, err)
	}
	return b, nil
}

// Self implements SelfSource (control plane only).
func (s *HTTPSource) Self(ctx context.Context) (Self, error) {
	var out Self
	if s.upstream {
		return out, permanent("an upstream mirror has no mirror record")
	}
	req, err := s.request(ctx, http.MethodGet, "/v1/mirror/self", nil)
	if err != nil {
		return out, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return out, fmt.Errorf("fetch mirror record: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, statusError("fetch mirror record", resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("decode mirror record: %w", err)
	}
	return out, nil
}

// Report implements Reporter (control plane only).
func (s *HTTPSource) Report(ctx context.Context, r StatusReport) error {
	if s.upstream {
		return nil
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := s.request(ctx, http.MethodPost, "/v1/mirror/status", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("report status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError("report status", resp)
	}
	return nil
}
