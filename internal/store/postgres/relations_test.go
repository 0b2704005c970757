package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// views are migration 7's relations, each with the column that names the
// store object a row is.
var views = []struct{ name, id string }{
	{"outpost_tenants", "tenant_id"}, {"outpost_products", "product_id"}, {"outpost_releases", "release_id"},
	{"outpost_release_artifacts", "release_artifact_id"}, {"outpost_artifacts", "artifact_id"}, {"outpost_policies", "policy_id"},
	{"outpost_policy_versions", "version"}, {"outpost_blocked_versions", "blocklist_id"}, {"outpost_rollouts", "rollout_id"},
	{"outpost_entitlements", "entitlement_id"}, {"outpost_leases", "lease_id"}, {"outpost_seat_assignments", "seat_assignment_id"},
	{"outpost_snapshots", "snapshot_id"}, {"outpost_mirrors", "mirror_id"}, {"outpost_audit_events", "event_id"},
}

// viewNames lists the views' names.
func viewNames() []string {
	names := make([]string, len(views))
	for i, v := range views {
		names[i] = v.name
	}
	return names
}

// same reports whether a view's column g and the store's field w agree:
// times within the database's microsecond, "" as NULL (the views return
// NULL for an empty optional id), anything else equal as JSON.
func same(g, w any) bool {
	if w == "" {
		w = nil
	}
	if g == "" {
		g = nil
	}
	gs, gok := g.(string)
	ws, wok := w.(string)
	if gok && wok {
		gt, gerr := time.Parse(time.RFC3339Nano, gs)
		wt, werr := time.Parse(time.RFC3339Nano, ws)
		if gerr == nil && werr == nil {
			d := gt.Sub(wt)
			return d > -time.Microsecond && d < time.Microsecond
		}
	}
	return reflect.DeepEqual(g, w)
}

