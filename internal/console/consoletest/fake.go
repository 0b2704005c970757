// Package consoletest provides an in-memory console.Backend for tests and
// demos: tenants, products, releases (with streamed uploads hashed and
// counted, never kept), rollouts, policies, mirrors, entitlements, tokens,
// an audit log and fleet series, with the API's authorization applied to
// the principal in the context.
package consoletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/svgchart"
)

// Fake is an in-memory console.Backend. The zero value is not usable; use
// New. All fields are guarded by mu; tests may read them under Lock.
type Fake struct {
	mu sync.Mutex

	Now func() time.Time

	tokens          map[string]*tok // by secret
	TenantList      []*catalog.Tenant
	ProductList     []*catalog.Product
	ReleaseList     []*catalog.Release
	Uploads         map[string]Upload // release id → what was streamed
	RolloutList     []*console.RolloutInfo
	PolicyHistory   map[string][]*catalog.Policy // policy id → versions
	Blocked         []*catalog.BlockedVersion
	MirrorList      []*console.MirrorInfo
	EntitlementList []*console.EntitlementInfo
	Audit           []*catalog.AuditEvent
	Webhooks        []*console.WebhookDelivery // nil: not implemented
	WebhookSubs     []*console.WebhookSubscription
	Redelivered     []string // delivery ids requeued, in order
	Series          map[string]*console.RolloutSeries
	Usage           map[string]*console.UsageSeries
	ChainBroken     string
	// TokenCheckErr, when set, is what TokenPrincipal returns (a backend
	// that cannot answer).
	TokenCheckErr error
}

// Upload records a streamed artifact.
type Upload struct {
	Name   string
	Size   int64
	SHA256 string
}

type tok struct {
	info   *console.TokenInfo
	secret string
}

// New returns an empty fake whose clock is now.
func New(now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{Now: now, tokens: map[string]*tok{}, Uploads: map[string]Upload{}, PolicyHistory: map[string][]*catalog.Policy{},
		Series: map[string]*console.RolloutSeries{}, Usage: map[string]*console.UsageSeries{}}
}

// AddToken registers a token secret for a role (and tenant) and returns
// its principal.
func (f *Fake) AddToken(secret, role, tenantID, name string) console.Principal {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &catalog.Token{TokenID: catalog.NewID(catalog.PrefixToken), Role: role, TenantID: tenantID, Name: name, CreatedAt: f.Now()}
	f.tokens[secret] = &tok{info: &console.TokenInfo{Token: t}, secret: secret}
	return console.Principal{Role: role, TenantID: tenantID, TokenID: t.TokenID}
}

func (f *Fake) audit(ctx context.Context, tenantID, typ string, payload any) {
	p, _ := console.PrincipalFrom(ctx)
	raw, _ := json.Marshal(payload)
	prev := ""
	if n := len(f.Audit); n > 0 {
		prev = f.Audit[n-1].Hash
	}
	h := sha256.Sum256(append([]byte(prev), raw...))
	f.Audit = append(f.Audit, &catalog.AuditEvent{EventID: catalog.NewID(catalog.PrefixEvent), Seq: int64(len(f.Audit) + 1), TenantID: tenantID,
		ActorType: catalog.ActorUser, ActorID: p.TokenID, EventType: typ, Payload: raw, CreatedAt: f.Now(), PrevHash: prev, Hash: hex.EncodeToString(h[:])})
}

// principal checks: admin (write), any admin (read), tenant access.
func who(ctx context.Context) console.Principal {
	p, _ := console.PrincipalFrom(ctx)
	return p
}

func needAdmin(ctx context.Context, write bool) error {
	p := who(ctx)
	if !p.Admin() {
		return catalog.Errorf(catalog.EFORBIDDEN, "admin only")
	}
	if write && p.ReadOnly() {
		return catalog.Errorf(catalog.EFORBIDDEN, "read-only token")
	}
	return nil
}

