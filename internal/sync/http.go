package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	gosync "sync"
	"time"

	"github.com/outpost/outpost/internal/wire"
)

// HTTPSource fetches the tenant's TUF repository from the control plane
// (/v1/mirror/tuf/…, with its mirror record and status reports) or from
// an upstream mirror (/tuf/…).
type HTTPSource struct {
	base     *url.URL
	token    string
	upstream bool
	client   *http.Client
	// The last TUF timestamp and its ETag (If-None-Match).
	tsMu   gosync.Mutex
	tsETag string
	tsBody []byte
}

// NewControlPlane is a source reading the vendor's control plane with the
// mirror credential. client may be nil.
func NewControlPlane(baseURL, credential string, client *http.Client) (*HTTPSource, error) {
	return newHTTP(baseURL, credential, false, client)
}

// UpstreamSource reads another mirror (chained mirrors). Unlike the
// control plane it has no mirror record and takes no status reports.
type UpstreamSource struct{ h *HTTPSource }

// NewUpstream is a source reading another mirror; token is its client
// token, or "".
func NewUpstream(baseURL, token string, client *http.Client) (*UpstreamSource, error) {
	h, err := newHTTP(baseURL, token, true, client)
	if err != nil {
		return nil, err
	}
	return &UpstreamSource{h: h}, nil
}

// Name implements Source.
func (u *UpstreamSource) Name() string { return u.h.Name() }

func newHTTP(baseURL, token string, upstream bool, client *http.Client) (*HTTPSource, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("source url %q: must be an http(s) URL", baseURL)
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
	return &HTTPSource{base: u, token: token, upstream: upstream, client: &c}, nil
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