// asMap is v as the JSON object it marshals to.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRelations_Views: every view of migration 7 shows exactly the
// objects the store holds, column for column as the store's API gives
// them; no view shows a credential; and a role granted SELECT on the
// views alone reads them but not outpost_kv.
func TestRelations_Views(t *testing.T) {
	ctx, db, tn := openWithTenant(t)
	now := time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "widget", Metadata: json.RawMessage(`{"team":"core"}`)}
	must(db.CreateProduct(ctx, p))
	a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: strings.Repeat("ab", 32),
		SizeBytes: 1 << 40, StoragePath: "widget/1.0.0.zip"}
	must(db.CreateArtifact(ctx, a))
	_, err := db.SetArtifactStatus(ctx, a.ArtifactID, catalog.ArtifactVerified, &now)
	must(err)
	r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "1.0.0",
		Metadata: json.RawMessage(`{"notes":"first"}`)}
	must(db.CreateRelease(ctx, r))
	old := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: "0.9.0"}
	must(db.CreateRelease(ctx, old))
	_, err = db.RevokeRelease(ctx, old.ReleaseID, now)
	must(err)
	ra := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: a.ArtifactID,
		Platform: "linux", Arch: "arm64", InstallerType: "deb", RequiresAdmin: true}
	must(db.AttachArtifact(ctx, ra))
	pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable",
		Action: catalog.ActionNotify, Conditions: json.RawMessage(`{"min_version":"0.5.0"}`)}
	must(db.CreatePolicy(ctx, pol))
	_, err = db.UpdatePolicy(ctx, pol.PolicyID, func(x *catalog.Policy) error { x.Priority = 3; return nil })
	must(err)
	blk := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID,
		BlockedVersion: "0.9.0", Reason: "crashes"}
	must(db.CreateBlockedVersion(ctx, blk))
	ro := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID,
		Percentage: 12.5, Status: catalog.RolloutActive}
	must(db.CreateRollout(ctx, ro))
	end := now.Add(365 * 24 * time.Hour)
	ent := &catalog.Entitlement{EntitlementID: catalog.NewID(catalog.PrefixEntitlement), TenantID: tn.TenantID, ProductID: p.ProductID,
		Policy: json.RawMessage(`{"max_seats":3,"seat_assignment_mode":"explicit"}`), StartsAt: now.Add(-time.Hour), EndsAt: &end}
	must(db.CreateEntitlement(ctx, ent))
	seat := &catalog.SeatAssignment{SeatAssignmentID: catalog.NewID(catalog.PrefixSeat), EntitlementID: ent.EntitlementID,
		SubjectType: catalog.SubjectMachine, SubjectID: "m1", AssignedBy: "usr_test"}
	must(db.AssignSeat(ctx, seat))
	l, err := db.AcquireLease(ctx, &catalog.Lease{EntitlementID: ent.EntitlementID, SubjectType: catalog.SubjectMachine, SubjectID: "m1",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), TokenHash: strings.Repeat("cd", 32)})
	must(err)
	m := &catalog.Mirror{MirrorID: catalog.NewID(catalog.PrefixMirror), TenantID: tn.TenantID, Name: "plant-a", VendorURL: "https://vendor.example",
		AllowedChannels: []string{"stable"}, CredentialHash: strings.Repeat("ef", 32), CredentialEnc: []byte("sealed")}
	must(db.CreateMirror(ctx, m))
	snap, err := db.CreateSnapshot(ctx, tn.TenantID, func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		return &catalog.Snapshot{SnapshotID: catalog.NewID(catalog.PrefixSnapshot), TenantID: tn.TenantID, Sequence: in.Sequence,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), Envelope: []byte(`{"payload":"x"}`)}, nil
	})
	must(err)

	// What the store's API gives, by view and id.
	get := func(v any, err error) any { must(err); return v }
	want := map[string]map[string]any{
		"outpost_tenants":           {tn.TenantID: get(db.Tenant(ctx, tn.TenantID))},
		"outpost_products":          {p.ProductID: get(db.Product(ctx, p.ProductID))},
		"outpost_releases":          {r.ReleaseID: get(db.Release(ctx, r.ReleaseID)), old.ReleaseID: get(db.Release(ctx, old.ReleaseID))},
		"outpost_release_artifacts": {ra.ReleaseArtifactID: ra},
		"outpost_artifacts":         {a.ArtifactID: get(db.Artifact(ctx, a.ArtifactID))},
		"outpost_policies":          {pol.PolicyID: get(db.Policy(ctx, pol.PolicyID))},
		"outpost_policy_versions":   {},
		"outpost_blocked_versions":  {blk.BlocklistID: blk},
		"outpost_rollouts":          {ro.RolloutID: get(db.Rollout(ctx, ro.RolloutID))},
		"outpost_entitlements":      {ent.EntitlementID: get(db.Entitlement(ctx, ent.EntitlementID))},
		"outpost_leases":            {l.LeaseID: get(db.Lease(ctx, l.LeaseID))},
		"outpost_seat_assignments":  {seat.SeatAssignmentID: seat},
		"outpost_snapshots":         {snap.SnapshotID: get(db.Snapshot(ctx, snap.SnapshotID))},
		"outpost_mirrors":           {m.MirrorID: get(db.Mirror(ctx, m.MirrorID))},
		"outpost_audit_events":      {},
	}
	versions, err := db.PolicyVersions(ctx, pol.PolicyID)
	must(err)
	if len(versions) != 2 {
		t.Fatalf("policy versions: %d, want 2", len(versions))
	}
	for _, v := range versions {
		want["outpost_policy_versions"][fmt.Sprint(v.Version)] = v
	}
	events, _, err := db.AuditEvents(ctx, store.AuditFilter{}, store.Page{Limit: store.MaxLimit})
	must(err)
	for _, ev := range events {
		want["outpost_audit_events"][ev.EventID] = ev
	}
	if len(events) < 15 {
		t.Fatalf("audit events: %d, want one a write (15 or more)", len(events))
	}

	for _, view := range views {
		t.Run(view.name, func(t *testing.T) {
			rows, err := db.pool.Query(ctx, "SELECT to_jsonb(v) FROM "+view.name+" v")
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[map[string]any])
			if err != nil {
				t.Fatal(err)
			}
			objs := want[view.name]
			if len(got) != len(objs) {
				t.Fatalf("%d rows, want %d", len(got), len(objs))
			}
			key := view.id
			for _, row := range got {
				obj, ok := objs[fmt.Sprint(row[key])]
				if !ok {
					t.Fatalf("row %v: %s %v is no object the store holds", row, key, row[key])
				}
				fields := asMap(t, obj)
				for col, v := range row {
					if !same(v, fields[col]) {
						t.Errorf("%s %v: column %s = %#v, want %#v", key, row[key], col, v, fields[col])
					}
				}
			}
		})
	}

	t.Run("no credentials", func(t *testing.T) {
		var cols []string
		rows, err := db.pool.Query(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name LIKE 'outpost\_%' AND table_name = ANY($1)`, viewNames())
		must(err)
		cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
		must(err)
		if len(cols) < 100 {
			t.Fatalf("%d view columns, want the seed's (over 100)", len(cols))
		}
		for _, c := range cols {
			if strings.Contains(c, "credential") || strings.Contains(c, "holder") {
				t.Errorf("view column %s", c)
			}
		}
	})

	t.Run("a role granted the views reads them and not outpost_kv", func(t *testing.T) {
		var schema string
		must(db.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema))
		role := "outpost_report_" + strings.TrimPrefix(schema, "outpost_test_")
		admin := func(q string) {
			t.Helper()
			if _, err := db.pool.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		admin("CREATE ROLE " + role + " NOLOGIN")
		t.Cleanup(func() {
			for _, q := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
				if _, err := db.pool.Exec(context.Background(), q); err != nil {
					t.Errorf("%s: %v", q, err)
				}
			}
		})
		admin("GRANT USAGE ON SCHEMA " + schema + " TO " + role)
		admin("GRANT SELECT ON " + strings.Join(viewNames(), ", ") + " TO " + role)
		as := func(q string) (int, string) {
			var n int
			err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
					return err
				}
				return tx.QueryRow(ctx, q).Scan(&n)
			})
			if err != nil {
				return 0, err.Error()
			}
			return n, ""
		}
		if n, err := as("SELECT count(*) FROM outpost_releases WHERE status = 'REVOKED'"); err != "" || n != 1 {
			t.Fatalf("revoked releases as the reporting role: %d, %s; want 1", n, err)
		}
		// The README's example: seats in use by tenant and product.
		if n, err := as(`SELECT count(*) FROM (SELECT e.tenant_id, e.product_id, count(*) FROM outpost_leases l
			JOIN outpost_entitlements e USING (entitlement_id)
			WHERE l.released_at IS NULL AND l.expires_at > now() GROUP BY 1, 2) AS s`); err != "" || n != 1 {
			t.Fatalf("the README's query as the reporting role: %d rows, %s; want 1", n, err)
		}
		for _, table := range []string{"outpost_kv", "outpost_release_ref", "schema_migrations"} {
			if _, err := as("SELECT count(*) FROM " + table); !strings.Contains(err, "42501") {
				t.Errorf("%s as the reporting role: %q, want permission denied (42501)", table, err)
			}
		}
		var barriers int
		must(db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace
			AND relname = ANY($1) AND 'security_barrier=true' = ANY(reloptions)`, viewNames()).Scan(&barriers))
		if barriers != len(views) {
			t.Fatalf("%d of %d views are security barriers", barriers, len(views))
		}
	})
}
