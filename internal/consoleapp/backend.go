// Package consoleapp adapts the control plane's application layer
// (controlplane.App) to the vendor console's Backend (internal/console).
// Every console call goes through the App with the session's principal
// applied exactly as the HTTP API applies a token's: the same
// controlplane.Principal in the context (tenant scoping is the App's), and
// the API route table's role rule for each operation (admin-only
// operations refuse tenant sessions; read-only roles may not change
// anything). There is no second path to the store.
package consoleapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/svgchart"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/webhook"
)

// Options configure a Backend.
type Options struct {
	// ChainTTL is how long an audit chain verification is reused
	// (default 1m): verifying walks the whole chain.
	ChainTTL time.Duration
	// Now is the clock (default the App's).
	Now func() time.Time
}

// Backend implements console.Backend over an App.
type Backend struct {
	app *controlplane.App
	o   Options

	mu     sync.Mutex
	hashes map[string]string // token id → hash of a token signed in with

	chainMu sync.Mutex // one verification at a time
	chain   *console.ChainStatus

	snapMu sync.Mutex
	snaps  map[string]snapInfo // snapshot id → what the mirrors page shows (snapshots are immutable)
}

type snapInfo struct {
	seq     int64
	expires time.Time
}

var _ console.Backend = (*Backend)(nil)

// New returns the console's backend over app.
func New(app *controlplane.App, o Options) *Backend {
	if o.ChainTTL <= 0 {
		o.ChainTTL = time.Minute
	}
	if o.Now == nil {
		o.Now = app.Now
	}
	return &Backend{app: app, o: o, hashes: map[string]string{}, snaps: map[string]snapInfo{}}
}

// need is what an operation requires of the session, the API route
// table's "who" column: tenantRead routes take admin and tenant tokens
// (the App scopes by tenant), adminOnly routes admin tokens only.
type need int

const (
	tenantRead need = iota
	tenantWrite
	adminRead
	adminWrite
)

var errNoSession = catalog.Errorf(catalog.EUNAUTHORIZED, "no session")

// as returns ctx acting as the session's principal, the way the API acts
// as a token's, once the principal may call an operation that needs n.
func as(ctx context.Context, n need) (context.Context, error) {
	p, ok := console.PrincipalFrom(ctx)
	if !ok || !p.Valid() {
		return nil, errNoSession
	}
	if (n == adminRead || n == adminWrite) && !p.Admin() {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "this is for the vendor's administrators")
	}
	if (n == tenantWrite || n == adminWrite) && p.ReadOnly() {
		return nil, catalog.Errorf(catalog.EFORBIDDEN, "this token is read-only")
	}
	role := p.Role
	switch role {
	case catalog.RoleAdminRO:
		role = catalog.RoleAdmin
	case catalog.RoleTenantRO:
		role = catalog.RoleTenant
	}
	return controlplane.WithPrincipal(ctx, &controlplane.Principal{Role: role, ReadOnly: p.ReadOnly(), TenantID: p.TenantID, TokenID: p.TokenID}), nil
}

// consolePrincipal maps an App principal to a console one; mirror
// credentials cannot sign in.
func consolePrincipal(p *controlplane.Principal) (console.Principal, error) {
	// The token's role as stored, so a read-only token's session is
	// read-only in the console too.
	cp := console.Principal{Role: p.TokenRole(), TenantID: p.TenantID, TokenID: p.TokenID}
	if p.Role == controlplane.RoleMirror || !cp.Valid() {
		return console.Principal{}, catalog.Errorf(catalog.EUNAUTHORIZED, "this credential cannot sign in to the console")
	}
	return cp, nil
}

// Authenticate checks an API token as the API does.
func (b *Backend) Authenticate(ctx context.Context, token string) (console.Principal, error) {
	p, err := b.app.Authenticate(ctx, token)
	if err != nil {
		return console.Principal{}, err
	}
	cp, err := consolePrincipal(p)
	if err != nil {
		return cp, err
	}
	b.mu.Lock()
	b.hashes[p.TokenID] = controlplane.HashSecret(token)
	b.mu.Unlock()
	return cp, nil
}

