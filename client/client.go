// Package client is Outpost's update client: it asks a mirror or the
// control plane whether an update is available, downloads the artifact with
// resume, and accepts it only once its size and sha256 match a snapshot
// manifest signed by the vendor's pinned keys, so a lying mirror is caught.
// It also acquires, releases and verifies licence leases, and reports
// check, download and install outcomes to a mirror (ReportEvents). Over
// HTTPS, WithCAFile pins a private CA.
//
// Vendors import it into their own applications; cmd/updatectl is a thin
// command line around it.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/tlsconf"
	"github.com/outpost/outpost/internal/wire"
)

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "outpost-client/1"

// DefaultBackoff is the first wait before Download resumes.
const DefaultBackoff = 500 * time.Millisecond

// maxJSONBody caps every JSON answer the client decodes (hostile server).
const maxJSONBody = 1 << 20

// Client talks to one Outpost server: a mirror or the control plane.
// It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
	// vendorKeys and tenantID verify vendor-signed (online) leases
	// (WithTrustedKeys, WithTenant).
	vendorKeys map[string]ed25519.PublicKey
	tenantID   string
	retries    int
	backoff    time.Duration
	reqTries   int
	reqWithin  time.Duration
	kind       ServerKind
	now        func() time.Time

	mu       sync.Mutex
	detected ServerKind // KindAuto until serverKind has asked
	tuf      *tufMode   // WithTUF

}

// ServerKind tells the lease calls which API the server speaks.
type ServerKind int

const (
	// KindAuto asks the server once (HEAD /v1/snapshot exists only on a
	// mirror).
	KindAuto ServerKind = iota
	// KindMirror is a mirror daemon.
	KindMirror
	// KindControlPlane is the vendor's control plane.
	KindControlPlane
)

// Option configures a Client.
type Option func(*Client) error

// WithToken sets the bearer token (a tenant token for the control plane, a
// client token for a mirror that requires one).
func WithToken(token string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(token, "\r\n") {
			return errors.New("token: must be a single line")
		}
		c.token = token
		return nil
	}
}

// WithHTTPClient replaces http.DefaultClient.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("http client: nil")
		}
		c.http = h
		return nil
	}
}

// WithCAFile pins the CA certificates (PEM) in file: the server's
// certificate must chain to one of them, and the system roots are not
// used. It replaces the HTTP client's transport (apply it after
// WithHTTPClient, whose other settings it keeps).
func WithCAFile(file string) Option {
	return func(c *Client) error {
		if file == "" {
			return nil
		}
		pool, err := tlsconf.LoadPool(file)
		if err != nil {
			return fmt.Errorf("ca file: %w", err)
		}
		return withTLS(c, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool})
	}
}

// WithTLSConfig sets the TLS configuration of the client's transport (a
// pinned CA, a client certificate). See WithCAFile.
func WithTLSConfig(tc *tls.Config) Option {
	return func(c *Client) error {
		if tc == nil {
			return errors.New("tls config: nil")
		}
		return withTLS(c, tc)
	}
}

func withTLS(c *Client, tc *tls.Config) error {
	var tr *http.Transport
	switch t := c.http.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return errors.New("tls: the HTTP client's transport is not an *http.Transport")
	}
	tr.TLSClientConfig = tc.Clone()
	h := *c.http
	h.Transport = tr
	c.http = &h
	return nil
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.userAgent = ua; return nil }
}

// WithTrustedKeys pins the vendor's ed25519 public keys, keyed by key id
// (see KeyID), that sign online (vendor-issued) leases: VerifyLease needs
// one for such a lease. Updates and mirror-signed leases are verified
// from the tenant's TUF root instead (WithTUF).
func WithTrustedKeys(keys map[string]ed25519.PublicKey) Option {
	return func(c *Client) error {
		if c.vendorKeys == nil {
			c.vendorKeys = make(map[string]ed25519.PublicKey, len(keys))
		}
		for id, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return fmt.Errorf("trusted key %s: %d bytes, want %d", id, len(k), ed25519.PublicKeySize)
			}
			if KeyID(k) != id {
				return fmt.Errorf("trusted key %s: key id does not match the key", id)
			}
			c.vendorKeys[id] = k
		}
		return nil
	}
}

// WithTenant pins the tenant whose vendor-signed leases VerifyLease
// accepts (WithTUF pins it too).
func WithTenant(tenantID string) Option {
	return func(c *Client) error { c.tenantID = tenantID; return nil }
}

// WithRetries sets how many times Download resumes after a transport
// failure within one call (default 3), waiting backoff, 2*backoff, ...
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) error {
		if n < 0 || backoff < 0 {
			return errors.New("retries: must not be negative")
		}
		c.retries, c.backoff = n, backoff
		return nil
	}
}

// WithClock sets the clock the client verifies against (metadata
// expiry, lease validity, event times; default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return errors.New("clock: must not be nil")
		}
		c.now = now
		return nil
	}
}