func needTenant(ctx context.Context, tenantID string) error {
	p := who(ctx)
	if p.Admin() {
		return nil
	}
	if tenantID == "" || p.TenantID != tenantID {
		return catalog.NotFound("tenant", tenantID)
	}
	return nil
}

// --- console.Backend ---

func (f *Fake) Authenticate(ctx context.Context, token string) (console.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[token]
	if !ok || t.info.RevokedAt != nil {
		return console.Principal{}, catalog.Errorf(catalog.EUNAUTHORIZED, "invalid token")
	}
	return console.Principal{Role: t.info.Token.Role, TenantID: t.info.Token.TenantID, TokenID: t.info.Token.TokenID}, nil
}

func (f *Fake) TokenPrincipal(ctx context.Context, id string) (console.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.TokenCheckErr != nil {
		return console.Principal{}, f.TokenCheckErr
	}
	for _, t := range f.tokens {
		if t.info.Token.TokenID == id && t.info.RevokedAt == nil {
			return console.Principal{Role: t.info.Token.Role, TenantID: t.info.Token.TenantID, TokenID: id}, nil
		}
	}
	return console.Principal{}, catalog.Errorf(catalog.EUNAUTHORIZED, "invalid token")
}

func (f *Fake) Tenants(ctx context.Context) ([]*catalog.Tenant, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.TenantList), nil
}

func (f *Fake) tenantLocked(id string) *catalog.Tenant {
	for _, t := range f.TenantList {
		if t.TenantID == id {
			return t
		}
	}
	return nil
}

func (f *Fake) Tenant(ctx context.Context, id string) (*catalog.Tenant, error) {
	if err := needTenant(ctx, id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tenantLocked(id); t != nil {
		return t, nil
	}
	return nil, catalog.NotFound("tenant", id)
}

func (f *Fake) CreateTenant(ctx context.Context, name string) (*catalog.Tenant, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, catalog.Invalid("name", "is required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: name, Status: catalog.TenantActive, CreatedAt: f.Now()}
	f.TenantList = append(f.TenantList, t)
	f.audit(ctx, t.TenantID, "tenant.created", t)
	return t, nil
}

func (f *Fake) Products(ctx context.Context) ([]*catalog.Product, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ProductList), nil
}

func (f *Fake) productLocked(id string) *catalog.Product {
	for _, p := range f.ProductList {
		if p.ProductID == id {
			return p
		}
	}
	return nil
}

func (f *Fake) Product(ctx context.Context, id string) (*catalog.Product, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.productLocked(id); p != nil {
		return p, nil
	}
	return nil, catalog.NotFound("product", id)
}

func (f *Fake) CreateProduct(ctx context.Context, name, dist string) (*catalog.Product, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, catalog.Invalid("name", "is required")
	}
	if dist == "" {
		dist = catalog.DistributionLicensed
	}
	if err := catalog.ValidateEnum("distribution", dist, []string{catalog.DistributionLicensed, catalog.DistributionOpen}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: name, Distribution: dist, CreatedAt: f.Now()}
	f.ProductList = append(f.ProductList, p)
	f.audit(ctx, "", "product.created", p)
	return p, nil
}