// TokenPrincipal re-checks a signed-in token (by the hash kept at sign-in,
// never the secret): a token the App no longer accepts ends its sessions.
func (b *Backend) TokenPrincipal(ctx context.Context, tokenID string) (console.Principal, error) {
	b.mu.Lock()
	hash, ok := b.hashes[tokenID]
	b.mu.Unlock()
	if !ok {
		return console.Principal{}, errNoSession
	}
	p, err := b.app.TokenPrincipal(ctx, hash)
	if err != nil {
		if c := catalog.ErrorCode(err); c == catalog.EUNAUTHORIZED {
			b.mu.Lock()
			delete(b.hashes, tokenID)
			b.mu.Unlock()
		}
		return console.Principal{}, err
	}
	return consolePrincipal(p)
}

// --- tenants, products, releases ---

// Tenants lists the tenants the session sees.
func (b *Backend) Tenants(ctx context.Context) ([]*catalog.Tenant, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	return store.All(ctx, b.app.Tenants)
}

// Tenant returns a tenant the session sees.
func (b *Backend) Tenant(ctx context.Context, id string) (*catalog.Tenant, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	return b.app.Tenant(ctx, id)
}

// CreateTenant creates an active tenant.
func (b *Backend) CreateTenant(ctx context.Context, name string) (*catalog.Tenant, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	return b.app.CreateTenant(ctx, controlplane.TenantInput{Name: name})
}

// Products lists every product.
func (b *Backend) Products(ctx context.Context) ([]*catalog.Product, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	return store.All(ctx, b.app.Products)
}

// Product returns a product.
func (b *Backend) Product(ctx context.Context, id string) (*catalog.Product, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	return b.app.Product(ctx, id)
}

// CreateProduct creates a product.
func (b *Backend) CreateProduct(ctx context.Context, name, distribution string) (*catalog.Product, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	return b.app.CreateProduct(ctx, controlplane.ProductInput{Name: name, Distribution: distribution})
}

// Releases lists a product's releases.
func (b *Backend) Releases(ctx context.Context, productID string) ([]*catalog.Release, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	return store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Release, string, error) {
		return b.app.Releases(ctx, productID, pg)
	})
}

// Release returns a release.
func (b *Backend) Release(ctx context.Context, id string) (*catalog.Release, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	v, err := b.app.Release(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Release, nil
}

// PublishRelease streams the file into a MANAGED artifact (the App's
// upload hashes it as it arrives and stores nothing that does not match),
// then creates the release and attaches the artifact. The artifact comes
// first so that a failed upload leaves no release without a file; an
// artifact left unattached by a refused release is swept by housekeeping.
func (b *Backend) PublishRelease(ctx context.Context, req console.PublishRequest, r io.Reader) (*catalog.Release, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	if _, err := b.app.Product(ctx, req.ProductID); err != nil {
		return nil, err
	}
	if err := catalog.ValidateChannel("channel", req.Channel); err != nil {
		return nil, err
	}
	if err := catalog.ValidateVersion("version", req.Version); err != nil {
		return nil, err
	}
	// What AttachArtifact and CreateRelease would refuse is refused before
	// a byte is read, so that a refusal leaves neither a blob nor a
	// release without its file.
	for _, c := range []struct {
		field, v string
		allowed  []string
	}{{"platform", req.Platform, catalog.Platforms}, {"arch", req.Arch, catalog.Arches}, {"installer_type", req.InstallerType, catalog.InstallerTypes}} {
		if err := catalog.ValidateEnum(c.field, c.v, c.allowed); err != nil {
			return nil, err
		}
	}
	rs, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Release, string, error) {
		return b.app.Releases(ctx, req.ProductID, pg)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Channel == req.Channel && r.Version == req.Version {
			return nil, catalog.Errorf(catalog.ECONFLICT, "release %s %s exists", req.Channel, req.Version)
		}
	}
	art, err := b.app.UploadArtifact(ctx, r, controlplane.UploadInput{SizeBytes: req.SizeBytes, Length: -1})
	if err != nil {
		return nil, err
	}
	rel, err := b.app.CreateRelease(ctx, req.ProductID, controlplane.ReleaseInput{Channel: req.Channel, Version: req.Version})
	if err != nil {
		return nil, err
	}
	if _, err := b.app.AttachArtifact(ctx, rel.ReleaseID, controlplane.AttachInput{
		ArtifactID: art.ArtifactID, Platform: req.Platform, Arch: req.Arch, InstallerType: req.InstallerType,
	}); err != nil {
		return nil, fmt.Errorf("attach artifact to release %s: %w", rel.ReleaseID, err)
	}
	return rel, nil
}