// WithServerKind says which lease API the server speaks (default KindAuto).
func WithServerKind(k ServerKind) Option {
	return func(c *Client) error { c.kind = k; return nil }
}

// New returns a client for the server at baseURL (http or https). An
// empty baseURL makes an offline client: VerifyLease with an envelope in
// hand works, calls that need a server fail with ErrConfig.
func New(baseURL string, opts ...Option) (*Client, error) {
	var base *url.URL
	if baseURL != "" {
		u, err := url.Parse(strings.TrimRight(baseURL, "/"))
		if err != nil {
			return nil, fmt.Errorf("%w: server url: %w", ErrConfig, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("%w: server url %q: scheme must be http or https", ErrConfig, baseURL)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("%w: server url %q: no host", ErrConfig, baseURL)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%w: server url %q: must not have user info, a query or a fragment", ErrConfig, baseURL)
		}
		base = u
	}
	c := &Client{
		base:      base,
		http:      http.DefaultClient,
		userAgent: DefaultUserAgent,
		retries:   3,
		backoff:   DefaultBackoff,
		reqTries:  DefaultRequestTries,
		reqWithin: DefaultRequestWithin,
		now:       time.Now,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return c, nil
}

// resolve turns a server-relative path (or an absolute URL) into a URL.
func (c *Client) resolve(ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", ref, err)
	}
	if c.base == nil {
		return nil, fmt.Errorf("%w: no server url", ErrConfig)
	}
	if r.IsAbs() {
		if r.Scheme != "http" && r.Scheme != "https" {
			return nil, fmt.Errorf("url %q: scheme must be http or https", ref)
		}
		return r, nil
	}
	if !strings.HasPrefix(r.Path, "/") {
		return nil, fmt.Errorf("url %q: must be absolute or start with /", ref)
	}
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + r.Path
	u.RawPath = ""
	if r.RawPath != "" {
		u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + r.RawPath
	}
	u.RawQuery = r.RawQuery
	return &u, nil
}

// sameServer reports whether u points at the configured server, the only
// place the bearer token may go.
func (c *Client) sameServer(u *url.URL) bool {
	return c.base != nil && u.Scheme == c.base.Scheme && strings.EqualFold(u.Host, c.base.Host)
}

func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" && c.sameServer(u) {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send performs req and maps transport failures to ErrNetwork.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ctxErr)
		}
		if hint := tlsHint(err); hint != "" {
			return nil, fmt.Errorf("%s %s: %w: %s: %w", req.Method, req.URL.Path, ErrNetwork, hint, err)
		}
		return nil, fmt.Errorf("%s %s: %w: %w", req.Method, req.URL.Path, ErrNetwork, err)
	}
	return resp, nil
}

// tlsHint says what to do about a server certificate the client does not
// trust, or "".
func tlsHint(err error) string {
	var ua x509.UnknownAuthorityError
	var ve *tls.CertificateVerificationError
	var he x509.HostnameError
	switch {
	case errors.As(err, &he):
		return "the server's TLS certificate does not name this host"
	case errors.As(err, &ua), errors.As(err, &ve):
		return "the server's TLS certificate is not signed by a trusted CA (pin the site CA with --ca-file / WithCAFile)"
	}
	return ""
}

// doJSON sends a request with an optional JSON body, expects one of the
// ok statuses and decodes the answer into out (when out is not nil). A GET
// is retried as WithRequestRetries says.
func (c *Client) doJSON(ctx context.Context, method, path string, in, out any, ok ...int) error {
	if method == http.MethodGet && in == nil {
		return c.idempotent(ctx, func() error { return c.doJSONOnce(ctx, method, path, in, out, ok...) })
	}
	return c.doJSONOnce(ctx, method, path, in, out, ok...)
}

func (c *Client) doJSONOnce(ctx context.Context, method, path string, in, out any, ok ...int) error {
	u, err := c.resolve(path)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = strings.NewReader(string(b))
	}
	req, err := c.newRequest(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret, _ := ctx.Value(leaseSecretKey{}).(string); secret != "" {
		req.Header.Set(wire.HeaderLeaseSecret, secret)
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if !statusIn(resp.StatusCode, ok) {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := decodeJSON(resp.Body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	return nil
}

func statusIn(s int, ok []int) bool {
	for _, o := range ok {
		if s == o {
			return true
		}
	}
	return false
}

// decodeJSON decodes one capped JSON document.
func decodeJSON(r io.Reader, out any) error {
	lr := &io.LimitedReader{R: r, N: maxJSONBody + 1}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(out); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("%w: answer larger than %d bytes", ErrProtocol, maxJSONBody)
		}
		var ne interface{ Timeout() bool }
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
			return fmt.Errorf("decode answer: %w: %w", ErrNetwork, err)
		}
		return fmt.Errorf("%w: decode answer: %w", ErrProtocol, err)
	}
	return nil
}

// drainClose reads a little of what is left so the connection can be
// reused, then closes.
func drainClose(rc io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	rc.Close()
}
