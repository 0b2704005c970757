package httpapi

import (
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/webhook"
	"github.com/outpost/outpost/internal/wire"
)

// routes is the control plane's API: each route, who may call it, and the
// one service call it makes (docs/architecture.md has the same table).
// {id} path values go to the service as they are: it checks them.
func (s *Server) routes() []route {
	a := s.App
	id := func(r *http.Request) string { return r.PathValue("id") }
	return []route{
		{pattern: "POST /v1/tokens", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.TokenInput) (*controlplane.TokenCreated, error) {
			return a.CreateToken(r.Context(), in)
		})},
		{pattern: "GET /v1/tokens", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Token, string, error) {
			return a.ListTokens(r.Context(), pg)
		})},
		{pattern: "DELETE /v1/tokens/{id}", access: tenantRead, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Token, error) { return a.RevokeToken(r.Context(), id(r)) })},
		{pattern: "GET /v1/keys", access: tenantRead, handler: all(func(r *http.Request) ([]controlplane.PublicKey, error) { return a.PublicKeys(r.Context()) })},
		{pattern: "GET /v1/admin/backup", access: adminOnly, stream: true, handler: s.backup},
		{pattern: "GET /v1/audit-events", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.AuditEvent, string, error) {
			q := r.URL.Query()
			return a.AuditEvents(r.Context(), store.AuditFilter{TenantID: q.Get("tenant_id"), EventType: q.Get("event_type")}, pg)
		})},

		{pattern: "POST /v1/tenants", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.TenantInput) (*catalog.Tenant, error) {
			return a.CreateTenant(r.Context(), in)
		})},
		{pattern: "GET /v1/tenants", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Tenant, string, error) {
			return a.Tenants(r.Context(), pg)
		})},
		{pattern: "GET /v1/tenants/{id}", access: tenantRead, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Tenant, error) { return a.Tenant(r.Context(), id(r)) })},
		{pattern: "PATCH /v1/tenants/{id}", access: adminOnly, body: true, handler: change(func(r *http.Request, in controlplane.TenantPatch) (*catalog.Tenant, error) {
			return a.UpdateTenant(r.Context(), id(r), in)
		})},

		{pattern: "POST /v1/products", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.ProductInput) (*catalog.Product, error) {
			return a.CreateProduct(r.Context(), in)
		})},
		{pattern: "GET /v1/products", access: adminOnly, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Product, string, error) {
			return a.Products(r.Context(), pg)
		})},
		{pattern: "GET /v1/products/{id}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Product, error) { return a.Product(r.Context(), id(r)) })},

		{pattern: "POST /v1/artifacts", access: adminOnly, raw: true, handler: s.createArtifact},
		{pattern: "GET /v1/artifacts/{id}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Artifact, error) { return a.Artifact(r.Context(), id(r)) })},
		{pattern: "POST /v1/artifacts/{id}/verify", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*controlplane.Verification, error) { return a.VerifyArtifact(r.Context(), id(r)) })},
		{pattern: "GET /v1/artifacts/{id}/download", access: tenantRead, stream: true, handler: s.downloadArtifact},

		{pattern: "POST /v1/products/{id}/releases", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.ReleaseInput) (*catalog.Release, error) {
			return a.CreateRelease(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/products/{id}/releases", access: adminOnly, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Release, string, error) {
			return a.Releases(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/releases/{id}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*controlplane.ReleaseView, error) { return a.Release(r.Context(), id(r)) })},
		{pattern: "POST /v1/releases/{id}/revoke", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Release, error) { return a.RevokeRelease(r.Context(), id(r)) })},
		{pattern: "POST /v1/releases/{id}/artifacts", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.AttachInput) (*catalog.ReleaseArtifact, error) {
			return a.AttachArtifact(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/releases/{id}/artifacts", access: adminOnly, handler: all(func(r *http.Request) ([]*catalog.ReleaseArtifact, error) {
			return a.ReleaseArtifacts(r.Context(), id(r))
		})},
		{pattern: "GET /v1/releases/{id}/deltas", access: adminOnly, handler: all(func(r *http.Request) ([]*controlplane.DeltaJob, error) {
			return a.ReleaseDeltas(r.Context(), id(r))
		})},
		{pattern: "GET /v1/deltas/{id}/download", access: tenantRead, stream: true, handler: s.downloadDelta},

		{pattern: "POST /v1/tenants/{id}/snapshots", access: adminOnly, handler: call(http.StatusCreated, func(r *http.Request) (*catalog.Snapshot, error) { return a.BuildSnapshot(r.Context(), id(r)) })},
		{pattern: "GET /v1/tenants/{id}/snapshots", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Snapshot, string, error) {
			return a.Snapshots(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/snapshots/{id}", access: tenantRead, stream: true, handler: s.getSnapshot},
		{pattern: "GET /v1/tenants/{id}/bundle", access: adminOnly, stream: true, handler: s.exportBundle},

		{pattern: "POST /v1/tenants/{id}/mirrors", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.MirrorInput) (*controlplane.MirrorCreated, error) {
			return a.CreateMirror(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/tenants/{id}/mirrors", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Mirror, string, error) {
			return a.Mirrors(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/mirrors/{id}", access: tenantRead, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Mirror, error) { return a.Mirror(r.Context(), id(r)) })},
		{pattern: "PATCH /v1/mirrors/{id}", access: adminOnly, body: true, handler: change(func(r *http.Request, in controlplane.MirrorPatch) (*catalog.Mirror, error) {
			return a.UpdateMirror(r.Context(), id(r), in)
		})},
		{pattern: "DELETE /v1/mirrors/{id}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Mirror, error) { return a.DeactivateMirror(r.Context(), id(r)) })},

		{pattern: "POST /v1/tenants/{id}/policies", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.PolicyInput) (*catalog.Policy, error) {
			return a.CreatePolicy(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/tenants/{id}/policies", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Policy, string, error) {
			return a.Policies(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/policies/{id}", access: tenantRead, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Policy, error) { return a.Policy(r.Context(), id(r)) })},
		{pattern: "PUT /v1/policies/{id}", access: adminOnly, body: true, handler: change(func(r *http.Request, in controlplane.PolicyUpdate) (*catalog.Policy, error) {
			return a.UpdatePolicy(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/policies/{id}/versions", access: tenantRead, handler: all(func(r *http.Request) ([]*catalog.Policy, error) { return a.PolicyVersions(r.Context(), id(r)) })},

		{pattern: "POST /v1/tenants/{id}/blocked-versions", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.BlockedInput) (*catalog.BlockedVersion, error) {
			return a.CreateBlockedVersion(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/tenants/{id}/blocked-versions", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.BlockedVersion, string, error) {
			return a.BlockedVersions(r.Context(), id(r), pg)
		})},
		{pattern: "DELETE /v1/tenants/{id}/blocked-versions/{bid}", access: adminOnly, handler: func(w http.ResponseWriter, r *http.Request) error {
			if err := a.DeleteBlockedVersion(r.Context(), id(r), r.PathValue("bid")); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}},

		{pattern: "POST /v1/products/{id}/rollouts", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.RolloutInput) (*catalog.Rollout, error) {
			return a.CreateRollout(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/products/{id}/rollouts", access: adminOnly, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Rollout, string, error) {
			return a.Rollouts(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/rollouts/{id}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Rollout, error) { return a.Rollout(r.Context(), id(r)) })},
		{pattern: "PATCH /v1/rollouts/{id}", access: adminOnly, body: true, handler: change(func(r *http.Request, in controlplane.RolloutPatch) (*catalog.Rollout, error) {
			return a.UpdateRollout(r.Context(), id(r), in)
		})},

		{pattern: "POST /v1/tenants/{id}/entitlements", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.EntitlementInput) (*catalog.Entitlement, error) {
			return a.CreateEntitlement(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/tenants/{id}/entitlements", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.Entitlement, string, error) {
			return a.Entitlements(r.Context(), id(r), pg)
		})},
		{pattern: "GET /v1/entitlements/{id}", access: tenantRead, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Entitlement, error) { return a.Entitlement(r.Context(), id(r)) })},
		{pattern: "PATCH /v1/entitlements/{id}", access: adminOnly, body: true, handler: change(func(r *http.Request, in controlplane.EntitlementPatch) (*catalog.Entitlement, error) {
			return a.UpdateEntitlement(r.Context(), id(r), in)
		})},
		{pattern: "POST /v1/entitlements/{id}/seats", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.Subject) (*catalog.SeatAssignment, error) {
			return a.AssignSeat(r.Context(), id(r), in)
		})},
		{pattern: "GET /v1/entitlements/{id}/seats", access: tenantRead, paged: true, handler: paged(func(r *http.Request, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
			return a.Seats(r.Context(), id(r), pg)
		})},
		{pattern: "DELETE /v1/entitlements/{id}/seats/{seat}", access: adminOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.SeatAssignment, error) {
			return a.RevokeSeat(r.Context(), id(r), r.PathValue("seat"))
		})},
		{pattern: "POST /v1/entitlements/{id}/leases", access: tenantRead, limited: true, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.Subject) (*controlplane.LeaseIssued, error) {
			in.HolderSecret = r.Header.Get(wire.HeaderLeaseSecret)
			return a.AcquireLease(r.Context(), id(r), in)
		})},
		{pattern: "DELETE /v1/leases/{id}", access: tenantRead, limited: true, handler: call(http.StatusOK, func(r *http.Request) (*catalog.Lease, error) {
			return a.ReleaseLease(r.Context(), id(r), r.Header.Get(wire.HeaderLeaseSecret))
		})},

		{pattern: "GET /v1/updates/check", access: tenantRead, handler: s.updatesCheck},

		{pattern: "GET /v1/mirror/self", access: mirrorOnly, handler: call(http.StatusOK, func(r *http.Request) (*controlplane.MirrorSelf, error) { return a.Self(r.Context()) })},
		{pattern: "GET /v1/mirror/snapshot", access: mirrorOnly, stream: true, handler: s.mirrorSnapshot},
		{pattern: "GET /v1/mirror/artifacts/{id}", access: mirrorOnly, stream: true, handler: s.downloadArtifact},
		{pattern: "GET /v1/mirror/deltas/{id}", access: mirrorOnly, stream: true, handler: s.downloadDelta},
		{pattern: "POST /v1/mirror/status", access: mirrorOnly, body: true, handler: create(http.StatusOK, func(r *http.Request, in controlplane.SyncReport) (*catalog.Mirror, error) {
			return a.ReportSync(r.Context(), in)
		})},
		{pattern: "GET /v1/mirror/audit/head", access: mirrorOnly, handler: call(http.StatusOK, func(r *http.Request) (*catalog.AuditHead, error) { return a.AuditHead(r.Context()) })},
		{pattern: "POST /v1/mirror/audit", access: mirrorOnly, raw: true, handler: s.ingestAudit},
		{pattern: "GET /v1/mirror/tuf/{path...}", access: mirrorOnly, handler: s.serveTUF},
		{pattern: "GET /v1/tenants/{id}/tuf/{path...}", access: tenantRead, handler: s.serveTUF},
		{pattern: "GET /v1/tenants/{id}/root", access: tenantRead, handler: s.tufRoot},
		{pattern: "POST /v1/mirror/reports", access: mirrorOnly, raw: true, handler: s.importReport(a.UploadReport)},
		{pattern: "POST /v1/reports", access: adminOnly, raw: true, handler: s.importReport(a.ImportReport)},
		{pattern: "POST /v1/mirror-audit", access: adminOnly, raw: true, handler: s.importMirrorAudit},

		{pattern: "POST /v1/webhooks", access: adminOnly, body: true, handler: create(http.StatusCreated, func(r *http.Request, in controlplane.WebhookInput) (*controlplane.WebhookCreated, error) {
			return a.CreateWebhook(r.Context(), in)
		})},
		{pattern: "GET /v1/webhooks", access: adminOnly, handler: all(func(r *http.Request) ([]*webhook.Subscription, error) { return a.Webhooks(r.Context()) })},
		{pattern: "DELETE /v1/webhooks/{id}", access: adminOnly, handler: noContent(func(r *http.Request) error { return a.DeleteWebhook(r.Context(), id(r)) })},
		{pattern: "GET /v1/webhooks/{id}/deliveries", access: adminOnly, handler: all(func(r *http.Request) ([]webhook.Delivery, error) {
			return a.WebhookDeliveries(r.Context(), id(r), 0)
		})},
		{pattern: "GET /v1/webhooks/deliveries/{id}/attempts", access: adminOnly, handler: all(func(r *http.Request) ([]webhook.Attempt, error) {
			return a.WebhookAttempts(r.Context(), id(r))
		})},
		{pattern: "POST /v1/webhooks/deliveries/{id}/redeliver", access: adminOnly, handler: noContent(func(r *http.Request) error { return a.RedeliverWebhook(r.Context(), id(r)) })},
	}
}

// RouteInfo describes one route of the table, for tests that walk every
// route (the hostile-input suite) and for documentation.
type RouteInfo struct {
	Pattern string // "METHOD /path/{id}"
	Access  string // "admin", "tenant" (admin or tenant) or "mirror"
	Body    bool   // takes a JSON body
	Raw     bool   // reads its own body (uploads)
	Paged   bool   // takes ?limit= and ?cursor=
}

// Routes lists the control plane's API routes (routes.go's table).
func Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range (&Server{}).routes() {
		a := map[access]string{adminOnly: "admin", tenantRead: "tenant", mirrorOnly: "mirror"}[rt.access]
		out = append(out, RouteInfo{Pattern: rt.pattern, Access: a, Body: rt.body, Raw: rt.raw, Paged: rt.paged})
	}
	return out
}