// RevokePreview names what revoking a release affects: the tenants whose
// latest snapshot lists it, their active mirrors that serve its channel,
// and its rollouts still in progress.
func (b *Backend) RevokePreview(ctx context.Context, releaseID string) (*console.RevokeImpact, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	v, err := b.app.Release(ctx, releaseID)
	if err != nil {
		return nil, err
	}
	imp := &console.RevokeImpact{Release: v.Release}
	if imp.Product, err = b.app.Product(ctx, v.ProductID); err != nil {
		return nil, err
	}
	if imp.Tenants, err = b.app.ReleaseTenants(ctx, releaseID); err != nil {
		return nil, err
	}
	for _, t := range imp.Tenants {
		ms, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Mirror, string, error) {
			return b.app.Mirrors(ctx, t.TenantID, pg)
		})
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Status != catalog.MirrorInactive && (len(m.AllowedChannels) == 0 || slices.Contains(m.AllowedChannels, v.Channel)) {
				imp.Mirrors = append(imp.Mirrors, m)
			}
		}
	}
	rs, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
		return b.app.Rollouts(ctx, v.ProductID, pg)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.ReleaseID == releaseID && (r.Status == catalog.RolloutActive || r.Status == catalog.RolloutPaused) {
			imp.Rollouts = append(imp.Rollouts, r)
		}
	}
	return imp, nil
}

// RevokeRelease revokes a release (one-way).
func (b *Backend) RevokeRelease(ctx context.Context, releaseID string) (*catalog.Release, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	return b.app.RevokeRelease(ctx, releaseID)
}

// --- rollouts ---

