package consoletest

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
)

// Seeded names the objects Seed creates.
type Seeded struct {
	AdminToken, AdminROToken, TenantToken, TenantROToken, OtherTenantToken string
	Acme, Globex                                                           *catalog.Tenant
	App                                                                    *catalog.Product
	Release                                                                *catalog.Release
	Rollout                                                                *catalog.Rollout
	Mirror                                                                 *catalog.Mirror
	Policy                                                                 *catalog.Policy
	Blocked                                                                *catalog.BlockedVersion
	Entitlement                                                            *catalog.Entitlement
}

// Seed fills f with a small, realistic catalog: two tenants, a product
// with two releases and a rollout with a day of fleet reports, mirrors
// (fresh, stale, one with a fork alert), entitlements with usage, policies
// with history, a blocked version, webhooks and tokens for every role.
func Seed(f *Fake) *Seeded {
	now := f.Now().UTC()
	s := &Seeded{
		AdminToken: "opt_admin_secret", AdminROToken: "opt_admin_ro_secret",
		TenantToken: "opt_tenant_secret", TenantROToken: "opt_tenant_ro_secret", OtherTenantToken: "opt_other_secret",
	}
	f.mu.Lock()
	day := now.Add(-30 * 24 * time.Hour)
	s.Acme = &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Acme Corp", Status: catalog.TenantActive, CreatedAt: day}
	s.Globex = &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "Globex", Status: catalog.TenantActive, CreatedAt: day}
	f.TenantList = append(f.TenantList, s.Acme, s.Globex)
	s.App = &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Acme App", Distribution: catalog.DistributionLicensed, CreatedAt: day}
	f.ProductList = append(f.ProductList, s.App)
	r1 := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: s.App.ProductID, Channel: "stable", Version: "1.0.0", PublishedAt: day.Add(24 * time.Hour), Status: catalog.ReleaseActive}
	s.Release = &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: s.App.ProductID, Channel: "stable", Version: "1.1.0", PublishedAt: now.Add(-26 * time.Hour), Status: catalog.ReleaseActive}
	f.ReleaseList = append(f.ReleaseList, r1, s.Release)
	s.Rollout = &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: s.App.ProductID, Channel: "stable", ReleaseID: s.Release.ReleaseID,
		Percentage: 50, Status: catalog.RolloutActive, CreatedAt: now.Add(-24 * time.Hour), UpdatedAt: now.Add(-2 * time.Hour)}
	f.RolloutList = append(f.RolloutList, &console.RolloutInfo{Rollout: s.Rollout, Release: s.Release,
		Schedule: []console.RolloutStep{{At: now.Add(-24 * time.Hour), Percentage: 10}, {At: now.Add(-2 * time.Hour), Percentage: 50}, {At: now.Add(22 * time.Hour), Percentage: 100}},
		Gate:     &console.HealthGate{MaxFailureRate: 5, MinReports: 100, State: "passing"}})
	f.Series[s.Rollout.RolloutID] = &console.RolloutSeries{
		Adoption:    series(now, 25, func(i int) float64 { return math.Round(48*(1-math.Exp(-float64(i)/6))*10) / 10 }),
		FailureRate: series(now, 25, func(i int) float64 { return math.Round((1.2+0.8*math.Sin(float64(i)/3))*10) / 10 }),
	}
	synced := now.Add(-7 * time.Minute)
	old := now.Add(-9 * time.Hour)
	s.Mirror = &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: s.Acme.TenantID, Name: "acme-dc1", AllowedChannels: []string{"stable"},
		Status: catalog.MirrorActive, LastSyncAt: &synced, CreatedAt: day, UpdatedAt: synced}
	m2 := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: s.Acme.TenantID, Name: "acme-lab (air-gapped)", AllowedChannels: []string{"stable", "beta"},
		Status: catalog.MirrorActive, LastSyncAt: &old, LastSyncError: "bundle import: snapshot sequence 40 is older than held 41", CreatedAt: day, UpdatedAt: old}
	m3 := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: s.Globex.TenantID, Name: "globex-hq", AllowedChannels: []string{"stable"},
		Status: catalog.MirrorActive, LastSyncAt: &synced, CreatedAt: day, UpdatedAt: synced}
	f.MirrorList = append(f.MirrorList,
		&console.MirrorInfo{Mirror: s.Mirror, MetadataVersion: 42, LatestVersion: 42, ExpiresAt: now.Add(6*24*time.Hour + 5*time.Hour)},
		&console.MirrorInfo{Mirror: m2, MetadataVersion: 41, LatestVersion: 42, ExpiresAt: now.Add(20 * time.Hour)},
		&console.MirrorInfo{Mirror: m3, MetadataVersion: 17, LatestVersion: 17, ExpiresAt: now.Add(5 * 24 * time.Hour),
			ForkAlerts: []console.ForkAlert{{At: now.Add(-3 * time.Hour), Detail: "reported version 17 with a different hash than the control plane signed"}}})
	end := now.Add(335 * 24 * time.Hour)
	s.Entitlement = &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: s.Acme.TenantID, ProductID: s.App.ProductID,
		Policy: json.RawMessage(`{"max_seats":50}`), StartsAt: day, EndsAt: &end, CreatedAt: day, UpdatedAt: day}
	e2 := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: s.Globex.TenantID, ProductID: s.App.ProductID,
		Policy: json.RawMessage(`{"max_seats":20}`), StartsAt: day, CreatedAt: day, UpdatedAt: day}
	f.EntitlementList = append(f.EntitlementList,
		&console.EntitlementInfo{Entitlement: s.Entitlement, Product: s.App, MaxSeats: 50, SeatsAssigned: 0, LeasesActive: 37},
		&console.EntitlementInfo{Entitlement: e2, Product: s.App, MaxSeats: 20, SeatsAssigned: 0, LeasesActive: 18})
	f.Usage[s.Entitlement.EntitlementID] = &console.UsageSeries{
		Seats:  series(now, 25, func(i int) float64 { return 40 }),
		Leases: series(now, 25, func(i int) float64 { return math.Round(28 + 9*math.Sin(float64(i)/4)) }),
	}
	f.Usage[e2.EntitlementID] = &console.UsageSeries{Leases: series(now, 25, func(i int) float64 { return float64(10 + i%9) })}
	pid := catalog.NewID(catalog.PrefixPolicy)
	for v := 1; v <= 3; v++ {
		action := []string{catalog.ActionNotify, catalog.ActionDownload, catalog.ActionInstall}[v-1]
		p := &catalog.Policy{PolicyID: pid, TenantID: s.Acme.TenantID, ProductID: s.App.ProductID, Channel: "stable", Action: action,
			Conditions: json.RawMessage(`{"all":[{"field":"os","op":"eq","value":"linux"}]}`), Priority: 10, Version: v,
			CreatedAt: day, UpdatedAt: day.Add(time.Duration(v) * 72 * time.Hour)}
		f.PolicyHistory[pid] = append(f.PolicyHistory[pid], p)
		s.Policy = p
	}
	s.Blocked = &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: s.Acme.TenantID, ProductID: s.App.ProductID,
		BlockedVersion: "1.0.0", Reason: "breaks the LDAP connector", CreatedAt: now.Add(-5 * 24 * time.Hour)}
	f.Blocked = append(f.Blocked, s.Blocked)
	f.Webhooks = []*console.WebhookDelivery{
		{DeliveryID: "whd_2", TenantID: s.Acme.TenantID, URL: "https://hooks.acme.example/outpost", EventType: "rollout.updated", At: now.Add(-2 * time.Hour), StatusCode: 503, Attempts: 3, Error: "service unavailable", State: "failed"},
		{DeliveryID: "whd_1", TenantID: s.Acme.TenantID, URL: "https://hooks.acme.example/outpost", EventType: "release.created", At: now.Add(-26 * time.Hour), StatusCode: 200, Attempts: 1, OK: true, State: "delivered"},
	}
	f.WebhookSubs = []*console.WebhookSubscription{
		{ID: "whs_1", URL: "https://hooks.acme.example/outpost", EventTypes: []string{"release.created", "rollout.updated"}, TenantID: s.Acme.TenantID, FailureStreak: 1, CreatedAt: now.Add(-30 * 24 * time.Hour)},
	}
	f.mu.Unlock()
	f.AddToken(s.AdminToken, console.RoleAdmin, "", "ops")
	f.AddToken(s.AdminROToken, console.RoleAdminRO, "", "auditor")
	f.AddToken(s.TenantToken, console.RoleTenant, s.Acme.TenantID, "acme admin")
	f.AddToken(s.TenantROToken, console.RoleTenantRO, s.Acme.TenantID, "acme viewer")
	f.AddToken(s.OtherTenantToken, console.RoleTenant, s.Globex.TenantID, "globex admin")
	f.mu.Lock()
	for _, t := range []string{"tenant.created", "product.created", "release.created", "release.created", "rollout.created", "mirror.created", "entitlement.created", "policy.updated", "snapshot.created"} {
		tid := ""
		if t == "mirror.created" || t == "entitlement.created" || t == "policy.updated" || t == "snapshot.created" {
			tid = s.Acme.TenantID
		}
		f.audit(console.WithPrincipal(context.Background(), console.Principal{Role: console.RoleAdmin, TokenID: "tok_seed"}), tid, t, map[string]string{"seed": t})
	}
	for i, e := range f.Audit {
		e.CreatedAt = now.Add(time.Duration(i-len(f.Audit)) * time.Hour)
	}
	f.mu.Unlock()
	return s
}
