package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// LeaseRequest asks for a licence seat for one subject.
type LeaseRequest struct {
	EntitlementID string
	SubjectType   string // user, machine or device
	SubjectID     string
	// HolderSecret is the secret an earlier AcquireLease returned
	// (Lease.HolderSecret): renewing the subject's active lease needs it.
	// Sent in the Outpost-Lease-Secret header.
	HolderSecret string
}

// Lease is a granted lease; Token is the signed lease token the
// application keeps and verifies with VerifyLease.
type Lease struct {
	LeaseID       string    `json:"lease_id"`
	EntitlementID string    `json:"entitlement_id,omitempty"`
	SubjectType   string    `json:"subject_type,omitempty"`
	SubjectID     string    `json:"subject_id,omitempty"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	ExpiresAt     time.Time `json:"expires_at"`
	Token         string    `json:"token"`
	// HolderSecret binds the lease to this holder. It is returned once,
	// by the acquire that took the lease (a renewal keeps the one sent);
	// keep it private (updatectl keeps it in its 0600 state file):
	// renewing and releasing the lease need it.
	HolderSecret string `json:"holder_secret,omitempty"`
}

// LeaseRef names a lease to release: by LeaseID on the control plane, by
// EntitlementID, SubjectType and SubjectID on a mirror (SubjectType may be
// empty when the subject holds leases as one type only).
type LeaseRef struct {
	LeaseID       string
	EntitlementID string
	SubjectType   string
	SubjectID     string
	HolderSecret  string // the lease's holder secret (Lease.HolderSecret)
}

// Ref returns what ReleaseLease needs to release l.
func (l *Lease) Ref() LeaseRef {
	return LeaseRef{LeaseID: l.LeaseID, EntitlementID: l.EntitlementID, SubjectType: l.SubjectType, SubjectID: l.SubjectID, HolderSecret: l.HolderSecret}
}

// LeaseClaims are the verified contents of a lease token.
type LeaseClaims struct {
	LeaseID       string
	EntitlementID string
	TenantID      string
	ProductID     string
	SubjectType   string
	SubjectID     string
	Features      []string
	IssuedAt      time.Time
	ExpiresAt     time.Time
	UsableUntil   time.Time // expires_at plus the offline grace
	KeyID         string
	Issuer        string // "vendor" or "mirror:<mirror_id>"
}

func (r LeaseRequest) validate() error {
	if !validID(r.EntitlementID) {
		return fmt.Errorf("%w: lease: entitlement id %q is malformed", ErrConfig, short(r.EntitlementID))
	}
	if err := catalog.ValidateEnum("subject_type", r.SubjectType, catalog.SubjectTypes); err != nil {
		return fmt.Errorf("%w: lease: %w", ErrConfig, err)
	}
	if err := license.ValidateSubjectID("subject_id", r.SubjectID); err != nil {
		return fmt.Errorf("%w: lease: %w", ErrConfig, err)
	}
	return nil
}

// AcquireLease takes (or renews) a seat for a subject. On a mirror it is
// PUT /v1/leases/{subject_id}; on the control plane POST
// /v1/entitlements/{id}/leases. With KindAuto the client asks the server
// which it is, once.
func (c *Client) AcquireLease(ctx context.Context, r LeaseRequest) (*Lease, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	kind, err := c.serverKind(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	var l Lease
	ctx = withLeaseSecret(ctx, r.HolderSecret)
	if kind == KindMirror {
		body := map[string]string{"entitlement_id": r.EntitlementID, "subject_type": r.SubjectType}
		err = c.doJSON(ctx, "PUT", "/v1/leases/"+url.PathEscape(r.SubjectID), body, &l, 200, 201)
	} else {
		body := map[string]string{"subject_type": r.SubjectType, "subject_id": r.SubjectID}
		err = c.doJSON(ctx, "POST", "/v1/entitlements/"+r.EntitlementID+"/leases", body, &l, 200, 201)
	}
	if err == nil && l.HolderSecret == "" {
		l.HolderSecret = r.HolderSecret // a renewal: the secret stays
	}
	return c.leaseResult(&l, r, err)
}

func (c *Client) leaseResult(l *Lease, r LeaseRequest, err error) (*Lease, error) {
	if err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	if l.Token == "" || l.LeaseID == "" {
		return nil, fmt.Errorf("acquire lease: %w: answer has no lease_id or token", ErrProtocol)
	}
	if l.EntitlementID == "" {
		l.EntitlementID = r.EntitlementID
	}
	if l.SubjectType == "" {
		l.SubjectType = r.SubjectType
	}
	if l.SubjectID == "" {
		l.SubjectID = r.SubjectID
	}
	return l, nil
}

// ReleaseLease gives a seat back. A mirror needs EntitlementID and
// SubjectID (DELETE /v1/leases/{subject_id}?entitlement_id=&subject_type=), the control
// plane LeaseID (DELETE /v1/leases/{lease_id}).
func (c *Client) ReleaseLease(ctx context.Context, ref LeaseRef) error {
	kind, err := c.serverKind(ctx)
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	var p string
	if kind == KindMirror {
		if ref.SubjectID == "" || !validID(ref.EntitlementID) {
			return fmt.Errorf("%w: release lease: a mirror needs the entitlement id and subject id", ErrConfig)
		}
		q := url.Values{"entitlement_id": {ref.EntitlementID}}
		if ref.SubjectType != "" {
			q.Set("subject_type", ref.SubjectType)
		}
		p = "/v1/leases/" + url.PathEscape(ref.SubjectID) + "?" + q.Encode()
	} else {
		if !validID(ref.LeaseID) {
			return fmt.Errorf("%w: release lease: the control plane needs the lease id", ErrConfig)
		}
		p = "/v1/leases/" + ref.LeaseID
	}
	if err := c.doJSON(withLeaseSecret(ctx, ref.HolderSecret), "DELETE", p, nil, nil, 200, 204); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// serverKind returns the configured kind, or asks the server once: only a
// mirror has GET /v1/snapshot (the control plane answers 404 or 405).
func (c *Client) serverKind(ctx context.Context) (ServerKind, error) {
	if c.kind != KindAuto {
		return c.kind, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detected != KindAuto {
		return c.detected, nil
	}
	u, err := c.resolve("/v1/snapshot")
	if err != nil {
		return KindAuto, err
	}
	var resp *http.Response
	err = c.idempotent(ctx, func() error {
		req, err := c.newRequest(ctx, "HEAD", u, nil)
		if err != nil {
			return err
		}
		resp, err = c.send(req)
		return err
	})
	if err != nil {
		return KindAuto, fmt.Errorf("detect server kind: %w", err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		c.detected = KindControlPlane
	default:
		c.detected = KindMirror
	}
	return c.detected, nil
}

// VerifyLease verifies a lease token. A vendor-signed (online) token is
// checked offline against the vendor keys pinned with WithTrustedKeys and
// the tenant when there are any; otherwise, and for a mirror-signed
// token, WithTUF is needed: the chain starts at the tenant's root, root ->
// TUF metadata (refreshed from the server into the state directory: a
// mirror's /tuf/, or the tenant's repository on the control plane when
// the server is one) -> the vendor key its lease_keys document names, or
// the mirror key of mirror_keys -> lease. Every rejection wraps
// ErrVerification.
func (c *Client) VerifyLease(ctx context.Context, token string) (*LeaseClaims, error) {
	claims, _, err := license.Parse(token)
	if err != nil {
		return nil, fmt.Errorf("%w: lease: %w", ErrVerification, err)
	}
	vendor := claims.Issuer == license.IssuerVendor
	if vendor && len(c.vendorKeys) > 0 {
		if err := c.requireVendorKeys(); err != nil {
			return nil, err
		}
		tenant := c.tenantID
		if c.tuf != nil {
			tenant = c.tuf.tenantID
		}
		v, err := license.NewVerifier(c.vendorKeys, tenant)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return c.verifiedLease(token, v)
	}
	if err := c.requireTUF(); err != nil {
		return nil, err
	}
	return c.verifyLeaseTUF(ctx, token, vendor)
}

// verifyLeaseTUF verifies a token along root -> TUF metadata -> mirror
// or vendor key (WithTUF). A vendor token's metadata comes from the
// repository of the server's kind (probed unless WithServerKind), a
// mirror token's from the server's /tuf/ (RefreshTUF).
func (c *Client) verifyLeaseTUF(ctx context.Context, token string, vendor bool) (*LeaseClaims, error) {
	base := "/tuf/"
	if vendor || c.kind == KindControlPlane {
		kind, err := c.serverKind(ctx)
		if err != nil {
			return nil, fmt.Errorf("verify lease: %w", err)
		}
		if kind == KindControlPlane {
			base = c.cpTUFBase()
		}
	}
	repo, err := c.refreshTUF(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("verify lease: %w", err)
	}
	m, err := repo.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%w: lease: %w", ErrVerification, err)
	}
	v, err := license.NewTUFVerifier(c.vendorKeys, c.tuf.tenantID, m)
	if err != nil {
		return nil, fmt.Errorf("%w: lease: %w", ErrVerification, err)
	}
	return c.verifiedLease(token, v)
}

// verifiedLease checks token with v and returns its claims.
func (c *Client) verifiedLease(token string, v *license.Verifier) (*LeaseClaims, error) {
	vc, err := license.Verify(token, v, c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: lease: %w", ErrVerification, err)
	}
	return &LeaseClaims{
		LeaseID:       vc.LeaseID,
		EntitlementID: vc.EntitlementID,
		TenantID:      vc.TenantID,
		ProductID:     vc.ProductID,
		SubjectType:   vc.SubjectType,
		SubjectID:     vc.SubjectID,
		Features:      vc.Features,
		IssuedAt:      time.Unix(vc.IssuedAt, 0).UTC(),
		ExpiresAt:     time.Unix(vc.ExpiresAt, 0).UTC(),
		UsableUntil:   vc.UsableUntil(),
		KeyID:         vc.KeyID,
		Issuer:        vc.Issuer,
	}, nil
}

type leaseSecretKey struct{}

// withLeaseSecret makes the request made with ctx carry a lease holder
// secret (wire.HeaderLeaseSecret).
func withLeaseSecret(ctx context.Context, secret string) context.Context {
	if secret == "" {
		return ctx
	}
	return context.WithValue(ctx, leaseSecretKey{}, secret)
}
