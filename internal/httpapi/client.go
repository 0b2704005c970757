package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/wire"
)

// Client is controlplane.Service over the control plane's HTTP API, with
// the token's role: a caller holds one Service that is either an App or a
// Client. Errors come back as *wire.Error, which unwraps to the server's
// *catalog.Error, so callers branch on catalog.ErrorCode as they would
// in-process.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client // default http.DefaultClient
}

var _ controlplane.Service = (*Client)(nil)

// maxAnswer caps a JSON answer the client reads.
const maxAnswer = 64 << 20

// send makes a request and returns a successful (2xx or 304) answer; the
// caller closes its body.
func (c *Client) send(ctx context.Context, method, path, contentType string, body io.Reader, length int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		req.ContentLength = length
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if secret, _ := ctx.Value(leaseSecretKey{}).(string); secret != "" {
		req.Header.Set(wire.HeaderLeaseSecret, secret)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, catalog.Errorf(catalog.EUNAVAILABLE, "%s %s: %v", method, path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, wire.ReadError(resp)
	}
	return resp, nil
}

// do sends in as JSON (nil: no body) and decodes the answer into out
// (nil: discarded).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	length := int64(0)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, length = bytes.NewReader(b), int64(len(b))
	}
	resp, err := c.send(ctx, method, path, "application/json", body, length)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Raw sends body (JSON, may be nil) and returns the answer's bytes: the
// CLI's escape hatch to any route.
func (c *Client) Raw(ctx context.Context, method, path string, body json.RawMessage) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	resp, err := c.send(ctx, method, path, "application/json", rd, int64(len(body)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}

// stream copies a successful answer's body to w.
func (c *Client) stream(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, path, "", nil, 0)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// esc escapes an id for a path segment.
func esc(s string) string { return url.PathEscape(s) }

// list fetches one page of a list route.
func list[T any](ctx context.Context, c *Client, path string, q url.Values, pg store.Page) ([]T, string, error) {
	if q == nil {
		q = url.Values{}
	}
	if pg.Limit > 0 {
		q.Set("limit", strconv.Itoa(pg.Limit))
	}
	if pg.Cursor != "" {
		q.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(pg.Cursor)))
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l List[T]
	if err := c.do(ctx, http.MethodGet, path, nil, &l); err != nil {
		return nil, "", err
	}
	next, err := base64.RawURLEncoding.DecodeString(l.NextCursor)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: next_cursor is not base64url", path)
	}
	return l.Items, string(next), nil
}