// Rollouts lists a product's rollouts with their releases, schedules and
// health gates.
func (b *Backend) Rollouts(ctx context.Context, productID string) ([]*console.RolloutInfo, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	rs, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
		return b.app.Rollouts(ctx, productID, pg)
	})
	if err != nil {
		return nil, err
	}
	rels := map[string]*catalog.Release{}
	out := make([]*console.RolloutInfo, 0, len(rs))
	for _, r := range rs {
		info, err := b.rolloutInfo(ctx, r, rels)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (b *Backend) rolloutInfo(ctx context.Context, r *catalog.Rollout, rels map[string]*catalog.Release) (*console.RolloutInfo, error) {
	rel, ok := rels[r.ReleaseID]
	if !ok {
		v, err := b.app.Release(ctx, r.ReleaseID)
		switch {
		case catalog.ErrorCode(err) == catalog.ENOTFOUND:
		case err != nil:
			return nil, err
		default:
			rel = v.Release
		}
		rels[r.ReleaseID] = rel
	}
	info := &console.RolloutInfo{Rollout: r, Release: rel}
	fleetView(ctx, info, b.app.FleetSink())
	return info, nil
}

// Rollout returns a rollout with its release.
func (b *Backend) Rollout(ctx context.Context, id string) (*console.RolloutInfo, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	r, err := b.app.Rollout(ctx, id)
	if err != nil {
		return nil, err
	}
	return b.rolloutInfo(ctx, r, map[string]*catalog.Release{})
}

// CreateRollout starts a rollout of a release on the release's channel.
func (b *Backend) CreateRollout(ctx context.Context, req console.RolloutRequest) (*catalog.Rollout, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	sched, gate, err := fleetRules(req)
	if err != nil {
		return nil, err
	}
	v, err := b.app.Release(ctx, req.ReleaseID)
	if err != nil {
		return nil, err
	}
	pct := req.Percentage
	return b.app.CreateRollout(ctx, req.ProductID, controlplane.RolloutInput{Channel: v.Channel, ReleaseID: req.ReleaseID, Percentage: &pct, Schedule: sched, HealthGate: gate})
}

// UpdateRollout changes a rollout's percentage, status, schedule or
// health gate (JSON null removes the last two, as in the API).
func (b *Backend) UpdateRollout(ctx context.Context, id string, u console.RolloutUpdate) (*catalog.Rollout, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	p := controlplane.RolloutPatch{Percentage: u.Percentage}
	if u.Status != "" {
		p.Status = &u.Status
	}
	sched, gate, err := fleetRules(console.RolloutRequest{Schedule: u.Schedule, Gate: u.Gate})
	if err != nil {
		return nil, err
	}
	switch {
	case u.RemoveSchedule:
		p.Schedule = json.RawMessage("null")
	case sched != nil:
		p.Schedule = sched
	}
	switch {
	case u.RemoveGate:
		p.HealthGate = json.RawMessage("null")
	case gate != nil:
		// The console sets the failure rate and the minimum; the rest of
		// a gate set through the API (error codes, report age) stays.
		if p.HealthGate, err = b.mergeGate(ctx, id, u.Gate); err != nil {
			return nil, err
		}
	}
	return b.app.UpdateRollout(ctx, id, p)
}

// mergeGate returns the rollout's health gate with the console's two
// fields replaced.
func (b *Backend) mergeGate(ctx context.Context, id string, hg *console.HealthGate) (json.RawMessage, error) {
	cur, err := b.app.Rollout(ctx, id)
	if err != nil {
		return nil, err
	}
	var g fleet.Gate
	if len(cur.HealthGate) > 0 {
		if old, err := fleet.ParseGate(cur.HealthGate); err == nil {
			g = *old
		}
	}
	g.MaxFailureRate = hg.MaxFailureRate
	g.MinInstalls = int64(max(hg.MinReports, 1))
	return json.Marshal(g)
}

// RolloutSeries is the rollout's recorded history (App.RecordHistory):
// adoption is the release's share of the product's successful installs,
// the failure rate failed ÷ (ok + failed) installs of the release, both
// cumulative over the fleet reports received by each point's time; points
// without installs are left out. Empty until reports arrive.
func (b *Backend) RolloutSeries(ctx context.Context, id string) (*console.RolloutSeries, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	pts, err := b.app.RolloutHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &console.RolloutSeries{}
	for _, p := range pts {
		if v := p.Adoption(); v >= 0 {
			out.Adoption = append(out.Adoption, svgchart.Point{T: p.At, V: v})
		}
		if v := p.FailureRate(); v >= 0 {
			out.FailureRate = append(out.FailureRate, svgchart.Point{T: p.At, V: v})
		}
	}
	return out, nil
}

// --- policies and blocked versions ---

// BlockedVersions lists a tenant's blocked versions.
func (b *Backend) BlockedVersions(ctx context.Context, tenantID string) ([]*catalog.BlockedVersion, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	return store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.BlockedVersion, string, error) {
		return b.app.BlockedVersions(ctx, tenantID, pg)
	})
}

// BlockVersion blocks a version for a tenant.
func (b *Backend) BlockVersion(ctx context.Context, bv *catalog.BlockedVersion) (*catalog.BlockedVersion, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return nil, err
	}
	return b.app.CreateBlockedVersion(ctx, bv.TenantID, controlplane.BlockedInput{ProductID: bv.ProductID, BlockedVersion: bv.BlockedVersion, Reason: bv.Reason})
}

