package consoleapp_test

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
)

// apiWho reads who may call each API route from docs/architecture.md's
// route table (kept whole against the route table by httpapi's
// TestRoutes_Documented).
func apiWho(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([A-Z]+ [^`]+)` \\| ([a-z, ]+) \\|")
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]] = m[2]
		}
	}
	if len(out) < 40 {
		t.Fatalf("read %d routes from the architecture page's route table, want them all", len(out))
	}
	return out
}

// TestBackend_SameRolesAsTheAPI calls every backend operation as a
// tenant session and checks it is refused exactly when the API's route
// for the same operation is for admins only.
func TestBackend_SameRolesAsTheAPI(t *testing.T) {
	w := setup(t)
	who := apiWho(t)
	mine := console.WithPrincipal(context.Background(), w.mine)
	ops := []struct {
		name, route string
		call        func(ctx context.Context) error
	}{
		{"Tenants", "GET /v1/tenants", func(ctx context.Context) error { _, err := w.b.Tenants(ctx); return err }},
		{"Tenant", "GET /v1/tenants/{id}", func(ctx context.Context) error { _, err := w.b.Tenant(ctx, w.tMine); return err }},
		{"CreateTenant", "POST /v1/tenants", func(ctx context.Context) error { _, err := w.b.CreateTenant(ctx, "x"); return err }},
		{"Products", "GET /v1/products", func(ctx context.Context) error { _, err := w.b.Products(ctx); return err }},
		{"Product", "GET /v1/products/{id}", func(ctx context.Context) error { _, err := w.b.Product(ctx, w.product); return err }},
		{"CreateProduct", "POST /v1/products", func(ctx context.Context) error { _, err := w.b.CreateProduct(ctx, "x", "open"); return err }},
		{"Releases", "GET /v1/products/{id}/releases", func(ctx context.Context) error { _, err := w.b.Releases(ctx, w.product); return err }},
		{"Release", "GET /v1/releases/{id}", func(ctx context.Context) error { _, err := w.b.Release(ctx, w.release); return err }},
		{"PublishRelease", "POST /v1/artifacts", func(ctx context.Context) error {
			_, err := w.b.PublishRelease(ctx, console.PublishRequest{ProductID: w.product, Channel: "stable", Version: "7.0.0", Platform: "linux", Arch: "x64", InstallerType: "zip", SizeBytes: 1}, strings.NewReader("x"))
			return err
		}},
		{"RevokePreview", "GET /v1/releases/{id}", func(ctx context.Context) error { _, err := w.b.RevokePreview(ctx, w.release); return err }},
		{"RevokeRelease", "POST /v1/releases/{id}/revoke", func(ctx context.Context) error { _, err := w.b.RevokeRelease(ctx, w.release); return err }},
		{"Rollouts", "GET /v1/products/{id}/rollouts", func(ctx context.Context) error { _, err := w.b.Rollouts(ctx, w.product); return err }},
		{"Rollout", "GET /v1/rollouts/{id}", func(ctx context.Context) error { _, err := w.b.Rollout(ctx, w.rollout); return err }},
		{"RolloutSeries", "GET /v1/rollouts/{id}", func(ctx context.Context) error { _, err := w.b.RolloutSeries(ctx, w.rollout); return err }},
		{"CreateRollout", "POST /v1/products/{id}/rollouts", func(ctx context.Context) error {
			_, err := w.b.CreateRollout(ctx, console.RolloutRequest{ProductID: w.product, ReleaseID: w.release, Percentage: 1})
			return err
		}},
		{"UpdateRollout", "PATCH /v1/rollouts/{id}", func(ctx context.Context) error {
			p := 50.0
			_, err := w.b.UpdateRollout(ctx, w.rollout, console.RolloutUpdate{Percentage: &p})
			return err
		}},
		{"BlockedVersions", "GET /v1/tenants/{id}/blocked-versions", func(ctx context.Context) error { _, err := w.b.BlockedVersions(ctx, w.tMine); return err }},
		{"BlockVersion", "POST /v1/tenants/{id}/blocked-versions", func(ctx context.Context) error {
			_, err := w.b.BlockVersion(ctx, &catalog.BlockedVersion{TenantID: w.tMine, ProductID: w.product, BlockedVersion: "0.1.0"})
			return err
		}},
		{"UnblockVersion", "DELETE /v1/tenants/{id}/blocked-versions/{bid}", func(ctx context.Context) error {
			return w.b.UnblockVersion(ctx, w.tMine, "blk_00000000000000000000000000")
		}},
		{"Policies", "GET /v1/tenants/{id}/policies", func(ctx context.Context) error { _, err := w.b.Policies(ctx, w.tMine); return err }},
		{"PolicyVersions", "GET /v1/policies/{id}/versions", func(ctx context.Context) error {
			_, err := w.b.PolicyVersions(ctx, "pol_00000000000000000000000000")
			return err
		}},
		{"Mirrors", "GET /v1/tenants/{id}/mirrors", func(ctx context.Context) error { _, err := w.b.Mirrors(ctx, w.tMine); return err }},
		{"Entitlements", "GET /v1/tenants/{id}/entitlements", func(ctx context.Context) error { _, err := w.b.Entitlements(ctx, w.tMine); return err }},
		{"EntitlementSeries", "GET /v1/entitlements/{id}", func(ctx context.Context) error {
			_, err := w.b.EntitlementSeries(ctx, "ent_00000000000000000000000000")
			return err
		}},
		{"CreateToken", "POST /v1/tokens", func(ctx context.Context) error { _, _, err := w.b.CreateToken(ctx, "tenant", w.tMine, "x"); return err }},
		{"AuditEvents", "GET /v1/audit-events", func(ctx context.Context) error { _, err := w.b.AuditEvents(ctx, console.AuditQuery{}); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			roles, ok := who[op.route]
			if !ok {
				t.Fatalf("no API route %q in the route table", op.route)
			}
			wantForbidden := !strings.Contains(roles, "tenant")
			err := op.call(mine)
			if got := catalog.ErrorCode(err) == catalog.EFORBIDDEN; got != wantForbidden {
				t.Errorf("as a tenant: got %v; the API's %s is for %q, so refused=%v", err, op.route, roles, wantForbidden)
			}
		})
	}
}