// one sends in and decodes the answer as a new Out.
func one[Out any](ctx context.Context, c *Client, method, path string, in any) (*Out, error) {
	out := new(Out)
	if err := c.do(ctx, method, path, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// whole fetches a list route that answers every item at once.
func whole[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	items, _, err := list[T](ctx, c, path, nil, store.Page{})
	return items, err
}

func (c *Client) CreateToken(ctx context.Context, in controlplane.TokenInput) (*controlplane.TokenCreated, error) {
	return one[controlplane.TokenCreated](ctx, c, "POST", "/v1/tokens", in)
}

func (c *Client) ListTokens(ctx context.Context, pg store.Page) ([]*catalog.Token, string, error) {
	return list[*catalog.Token](ctx, c, "/v1/tokens", nil, pg)
}

func (c *Client) RevokeToken(ctx context.Context, id string) (*catalog.Token, error) {
	return one[catalog.Token](ctx, c, "DELETE", "/v1/tokens/"+esc(id), nil)
}

func (c *Client) PublicKeys(ctx context.Context) ([]controlplane.PublicKey, error) {
	return whole[controlplane.PublicKey](ctx, c, "/v1/keys")
}

func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return c.stream(ctx, "/v1/admin/backup", w)
}

func (c *Client) AuditEvents(ctx context.Context, f store.AuditFilter, pg store.Page) ([]*catalog.AuditEvent, string, error) {
	q := url.Values{}
	if f.TenantID != "" {
		q.Set("tenant_id", f.TenantID)
	}
	if f.EventType != "" {
		q.Set("event_type", f.EventType)
	}
	return list[*catalog.AuditEvent](ctx, c, "/v1/audit-events", q, pg)
}

func (c *Client) CreateTenant(ctx context.Context, in controlplane.TenantInput) (*catalog.Tenant, error) {
	return one[catalog.Tenant](ctx, c, "POST", "/v1/tenants", in)
}

func (c *Client) Tenants(ctx context.Context, pg store.Page) ([]*catalog.Tenant, string, error) {
	return list[*catalog.Tenant](ctx, c, "/v1/tenants", nil, pg)
}

func (c *Client) Tenant(ctx context.Context, id string) (*catalog.Tenant, error) {
	return one[catalog.Tenant](ctx, c, "GET", "/v1/tenants/"+esc(id), nil)
}

func (c *Client) UpdateTenant(ctx context.Context, id string, in controlplane.TenantPatch) (*catalog.Tenant, error) {
	return one[catalog.Tenant](ctx, c, "PATCH", "/v1/tenants/"+esc(id), in)
}

func (c *Client) CreateProduct(ctx context.Context, in controlplane.ProductInput) (*catalog.Product, error) {
	return one[catalog.Product](ctx, c, "POST", "/v1/products", in)
}

func (c *Client) Products(ctx context.Context, pg store.Page) ([]*catalog.Product, string, error) {
	return list[*catalog.Product](ctx, c, "/v1/products", nil, pg)
}

func (c *Client) Product(ctx context.Context, id string) (*catalog.Product, error) {
	return one[catalog.Product](ctx, c, "GET", "/v1/products/"+esc(id), nil)
}

func (c *Client) CreateRelease(ctx context.Context, productID string, in controlplane.ReleaseInput) (*catalog.Release, error) {
	return one[catalog.Release](ctx, c, "POST", "/v1/products/"+esc(productID)+"/releases", in)
}

func (c *Client) Releases(ctx context.Context, productID string, pg store.Page) ([]*catalog.Release, string, error) {
	return list[*catalog.Release](ctx, c, "/v1/products/"+esc(productID)+"/releases", nil, pg)
}

func (c *Client) Release(ctx context.Context, id string) (*controlplane.ReleaseView, error) {
	return one[controlplane.ReleaseView](ctx, c, "GET", "/v1/releases/"+esc(id), nil)
}

func (c *Client) RevokeRelease(ctx context.Context, id string) (*catalog.Release, error) {
	return one[catalog.Release](ctx, c, "POST", "/v1/releases/"+esc(id)+"/revoke", nil)
}

func (c *Client) AttachArtifact(ctx context.Context, releaseID string, in controlplane.AttachInput) (*catalog.ReleaseArtifact, error) {
	return one[catalog.ReleaseArtifact](ctx, c, "POST", "/v1/releases/"+esc(releaseID)+"/artifacts", in)
}

func (c *Client) ReleaseArtifacts(ctx context.Context, releaseID string) ([]*catalog.ReleaseArtifact, error) {
	return whole[*catalog.ReleaseArtifact](ctx, c, "/v1/releases/"+esc(releaseID)+"/artifacts")
}

// UploadArtifact streams body; a known length (in.Length) is sent as
// Content-Length.
func (c *Client) UploadArtifact(ctx context.Context, body io.Reader, in controlplane.UploadInput) (*catalog.Artifact, error) {
	q := url.Values{}
	if in.SHA256 != "" {
		q.Set("sha256", in.SHA256)
	}
	if in.SizeBytes >= 0 {
		q.Set("size_bytes", strconv.FormatInt(in.SizeBytes, 10))
	}
	length := in.Length
	if length < 0 {
		length = -1
	}
	resp, err := c.send(ctx, "POST", "/v1/artifacts?"+q.Encode(), "application/octet-stream", body, length)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var a catalog.Artifact
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&a); err != nil {
		return nil, fmt.Errorf("upload artifact: decode answer: %w", err)
	}
	return &a, nil
}

func (c *Client) CreateExternalArtifact(ctx context.Context, in controlplane.ExternalInput) (*catalog.Artifact, error) {
	return one[catalog.Artifact](ctx, c, "POST", "/v1/artifacts", in)
}

func (c *Client) Artifact(ctx context.Context, id string) (*catalog.Artifact, error) {
	return one[catalog.Artifact](ctx, c, "GET", "/v1/artifacts/"+esc(id), nil)
}

func (c *Client) VerifyArtifact(ctx context.Context, id string) (*controlplane.Verification, error) {
	return one[controlplane.Verification](ctx, c, "POST", "/v1/artifacts/"+esc(id)+"/verify", nil)
}

// OpenArtifact downloads an artifact (admin and tenant tokens; redirects
// are followed). Delivery.Artifact carries only the id and sha256.
func (c *Client) OpenArtifact(ctx context.Context, id string) (*controlplane.Delivery, error) {
	resp, err := c.send(ctx, "GET", "/v1/artifacts/"+esc(id)+"/download", "", nil, 0)
	if err != nil {
		return nil, err
	}
	a := &catalog.Artifact{ArtifactID: id, SHA256: checksum(resp), SizeBytes: resp.ContentLength}
	return &controlplane.Delivery{Artifact: a, Body: resp.Body}, nil
}