// UnblockVersion removes a blocked version.
func (b *Backend) UnblockVersion(ctx context.Context, tenantID, blocklistID string) error {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return err
	}
	return b.app.DeleteBlockedVersion(ctx, tenantID, blocklistID)
}

// Policies lists a tenant's policies.
func (b *Backend) Policies(ctx context.Context, tenantID string) ([]*catalog.Policy, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	return store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Policy, string, error) {
		return b.app.Policies(ctx, tenantID, pg)
	})
}

// PolicyVersions lists every version of a policy.
func (b *Backend) PolicyVersions(ctx context.Context, policyID string) ([]*catalog.Policy, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	return b.app.PolicyVersions(ctx, policyID)
}

// --- mirrors and entitlements ---

// eachTenant lists per tenant: tenantID's, or every tenant's for "" (admins).
func eachTenant[T any](ctx context.Context, b *Backend, tenantID string, list func(ctx context.Context, tenantID string, pg store.Page) ([]T, string, error)) ([]T, error) {
	ids := []string{tenantID}
	if tenantID == "" {
		if p, _ := console.PrincipalFrom(ctx); !p.Admin() {
			return nil, catalog.Errorf(catalog.EFORBIDDEN, "this is for the vendor's administrators")
		}
		ts, err := store.All(ctx, b.app.Tenants)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, t := range ts {
			ids = append(ids, t.TenantID)
		}
	}
	var out []T
	for _, id := range ids {
		items, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]T, string, error) { return list(ctx, id, pg) })
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// Mirrors lists mirrors with what their sync reports say: the last sync
// and its error (the mirror record), and the sequence and expiry of the
// snapshot the mirror last reported holding.
func (b *Backend) Mirrors(ctx context.Context, tenantID string) ([]*console.MirrorInfo, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	ms, err := eachTenant(ctx, b, tenantID, b.app.Mirrors)
	if err != nil {
		return nil, err
	}
	latest, tufLatest := map[string]int64{}, map[string]int64{}
	out := make([]*console.MirrorInfo, 0, len(ms))
	for _, m := range ms {
		info := &console.MirrorInfo{Mirror: m}
		if v, ok := tuf.ParseVersionID(m.LastSnapshotID); ok {
			// A trust: tuf mirror: its version counts TUF snapshots.
			info.MetadataVersion = v
			tv, ok := tufLatest[m.TenantID]
			if !ok {
				vs, err := b.app.TUFVersions(ctx, m.TenantID)
				switch {
				case catalog.ErrorCode(err) == catalog.ENOTFOUND, errors.Is(err, controlplane.ErrNoTUF):
				case err != nil:
					return nil, err
				default:
					tv = vs.Snapshot
				}
				tufLatest[m.TenantID] = tv
			}
			info.LatestVersion = tv
			out = append(out, info)
			continue
		}
		if m.LastSnapshotID != "" {
			si, err := b.snapshot(ctx, m.LastSnapshotID)
			switch {
			case catalog.ErrorCode(err) == catalog.ENOTFOUND:
				// a report naming a snapshot this control plane never built
				info.ForkAlerts = append(info.ForkAlerts, console.ForkAlert{At: derefTime(m.LastSyncAt), Detail: "the mirror reports snapshot " + m.LastSnapshotID + ", which this control plane did not sign"})
			case err != nil:
				return nil, err
			default:
				info.MetadataVersion, info.ExpiresAt = si.seq, si.expires
			}
		}
		l, ok := latest[m.TenantID]
		if !ok {
			head, err := b.app.LatestSnapshotHead(ctx, m.TenantID)
			switch {
			case catalog.ErrorCode(err) == catalog.ENOTFOUND:
			case err != nil:
				return nil, err
			default:
				l = head.Sequence
			}
			latest[m.TenantID] = l
		}
		info.LatestVersion = l
		out = append(out, info)
	}
	if err := b.auditForks(ctx, tenantID, out); err != nil {
		return nil, err
	}
	return out, nil
}

