package httpapi

func (s *Server) routes() []route {
	return []route{
		{pattern: "POST /v1/tokens", access: adminOnly, handler: s.createToken},
		{pattern: "GET /v1/keys", access: tenantRead, handler: s.listKeys},
		{pattern: "GET /v1/admin/backup", access: adminOnly, handler: s.backup},

		{pattern: "POST /v1/tenants", access: adminOnly, handler: s.createTenant},
		{pattern: "GET /v1/tenants", access: tenantRead, handler: s.listTenants},
		{pattern: "GET /v1/tenants/{id}", access: tenantRead, handler: s.getTenant},
		{pattern: "PATCH /v1/tenants/{id}", access: adminOnly, handler: s.patchTenant},

		{pattern: "POST /v1/products", access: adminOnly, handler: s.createProduct},
		{pattern: "GET /v1/products", access: adminOnly, handler: s.listProducts},
		{pattern: "GET /v1/products/{id}", access: adminOnly, handler: s.getProduct},

		{pattern: "POST /v1/artifacts", access: adminOnly, raw: true, handler: s.createArtifact},
		{pattern: "GET /v1/artifacts/{id}", access: adminOnly, handler: s.getArtifact},
		{pattern: "POST /v1/artifacts/{id}/verify", access: adminOnly, handler: s.verifyArtifact},

		{pattern: "POST /v1/products/{id}/releases", access: adminOnly, handler: s.createRelease},
		{pattern: "GET /v1/products/{id}/releases", access: adminOnly, handler: s.listReleases},
		{pattern: "GET /v1/releases/{id}", access: adminOnly, handler: s.getRelease},
		{pattern: "POST /v1/releases/{id}/revoke", access: adminOnly, handler: s.revokeRelease},
		{pattern: "POST /v1/releases/{id}/artifacts", access: adminOnly, handler: s.attachArtifact},
		{pattern: "GET /v1/releases/{id}/artifacts", access: adminOnly, handler: s.listReleaseArtifacts},

		{pattern: "GET /v1/audit-events", access: tenantRead, handler: s.listAudit},

		{pattern: "POST /v1/tenants/{id}/snapshots", access: adminOnly, handler: s.createSnapshot},
		{pattern: "GET /v1/tenants/{id}/snapshots", access: tenantRead, handler: tenantList(s, s.Store.Snapshots)},
		{pattern: "GET /v1/snapshots/{id}", access: tenantRead, handler: s.getSnapshot},
		{pattern: "GET /v1/tenants/{id}/bundle", access: adminOnly, handler: s.exportBundle},

		{pattern: "POST /v1/tenants/{id}/mirrors", access: adminOnly, handler: s.createMirror},
		{pattern: "GET /v1/tenants/{id}/mirrors", access: tenantRead, handler: tenantList(s, s.Store.Mirrors)},
		{pattern: "PATCH /v1/mirrors/{id}", access: adminOnly, handler: s.patchMirror},
		{pattern: "DELETE /v1/mirrors/{id}", access: adminOnly, handler: s.deleteMirror},

		{pattern: "POST /v1/tenants/{id}/policies", access: adminOnly, handler: s.createPolicy},
		{pattern: "GET /v1/tenants/{id}/policies", access: tenantRead, handler: tenantList(s, s.Store.Policies)},
		{pattern: "GET /v1/policies/{id}", access: tenantRead, handler: s.getPolicy},
		{pattern: "PUT /v1/policies/{id}", access: adminOnly, handler: s.putPolicy},
		{pattern: "GET /v1/policies/{id}/versions", access: tenantRead, handler: s.policyVersions},

		{pattern: "POST /v1/tenants/{id}/blocked-versions", access: adminOnly, handler: s.createBlocked},
		{pattern: "GET /v1/tenants/{id}/blocked-versions", access: tenantRead, handler: tenantList(s, s.Store.BlockedVersions)},
		{pattern: "DELETE /v1/tenants/{id}/blocked-versions/{bid}", access: adminOnly, handler: s.deleteBlocked},

		{pattern: "POST /v1/products/{id}/rollouts", access: adminOnly, handler: s.createRollout},
		{pattern: "GET /v1/products/{id}/rollouts", access: adminOnly, handler: s.listRollouts},
		{pattern: "GET /v1/rollouts/{id}", access: adminOnly, handler: s.getRollout},
		{pattern: "PATCH /v1/rollouts/{id}", access: adminOnly, handler: s.patchRollout},

		{pattern: "POST /v1/tenants/{id}/entitlements", access: adminOnly, handler: s.createEntitlement},
		{pattern: "GET /v1/tenants/{id}/entitlements", access: tenantRead, handler: tenantList(s, s.Store.Entitlements)},
		{pattern: "GET /v1/entitlements/{id}", access: tenantRead, handler: s.getEntitlement},
		{pattern: "PATCH /v1/entitlements/{id}", access: adminOnly, handler: s.patchEntitlement},
		{pattern: "POST /v1/entitlements/{id}/seats", access: adminOnly, handler: s.assignSeat},
		{pattern: "GET /v1/entitlements/{id}/seats", access: tenantRead, handler: s.listSeats},
		{pattern: "DELETE /v1/entitlements/{id}/seats/{seat}", access: adminOnly, handler: s.revokeSeat},
		{pattern: "POST /v1/entitlements/{id}/leases", access: tenantRead, handler: s.createLease},
		{pattern: "DELETE /v1/leases/{id}", access: tenantRead, handler: s.releaseLease},

		{pattern: "GET /v1/updates/check", access: tenantRead, handler: s.updatesCheck},
		{pattern: "GET /v1/artifacts/{id}/download", access: tenantRead, handler: s.downloadArtifact},

		{pattern: "GET /v1/mirror/self", access: mirrorOnly, handler: s.mirrorSelf},
		{pattern: "GET /v1/mirror/snapshot", access: mirrorOnly, handler: s.mirrorSnapshot},
		{pattern: "GET /v1/mirror/artifacts/{id}", access: mirrorOnly, handler: s.mirrorArtifact},
		{pattern: "POST /v1/mirror/status", access: mirrorOnly, handler: s.mirrorStatus},
		{pattern: "POST /v1/mirror/audit", access: mirrorOnly, raw: true, handler: s.mirrorAudit},
	}
}