// checksum is the sha256 a download answer names: its checksum header,
// else its ETag (a control plane that predates the header).
func checksum(resp *http.Response) string {
	if s := resp.Header.Get(wire.HeaderChecksum); s != "" {
		return s
	}
	return strings.Trim(resp.Header.Get("ETag"), `"`)
}

// ReleaseDeltas lists a release's delta builds.
func (c *Client) ReleaseDeltas(ctx context.Context, releaseID string) ([]*controlplane.DeltaJob, error) {
	return whole[*controlplane.DeltaJob](ctx, c, "/v1/releases/"+esc(releaseID)+"/deltas")
}

// OpenDelta downloads an offered delta. DeltaDelivery.Delta carries only
// the id, sha256 and size.
func (c *Client) OpenDelta(ctx context.Context, id string) (*controlplane.DeltaDelivery, error) {
	resp, err := c.send(ctx, "GET", "/v1/deltas/"+esc(id)+"/download", "", nil, 0)
	if err != nil {
		return nil, err
	}
	d := &snapshot.Delta{DeltaID: id, SHA256: checksum(resp), SizeBytes: resp.ContentLength}
	return &controlplane.DeltaDelivery{Delta: d, Body: resp.Body}, nil
}

func (c *Client) CreatePolicy(ctx context.Context, tenantID string, in controlplane.PolicyInput) (*catalog.Policy, error) {
	return one[catalog.Policy](ctx, c, "POST", "/v1/tenants/"+esc(tenantID)+"/policies", in)
}

func (c *Client) Policies(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Policy, string, error) {
	return list[*catalog.Policy](ctx, c, "/v1/tenants/"+esc(tenantID)+"/policies", nil, pg)
}

func (c *Client) Policy(ctx context.Context, id string) (*catalog.Policy, error) {
	return one[catalog.Policy](ctx, c, "GET", "/v1/policies/"+esc(id), nil)
}

func (c *Client) UpdatePolicy(ctx context.Context, id string, in controlplane.PolicyUpdate) (*catalog.Policy, error) {
	return one[catalog.Policy](ctx, c, "PUT", "/v1/policies/"+esc(id), in)
}

func (c *Client) PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error) {
	return whole[*catalog.Policy](ctx, c, "/v1/policies/"+esc(id)+"/versions")
}

func (c *Client) CreateBlockedVersion(ctx context.Context, tenantID string, in controlplane.BlockedInput) (*catalog.BlockedVersion, error) {
	return one[catalog.BlockedVersion](ctx, c, "POST", "/v1/tenants/"+esc(tenantID)+"/blocked-versions", in)
}

func (c *Client) BlockedVersions(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.BlockedVersion, string, error) {
	return list[*catalog.BlockedVersion](ctx, c, "/v1/tenants/"+esc(tenantID)+"/blocked-versions", nil, pg)
}

func (c *Client) DeleteBlockedVersion(ctx context.Context, tenantID, id string) error {
	return c.do(ctx, "DELETE", "/v1/tenants/"+esc(tenantID)+"/blocked-versions/"+esc(id), nil, nil)
}

func (c *Client) CreateRollout(ctx context.Context, productID string, in controlplane.RolloutInput) (*catalog.Rollout, error) {
	return one[catalog.Rollout](ctx, c, "POST", "/v1/products/"+esc(productID)+"/rollouts", in)
}

func (c *Client) Rollouts(ctx context.Context, productID string, pg store.Page) ([]*catalog.Rollout, string, error) {
	return list[*catalog.Rollout](ctx, c, "/v1/products/"+esc(productID)+"/rollouts", nil, pg)
}

func (c *Client) Rollout(ctx context.Context, id string) (*catalog.Rollout, error) {
	return one[catalog.Rollout](ctx, c, "GET", "/v1/rollouts/"+esc(id), nil)
}

func (c *Client) UpdateRollout(ctx context.Context, id string, in controlplane.RolloutPatch) (*catalog.Rollout, error) {
	return one[catalog.Rollout](ctx, c, "PATCH", "/v1/rollouts/"+esc(id), in)
}

func (c *Client) CreateEntitlement(ctx context.Context, tenantID string, in controlplane.EntitlementInput) (*catalog.Entitlement, error) {
	return one[catalog.Entitlement](ctx, c, "POST", "/v1/tenants/"+esc(tenantID)+"/entitlements", in)
}

func (c *Client) Entitlements(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Entitlement, string, error) {
	return list[*catalog.Entitlement](ctx, c, "/v1/tenants/"+esc(tenantID)+"/entitlements", nil, pg)
}