// maxForkAlerts bounds the audit fork alerts shown per mirror (the
// newest).
const maxForkAlerts = 5

// auditForks adds the App's mirror.fork_detected audit events (an audit
// upload whose authentic chain does not extend the accepted head: a
// cloned or restored mirror data directory) to their mirrors' alerts,
// newest first. The events are read through their type index; each
// distinct fork is recorded once.
func (b *Backend) auditForks(ctx context.Context, tenantID string, ms []*console.MirrorInfo) error {
	if len(ms) == 0 {
		return nil
	}
	forks := make(map[string][]console.ForkAlert, len(ms))
	for _, m := range ms {
		forks[m.Mirror.MirrorID] = nil
	}
	evs, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.AuditEvent, string, error) {
		return b.app.AuditEvents(ctx, store.AuditFilter{TenantID: tenantID, EventType: controlplane.EventForkDetected}, pg)
	})
	if err != nil {
		return fmt.Errorf("read fork events: %w", err)
	}
	for _, ev := range evs { // oldest first
		var p struct {
			MirrorID  string            `json:"mirror_id"`
			Reason    string            `json:"reason"`
			Accepted  catalog.AuditHead `json:"accepted"`
			Presented catalog.AuditHead `json:"presented"`
		}
		if json.Unmarshal(ev.Payload, &p) != nil {
			continue
		}
		fs, ok := forks[p.MirrorID]
		if !ok {
			continue
		}
		if len(fs) == maxForkAlerts {
			fs = fs[1:]
		}
		forks[p.MirrorID] = append(fs, console.ForkAlert{At: ev.CreatedAt, Detail: fmt.Sprintf(
			"its audit chain forks from the one accepted (%s; accepted up to event %d, it presents %d): a cloned or restored data directory?",
			p.Reason, p.Accepted.Seq, p.Presented.Seq)})
	}
	for _, m := range ms {
		fs := forks[m.Mirror.MirrorID]
		slices.Reverse(fs)
		m.ForkAlerts = append(m.ForkAlerts, fs...)
	}
	return nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// snapshot returns a snapshot's sequence and expiry, remembered (a
// snapshot never changes).
func (b *Backend) snapshot(ctx context.Context, id string) (snapInfo, error) {
	b.snapMu.Lock()
	si, ok := b.snaps[id]
	b.snapMu.Unlock()
	if ok {
		return si, nil
	}
	s, err := b.app.Snapshot(ctx, id)
	if err != nil {
		return snapInfo{}, err
	}
	si = snapInfo{seq: s.Sequence, expires: s.ExpiresAt}
	b.snapMu.Lock()
	if len(b.snaps) > 10000 {
		clear(b.snaps)
	}
	b.snaps[id] = si
	b.snapMu.Unlock()
	return si, nil
}

// Entitlements lists entitlements with their seat limit, explicit seat
// assignments and active online leases.
func (b *Backend) Entitlements(ctx context.Context, tenantID string) ([]*console.EntitlementInfo, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	es, err := eachTenant(ctx, b, tenantID, b.app.Entitlements)
	if err != nil {
		return nil, err
	}
	p, _ := console.PrincipalFrom(ctx)
	products := map[string]*catalog.Product{}
	out := make([]*console.EntitlementInfo, 0, len(es))
	for _, e := range es {
		info := &console.EntitlementInfo{Entitlement: e}
		if pol, err := catalog.ParseEntitlementPolicy(e.Policy); err == nil {
			info.MaxSeats = pol.MaxSeats
		}
		if p.Admin() { // products are an admin read in the API
			pr, ok := products[e.ProductID]
			if !ok {
				pr, err = b.app.Product(ctx, e.ProductID)
				if err != nil && catalog.ErrorCode(err) != catalog.ENOTFOUND {
					return nil, err
				}
				products[e.ProductID] = pr
			}
			info.Product = pr
		}
		seats, err := store.All(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
			return b.app.Seats(ctx, e.EntitlementID, pg)
		})
		if err != nil {
			return nil, err
		}
		for _, s := range seats {
			if s.RevokedAt == nil {
				info.SeatsAssigned++
			}
		}
		if n, err := b.app.ActiveLeases(ctx, e.EntitlementID); err != nil {
			return nil, err
		} else if n > 0 {
			info.LeasesActive = n
		}
		out = append(out, info)
	}
	return out, nil
}