func (f *Fake) Releases(ctx context.Context, productID string) ([]*catalog.Release, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*catalog.Release
	for _, r := range f.ReleaseList {
		if r.ProductID == productID {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Fake) releaseLocked(id string) *catalog.Release {
	for _, r := range f.ReleaseList {
		if r.ReleaseID == id {
			return r
		}
	}
	return nil
}

func (f *Fake) Release(ctx context.Context, id string) (*catalog.Release, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.releaseLocked(id); r != nil {
		return r, nil
	}
	return nil, catalog.NotFound("release", id)
}

// PublishRelease hashes the stream as it reads it (nothing is kept but
// the digest and the count).
func (f *Fake) PublishRelease(ctx context.Context, req console.PublishRequest, r io.Reader) (*catalog.Release, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	if _, err := semver.StrictNewVersion(req.Version); err != nil {
		return nil, catalog.Invalid("version", "%q is not a semantic version", req.Version)
	}
	if req.Channel == "" {
		return nil, catalog.Invalid("channel", "is required")
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return nil, fmt.Errorf("read artifact: %w", err)
	}
	if req.SizeBytes >= 0 && n != req.SizeBytes {
		return nil, catalog.Invalid("size_bytes", "declared %d bytes, received %d", req.SizeBytes, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.productLocked(req.ProductID) == nil {
		return nil, catalog.NotFound("product", req.ProductID)
	}
	for _, o := range f.ReleaseList {
		if o.ProductID == req.ProductID && o.Channel == req.Channel && o.Version == req.Version {
			return nil, catalog.Errorf(catalog.ECONFLICT, "release %s %s exists", req.Channel, req.Version)
		}
	}
	rel := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: req.ProductID, Channel: req.Channel, Version: req.Version,
		PublishedAt: f.Now(), Status: catalog.ReleaseActive}
	f.ReleaseList = append(f.ReleaseList, rel)
	f.Uploads[rel.ReleaseID] = Upload{Name: req.FileName, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	f.audit(ctx, "", "release.created", rel)
	return rel, nil
}

// visibleLocked lists the tenants that see a product.
func (f *Fake) visibleLocked(p *catalog.Product) []*catalog.Tenant {
	var out []*catalog.Tenant
	for _, t := range f.TenantList {
		if t.Status != catalog.TenantActive {
			continue
		}
		if p.Distribution == catalog.DistributionOpen {
			out = append(out, t)
			continue
		}
		for _, e := range f.EntitlementList {
			if e.Entitlement.TenantID == t.TenantID && e.Entitlement.ProductID == p.ProductID && !e.Entitlement.Ended(f.Now()) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func (f *Fake) RevokePreview(ctx context.Context, id string) (*console.RevokeImpact, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rel := f.releaseLocked(id)
	if rel == nil {
		return nil, catalog.NotFound("release", id)
	}
	p := f.productLocked(rel.ProductID)
	imp := &console.RevokeImpact{Release: rel, Product: p}
	if p != nil {
		imp.Tenants = f.visibleLocked(p)
	}
	for _, t := range imp.Tenants {
		for _, m := range f.MirrorList {
			if m.Mirror.TenantID == t.TenantID && (len(m.Mirror.AllowedChannels) == 0 || slices.Contains(m.Mirror.AllowedChannels, rel.Channel)) {
				imp.Mirrors = append(imp.Mirrors, m.Mirror)
			}
		}
	}
	for _, r := range f.RolloutList {
		if r.Rollout.ReleaseID == id && (r.Rollout.Status == catalog.RolloutActive || r.Rollout.Status == catalog.RolloutPaused) {
			imp.Rollouts = append(imp.Rollouts, r.Rollout)
		}
	}
	return imp, nil
}

func (f *Fake) RevokeRelease(ctx context.Context, id string) (*catalog.Release, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rel := f.releaseLocked(id)
	if rel == nil {
		return nil, catalog.NotFound("release", id)
	}
	if rel.Status == catalog.ReleaseRevoked {
		return nil, catalog.Errorf(catalog.ECONFLICT, "release %s is already revoked", id)
	}
	now := f.Now()
	rel.Status, rel.RevokedAt = catalog.ReleaseRevoked, &now
	f.audit(ctx, "", "release.revoked", rel)
	return rel, nil
}

func (f *Fake) Rollouts(ctx context.Context, productID string) ([]*console.RolloutInfo, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*console.RolloutInfo
	for _, r := range f.RolloutList {
		if r.Rollout.ProductID == productID {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *Fake) Rollout(ctx context.Context, id string) (*console.RolloutInfo, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.RolloutList {
		if r.Rollout.RolloutID == id {
			return r, nil
		}
	}
	return nil, catalog.NotFound("rollout", id)
}

func (f *Fake) CreateRollout(ctx context.Context, req console.RolloutRequest) (*catalog.Rollout, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	if req.Percentage < 0 || req.Percentage > 100 {
		return nil, catalog.Invalid("percentage", "must be between 0 and 100")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rel := f.releaseLocked(req.ReleaseID)
	if rel == nil || rel.ProductID != req.ProductID {
		return nil, catalog.NotFound("release", req.ReleaseID)
	}
	now := f.Now()
	r := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: req.ProductID, Channel: rel.Channel, ReleaseID: rel.ReleaseID,
		Percentage: req.Percentage, Status: catalog.RolloutActive, CreatedAt: now, UpdatedAt: now}
	f.RolloutList = append(f.RolloutList, &console.RolloutInfo{Rollout: r, Release: rel, Schedule: req.Schedule, Gate: req.Gate})
	f.audit(ctx, "", "rollout.created", r)
	return r, nil
}

func (f *Fake) UpdateRollout(ctx context.Context, id string, u console.RolloutUpdate) (*catalog.Rollout, error) {
	if err := needAdmin(ctx, true); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.RolloutList {
		if r.Rollout.RolloutID != id {
			continue
		}
		if u.Status != "" {
			if err := catalog.ValidateRolloutTransition(r.Rollout.Status, u.Status); err != nil {
				return nil, err
			}
			r.Rollout.Status = u.Status
		}
		if u.Percentage != nil {
			if *u.Percentage < 0 || *u.Percentage > 100 {
				return nil, catalog.Invalid("percentage", "must be between 0 and 100")
			}
			r.Rollout.Percentage = *u.Percentage
		}
		switch {
		case u.RemoveSchedule:
			r.Schedule = nil
		case u.Schedule != nil:
			r.Schedule = u.Schedule
		}
		switch {
		case u.RemoveGate:
			r.Gate = nil
		case u.Gate != nil:
			r.Gate = u.Gate
		}
		r.Rollout.UpdatedAt = f.Now()
		f.audit(ctx, "", "rollout.updated", r.Rollout)
		return r.Rollout, nil
	}
	return nil, catalog.NotFound("rollout", id)
}

func (f *Fake) RolloutSeries(ctx context.Context, id string) (*console.RolloutSeries, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.Series[id]; ok {
		return s, nil
	}
	return &console.RolloutSeries{}, nil
}

func (f *Fake) BlockedVersions(ctx context.Context, tenantID string) ([]*catalog.BlockedVersion, error) {
	if err := needTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*catalog.BlockedVersion
	for _, b := range f.Blocked {
		if b.TenantID == tenantID {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *Fake) BlockVersion(ctx context.Context, b *catalog.BlockedVersion) (*catalog.BlockedVersion, error) {
	if err := needTenant(ctx, b.TenantID); err != nil {
		return nil, err
	}
	if who(ctx).ReadOnly() {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "read-only token")
	}
	if b.BlockedVersion == "" {
		return nil, catalog.Invalid("blocked_version", "is required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *b
	c.BlocklistID, c.CreatedAt = catalog.NewID(catalog.PrefixBlocked), f.Now()
	f.Blocked = append(f.Blocked, &c)
	f.audit(ctx, b.TenantID, "blocked_version.created", &c)
	return &c, nil
}

func (f *Fake) UnblockVersion(ctx context.Context, tenantID, id string) error {
	if err := needTenant(ctx, tenantID); err != nil {
		return err
	}
	if who(ctx).ReadOnly() {
		return catalog.Errorf(catalog.EFORBIDDEN, "read-only token")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.Blocked {
		if b.TenantID == tenantID && b.BlocklistID == id {
			f.Blocked = slices.Delete(f.Blocked, i, i+1)
			f.audit(ctx, tenantID, "blocked_version.deleted", b)
			return nil
		}
	}
	return catalog.NotFound("blocked version", id)
}

func (f *Fake) Policies(ctx context.Context, tenantID string) ([]*catalog.Policy, error) {
	if err := needTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*catalog.Policy
	for _, vs := range f.PolicyHistory {
		latest := vs[len(vs)-1]
		if latest.TenantID == tenantID {
			out = append(out, latest)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PolicyID < out[j].PolicyID })
	return out, nil
}

func (f *Fake) PolicyVersions(ctx context.Context, id string) ([]*catalog.Policy, error) {
	f.mu.Lock()
	vs, ok := f.PolicyHistory[id]
	f.mu.Unlock()
	if !ok {
		return nil, catalog.NotFound("policy", id)
	}
	if err := needTenant(ctx, vs[0].TenantID); err != nil {
		return nil, catalog.NotFound("policy", id)
	}
	return slices.Clone(vs), nil
}

func (f *Fake) Mirrors(ctx context.Context, tenantID string) ([]*console.MirrorInfo, error) {
	if tenantID == "" {
		if err := needAdmin(ctx, false); err != nil {
			return nil, err
		}
	} else if err := needTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*console.MirrorInfo
	for _, m := range f.MirrorList {
		if tenantID == "" || m.Mirror.TenantID == tenantID {
			out = append(out, m)
		}
	}
	return out, nil
}

func (f *Fake) Entitlements(ctx context.Context, tenantID string) ([]*console.EntitlementInfo, error) {
	if tenantID == "" {
		if err := needAdmin(ctx, false); err != nil {
			return nil, err
		}
	} else if err := needTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*console.EntitlementInfo
	for _, e := range f.EntitlementList {
		if tenantID == "" || e.Entitlement.TenantID == tenantID {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *Fake) EntitlementSeries(ctx context.Context, id string) (*console.UsageSeries, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.EntitlementList {
		if e.Entitlement.EntitlementID == id {
			if err := needTenant(ctx, e.Entitlement.TenantID); err != nil {
				return nil, catalog.NotFound("entitlement", id)
			}
			if s, ok := f.Usage[id]; ok {
				return s, nil
			}
			return &console.UsageSeries{}, nil
		}
	}
	return nil, catalog.NotFound("entitlement", id)
}

func (f *Fake) Tokens(ctx context.Context, tenantID string) ([]*console.TokenInfo, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*console.TokenInfo
	for _, t := range f.tokens {
		if tenantID == "" || t.info.Token.TenantID == tenantID {
			out = append(out, t.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token.TokenID < out[j].Token.TokenID })
	return out, nil
}

func (f *Fake) CreateToken(ctx context.Context, role, tenantID, name string) (string, *catalog.Token, error) {
	if err := needAdmin(ctx, true); err != nil {
		return "", nil, err
	}
	if err := catalog.ValidateEnum("role", role, []string{console.RoleAdmin, console.RoleAdminRO, console.RoleTenant, console.RoleTenantRO}); err != nil {
		return "", nil, err
	}
	tenantRole := role == console.RoleTenant || role == console.RoleTenantRO
	if tenantRole != (tenantID != "") {
		return "", nil, catalog.Invalid("tenant_id", "is required for tenant roles and only for them")
	}
	f.mu.Lock()
	if tenantID != "" && f.tenantLocked(tenantID) == nil {
		f.mu.Unlock()
		return "", nil, catalog.NotFound("tenant", tenantID)
	}
	f.mu.Unlock()
	secret := "opt_" + strings.ReplaceAll(catalog.NewID("x"), "x_", "")
	p := f.AddToken(secret, role, tenantID, name)
	f.mu.Lock()
	f.audit(ctx, tenantID, "token.created", map[string]string{"token_id": p.TokenID})
	t := f.tokens[secret].info.Token
	f.mu.Unlock()
	return secret, t, nil
}

func (f *Fake) RevokeToken(ctx context.Context, id string) error {
	if err := needAdmin(ctx, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tokens {
		if t.info.Token.TokenID == id {
			if t.info.RevokedAt != nil {
				return catalog.Errorf(catalog.ECONFLICT, "token %s is already revoked", id)
			}
			now := f.Now()
			t.info.RevokedAt = &now
			f.audit(ctx, t.info.Token.TenantID, "token.revoked", map[string]string{"token_id": id})
			return nil
		}
	}
	return catalog.NotFound("token", id)
}

func (f *Fake) AuditEvents(ctx context.Context, q console.AuditQuery) ([]*catalog.AuditEvent, error) {
	if q.TenantID == "" {
		if err := needAdmin(ctx, false); err != nil {
			return nil, err
		}
	} else if err := needTenant(ctx, q.TenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*catalog.AuditEvent
	for i := len(f.Audit) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		e := f.Audit[i]
		if (q.TenantID == "" || e.TenantID == q.TenantID) && (q.EventType == "" || e.EventType == q.EventType) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *Fake) VerifyAuditChain(ctx context.Context) (*console.ChainStatus, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ChainBroken != "" {
		return &console.ChainStatus{OK: false, Events: int64(len(f.Audit)), Error: f.ChainBroken, VerifiedAt: f.Now()}, nil
	}
	return &console.ChainStatus{OK: true, Events: int64(len(f.Audit)), VerifiedAt: f.Now()}, nil
}

func (f *Fake) WebhookDeliveries(ctx context.Context, tenantID string) ([]*console.WebhookDelivery, error) {
	if tenantID == "" {
		if err := needAdmin(ctx, false); err != nil {
			return nil, err
		}
	} else if err := needTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Webhooks == nil {
		return nil, fmt.Errorf("webhooks: %w", console.ErrNotImplemented)
	}
	var out []*console.WebhookDelivery
	for _, d := range f.Webhooks {
		if tenantID == "" || d.TenantID == tenantID {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *Fake) WebhookSubscriptions(ctx context.Context, tenantID string) ([]*console.WebhookSubscription, error) {
	if err := needAdmin(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Webhooks == nil {
		return nil, fmt.Errorf("webhooks: %w", console.ErrNotImplemented)
	}
	var out []*console.WebhookSubscription
	for _, s := range f.WebhookSubs {
		if tenantID == "" || s.TenantID == "" || s.TenantID == tenantID {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *Fake) RedeliverWebhook(ctx context.Context, deliveryID string) error {
	if err := needAdmin(ctx, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.Webhooks {
		if d.DeliveryID == deliveryID {
			d.State, d.Attempts = "pending", 0
			f.Redelivered = append(f.Redelivered, deliveryID)
			return nil
		}
	}
	return catalog.NotFound("delivery", deliveryID)
}

// SetMirrorSynced records a sync of mirror id at t holding version seq.
func (f *Fake) SetMirrorSynced(id string, t time.Time, seq int64, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.MirrorList {
		if m.Mirror.MirrorID == id {
			m.Mirror.LastSyncAt = &t
			m.Mirror.LastSyncError = ""
			m.MetadataVersion = seq
			m.ExpiresAt = expires
		}
	}
}

var _ console.Backend = (*Fake)(nil)

// series builds n hourly points ending at end from fn(i).
func series(end time.Time, n int, fn func(i int) float64) []svgchart.Point {
	out := make([]svgchart.Point, n)
	for i := range n {
		out[i] = svgchart.Point{T: end.Add(time.Duration(i-n+1) * time.Hour), V: fn(i)}
	}
	return out
}

// Lock and Unlock guard the exported fields for tests.
func (f *Fake) Lock()   { f.mu.Lock() }
func (f *Fake) Unlock() { f.mu.Unlock() }