func (c *Client) Entitlement(ctx context.Context, id string) (*catalog.Entitlement, error) {
	return one[catalog.Entitlement](ctx, c, "GET", "/v1/entitlements/"+esc(id), nil)
}

func (c *Client) UpdateEntitlement(ctx context.Context, id string, in controlplane.EntitlementPatch) (*catalog.Entitlement, error) {
	return one[catalog.Entitlement](ctx, c, "PATCH", "/v1/entitlements/"+esc(id), in)
}

func (c *Client) AssignSeat(ctx context.Context, entitlementID string, in controlplane.Subject) (*catalog.SeatAssignment, error) {
	return one[catalog.SeatAssignment](ctx, c, "POST", "/v1/entitlements/"+esc(entitlementID)+"/seats", in)
}

func (c *Client) Seats(ctx context.Context, entitlementID string, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
	return list[*catalog.SeatAssignment](ctx, c, "/v1/entitlements/"+esc(entitlementID)+"/seats", nil, pg)
}

func (c *Client) RevokeSeat(ctx context.Context, entitlementID, seatID string) (*catalog.SeatAssignment, error) {
	return one[catalog.SeatAssignment](ctx, c, "DELETE", "/v1/entitlements/"+esc(entitlementID)+"/seats/"+esc(seatID), nil)
}

func (c *Client) AcquireLease(ctx context.Context, entitlementID string, in controlplane.Subject) (*controlplane.LeaseIssued, error) {
	return one[controlplane.LeaseIssued](withLeaseSecret(ctx, in.HolderSecret), c, "POST", "/v1/entitlements/"+esc(entitlementID)+"/leases", in)
}

func (c *Client) ReleaseLease(ctx context.Context, id, holderSecret string) (*catalog.Lease, error) {
	return one[catalog.Lease](withLeaseSecret(ctx, holderSecret), c, "DELETE", "/v1/leases/"+esc(id), nil)
}

type leaseSecretKey struct{}

// withLeaseSecret makes the request sent with ctx carry a lease holder
// secret (wire.HeaderLeaseSecret).
func withLeaseSecret(ctx context.Context, secret string) context.Context {
	if secret == "" {
		return ctx
	}
	return context.WithValue(ctx, leaseSecretKey{}, secret)
}

func (c *Client) CreateMirror(ctx context.Context, tenantID string, in controlplane.MirrorInput) (*controlplane.MirrorCreated, error) {
	return one[controlplane.MirrorCreated](ctx, c, "POST", "/v1/tenants/"+esc(tenantID)+"/mirrors", in)
}

func (c *Client) Mirrors(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Mirror, string, error) {
	return list[*catalog.Mirror](ctx, c, "/v1/tenants/"+esc(tenantID)+"/mirrors", nil, pg)
}

func (c *Client) Mirror(ctx context.Context, id string) (*catalog.Mirror, error) {
	return one[catalog.Mirror](ctx, c, "GET", "/v1/mirrors/"+esc(id), nil)
}

func (c *Client) UpdateMirror(ctx context.Context, id string, in controlplane.MirrorPatch) (*catalog.Mirror, error) {
	return one[catalog.Mirror](ctx, c, "PATCH", "/v1/mirrors/"+esc(id), in)
}

func (c *Client) DeactivateMirror(ctx context.Context, id string) (*catalog.Mirror, error) {
	return one[catalog.Mirror](ctx, c, "DELETE", "/v1/mirrors/"+esc(id), nil)
}

func (c *Client) Self(ctx context.Context) (*controlplane.MirrorSelf, error) {
	return one[controlplane.MirrorSelf](ctx, c, "GET", "/v1/mirror/self", nil)
}

func (c *Client) LatestSnapshot(ctx context.Context, after int64) (*catalog.Snapshot, error) {
	return c.envelope(ctx, "/v1/mirror/snapshot?after="+strconv.FormatInt(after, 10))
}

func (c *Client) ReportSync(ctx context.Context, in controlplane.SyncReport) (*catalog.Mirror, error) {
	return one[catalog.Mirror](ctx, c, "POST", "/v1/mirror/status", in)
}

func (c *Client) AuditHead(ctx context.Context) (*catalog.AuditHead, error) {
	return one[catalog.AuditHead](ctx, c, "GET", "/v1/mirror/audit/head", nil)
}

func (c *Client) IngestAudit(ctx context.Context, export io.Reader) (*controlplane.AuditIngest, error) {
	return c.postAudit(ctx, "/v1/mirror/audit", export)
}