// EntitlementSeries is the entitlement's recorded seat usage
// (App.RecordHistory); leases are plotted only where they were counted.
func (b *Backend) EntitlementSeries(ctx context.Context, entitlementID string) (*console.UsageSeries, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	pts, err := b.app.EntitlementHistory(ctx, entitlementID)
	if err != nil {
		return nil, err
	}
	out := &console.UsageSeries{}
	for _, p := range pts {
		out.Seats = append(out.Seats, svgchart.Point{T: p.At, V: float64(p.Seats)})
		if p.Leases >= 0 {
			out.Leases = append(out.Leases, svgchart.Point{T: p.At, V: float64(p.Leases)})
		}
	}
	return out, nil
}

// --- tokens ---

// maxTokenPages bounds how many pages of tokens the console reads.
const maxTokenPages = 20

// Tokens lists the tokens (of tenantID when it is not ""), newest first,
// through the App's ListTokens (values and hashes never leave it).
func (b *Backend) Tokens(ctx context.Context, tenantID string) ([]*console.TokenInfo, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	var out []*console.TokenInfo
	pg := store.Page{Limit: 500}
	for range maxTokenPages {
		list, next, err := b.app.ListTokens(ctx, pg)
		if err != nil {
			return nil, err
		}
		for _, t := range list {
			if tenantID == "" || t.TenantID == tenantID {
				out = append(out, &console.TokenInfo{Token: t, RevokedAt: t.RevokedAt})
			}
		}
		if next == "" {
			break
		}
		pg.Cursor = next
	}
	slices.SortFunc(out, func(a, b *console.TokenInfo) int { return b.Token.CreatedAt.Compare(a.Token.CreatedAt) })
	return out, nil
}

// CreateToken creates a token; its secret is returned once.
func (b *Backend) CreateToken(ctx context.Context, role, tenantID, name string) (string, *catalog.Token, error) {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return "", nil, err
	}
	t, err := b.app.CreateToken(ctx, controlplane.TokenInput{Role: role, TenantID: tenantID, Name: name})
	if err != nil {
		return "", nil, err
	}
	return t.Secret, t.Token, nil
}

// RevokeToken revokes a token at once (its console sessions end on their
// next request: TokenPrincipal re-checks it).
func (b *Backend) RevokeToken(ctx context.Context, tokenID string) error {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return err
	}
	_, err = b.app.RevokeToken(ctx, tokenID)
	return err
}

// --- audit ---

// AuditEvents lists the newest audit events the session may see (the App
// keeps a tenant to its own).
func (b *Backend) AuditEvents(ctx context.Context, q console.AuditQuery) ([]*catalog.AuditEvent, error) {
	ctx, err := as(ctx, tenantRead)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.DefaultLimit
	}
	evs, _, err := b.app.AuditEvents(ctx, store.AuditFilter{TenantID: q.TenantID, EventType: q.EventType}, store.Page{Limit: limit})
	return evs, err
}

// VerifyAuditChain verifies the whole audit chain through the App,
// reusing a result younger than ChainTTL (the walk reads every event).
func (b *Backend) VerifyAuditChain(ctx context.Context) (*console.ChainStatus, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	b.chainMu.Lock()
	defer b.chainMu.Unlock()
	now := b.o.Now()
	if c := b.chain; c != nil && now.Sub(c.VerifiedAt) < b.o.ChainTTL && !now.Before(c.VerifiedAt) {
		cp := *c
		return &cp, nil
	}
	res, err := b.app.VerifyAudit(ctx)
	st := &console.ChainStatus{OK: err == nil, VerifiedAt: now}
	if res != nil {
		st.Events = res.Verified
	}
	if err != nil {
		var broken *audit.BrokenLinkError
		if !errors.As(err, &broken) {
			return nil, fmt.Errorf("verify audit chain: %w", err)
		}
		st.Error = broken.Error()
	}
	b.chain = st
	cp := *st
	return &cp, nil
}