// ImportMirrorAudit posts an export carried from an air-gapped mirror
// (admin).
func (c *Client) ImportMirrorAudit(ctx context.Context, export io.Reader) (*controlplane.AuditIngest, error) {
	return c.postAudit(ctx, "/v1/mirror-audit", export)
}

func (c *Client) postAudit(ctx context.Context, path string, export io.Reader) (*controlplane.AuditIngest, error) {
	resp, err := c.send(ctx, "POST", path, "application/octet-stream", export, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res controlplane.AuditIngest
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&res); err != nil {
		return nil, fmt.Errorf("ingest audit: decode answer: %w", err)
	}
	return &res, nil
}

func (c *Client) BuildSnapshot(ctx context.Context, tenantID string) (*catalog.Snapshot, error) {
	return one[catalog.Snapshot](ctx, c, "POST", "/v1/tenants/"+esc(tenantID)+"/snapshots", nil)
}

func (c *Client) Snapshots(ctx context.Context, tenantID string, pg store.Page) ([]*catalog.Snapshot, string, error) {
	return list[*catalog.Snapshot](ctx, c, "/v1/tenants/"+esc(tenantID)+"/snapshots", nil, pg)
}

func (c *Client) Snapshot(ctx context.Context, id string) (*catalog.Snapshot, error) {
	return c.envelope(ctx, "/v1/snapshots/"+esc(id))
}

// envelope reads an envelope answer (nil for 304) into a snapshot.
func (c *Client) envelope(ctx context.Context, path string) (*catalog.Snapshot, error) {
	resp, err := c.send(ctx, "GET", path, "", nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, nil
	}
	env, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	var e snapshot.Envelope
	var m struct {
		SnapshotID string    `json:"snapshot_id"`
		TenantID   string    `json:"tenant_id"`
		Sequence   int64     `json:"sequence"`
		CreatedAt  time.Time `json:"created_at"`
		ExpiresAt  time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, fmt.Errorf("GET %s: not an envelope: %w", path, err)
	}
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return nil, fmt.Errorf("GET %s: envelope payload: %w", path, err)
	}
	return &catalog.Snapshot{SnapshotID: m.SnapshotID, TenantID: m.TenantID, Sequence: m.Sequence, CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, Hash: snapshot.Hash(env), Envelope: env}, nil
}

func (c *Client) ExportBundle(ctx context.Context, o controlplane.BundleOptions, w io.Writer) (*controlplane.BundleResult, error) {
	q := url.Values{}
	if o.Since > 0 {
		q.Set("since", strconv.FormatInt(o.Since, 10))
	}
	if o.MirrorID != "" {
		q.Set("mirror_id", o.MirrorID)
	}
	if o.Format != "" {
		q.Set("format", o.Format)
	}
	if o.NoDeltas {
		q.Set("no_deltas", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/tenants/"+esc(o.TenantID)+"/bundle?"+q.Encode(), "", nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	pw := &peekWriter{w: w}
	if _, err := io.Copy(pw, resp.Body); err != nil {
		return nil, err
	}
	// The result follows the tar as a trailer (a server that predates it
	// sends none: the result then holds only the format, which the first
	// tar entry says).
	res := &controlplane.BundleResult{}
	if t := resp.Trailer.Get(wire.HeaderBundleResult); t != "" {
		if err := json.Unmarshal([]byte(t), res); err != nil {
			return nil, fmt.Errorf("bundle export: trailer %s: %w", wire.HeaderBundleResult, err)
		}
	}
	if name, _, _ := strings.Cut(string(pw.head), "\x00"); res.Format == "" && name == bundle.TUFManifestName {
		res.Format = controlplane.BundleTUF
	}
	return res, nil
}

// peekWriter passes bytes to w and keeps the first 100 (a tar header's
// name field).
type peekWriter struct {
	w    io.Writer
	head []byte
}

func (p *peekWriter) Write(b []byte) (int, error) {
	if n := 100 - len(p.head); n > 0 {
		p.head = append(p.head, b[:min(n, len(b))]...)
	}
	return p.w.Write(b)
}

// maxRoot caps a root.json the client reads (a root is a few KiB).
const maxRoot = 1 << 20

// TUFRoot fetches a tenant's newest root.json, byte for byte.
func (c *Client) TUFRoot(ctx context.Context, tenantID string) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/tenants/"+esc(tenantID)+"/root", "", nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRoot+1))
	if err != nil {
		return nil, fmt.Errorf("root of %s: %w", tenantID, err)
	}
	if len(b) > maxRoot {
		return nil, fmt.Errorf("root of %s: larger than %d bytes", tenantID, maxRoot)
	}
	return b, nil
}