// webhookErr turns the App's "no outbox" into the console's "not
// configured".
func webhookErr(err error) error {
	if catalog.ErrorCode(err) == catalog.EUNAVAILABLE {
		return fmt.Errorf("webhooks: %w", console.ErrNotImplemented)
	}
	return err
}

// maxWebhookDeliveries caps the deliveries listed per subscription and in
// all on the webhooks page.
const maxWebhookDeliveries = 200

// WebhookDeliveries lists the newest deliveries of every subscription
// (admin; the App keeps webhooks to the vendor's administrators, so a
// tenant session sees the feature as not available). tenantID, when set,
// keeps the subscriptions limited to that tenant or to every tenant.
func (b *Backend) WebhookDeliveries(ctx context.Context, tenantID string) ([]*console.WebhookDelivery, error) {
	if _, err := as(ctx, tenantRead); err != nil {
		return nil, err
	}
	if p, _ := console.PrincipalFrom(ctx); !p.Admin() {
		return nil, fmt.Errorf("webhook deliveries are the vendor's: %w", console.ErrNotImplemented)
	}
	actx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	subs, err := b.app.Webhooks(actx)
	if err != nil {
		return nil, webhookErr(err)
	}
	var out []*console.WebhookDelivery
	for _, sub := range subs {
		if tenantID != "" && sub.TenantID != "" && sub.TenantID != tenantID {
			continue
		}
		ds, err := b.app.WebhookDeliveries(actx, sub.ID, maxWebhookDeliveries)
		if err != nil {
			return nil, webhookErr(err)
		}
		for _, d := range ds {
			at := d.CreatedAt
			if !d.DeliveredAt.IsZero() {
				at = d.DeliveredAt
			}
			out = append(out, &console.WebhookDelivery{
				DeliveryID: d.ID, SubscriptionID: d.SubscriptionID, TenantID: sub.TenantID, URL: sub.URL,
				EventID: d.EventID, State: string(d.State), At: at, StatusCode: d.LastStatus,
				Attempts: d.Attempts, OK: d.State == webhook.Delivered, Error: d.LastError,
			})
		}
	}
	slices.SortStableFunc(out, func(x, y *console.WebhookDelivery) int { return y.At.Compare(x.At) })
	if len(out) > maxWebhookDeliveries {
		out = out[:maxWebhookDeliveries]
	}
	return out, nil
}

// WebhookSubscriptions lists the endpoints through the App (admin).
func (b *Backend) WebhookSubscriptions(ctx context.Context, tenantID string) ([]*console.WebhookSubscription, error) {
	ctx, err := as(ctx, adminRead)
	if err != nil {
		return nil, err
	}
	subs, err := b.app.Webhooks(ctx)
	if err != nil {
		return nil, webhookErr(err)
	}
	out := make([]*console.WebhookSubscription, 0, len(subs))
	for _, s := range subs {
		if tenantID != "" && s.TenantID != "" && s.TenantID != tenantID {
			continue
		}
		out = append(out, &console.WebhookSubscription{
			ID: s.ID, URL: s.URL, EventTypes: slices.Clone(s.EventTypes), TenantID: s.TenantID,
			Disabled: s.Disabled, DisabledReason: s.DisabledReason, FailureStreak: s.FailureStreak, CreatedAt: s.CreatedAt,
		})
	}
	return out, nil
}

// RedeliverWebhook requeues a delivery through the App (admin, writable).
func (b *Backend) RedeliverWebhook(ctx context.Context, deliveryID string) error {
	ctx, err := as(ctx, adminWrite)
	if err != nil {
		return err
	}
	return webhookErr(b.app.RedeliverWebhook(ctx, deliveryID))
}
