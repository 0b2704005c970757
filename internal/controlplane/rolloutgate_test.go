package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

type gateFixture struct {
	a       *controlplane.App
	op      context.Context
	tenant  *catalog.Tenant
	product *catalog.Product
	release *catalog.Release
	site    *site
}

func newGateFixture(t *testing.T) *gateFixture {
	t.Helper()
	a := newApp(t)
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := a.CreateProduct(op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := a.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.BuildSnapshot(op, ten.TenantID); err != nil {
		t.Fatal(err)
	}
	return &gateFixture{a: a, op: op, tenant: ten, product: prod, release: rel, site: newSite(t, a, op, ten.TenantID)}
}

func (f *gateFixture) rollout(t *testing.T, pct float64, sched, gate string) *catalog.Rollout {
	t.Helper()
	ro, err := f.a.CreateRollout(f.op, f.product.ProductID, controlplane.RolloutInput{
		Channel: "stable", ReleaseID: f.release.ReleaseID, Percentage: &pct,
		Schedule: json.RawMessage(sched), HealthGate: json.RawMessage(gate),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ro
}

func (f *gateFixture) importSite(t *testing.T) {
	t.Helper()
	if _, err := f.a.ImportReport(f.op, bytes.NewReader(f.site.report(t))); err != nil {
		t.Fatal(err)
	}
}

func (f *gateFixture) audit(t *testing.T, typ string) []*catalog.AuditEvent {
	t.Helper()
	evs, _, err := f.a.AuditEvents(f.op, store.AuditFilter{EventType: typ}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

const (
	schedule = `{"steps":[{"percentage":10,"min_dwell":"0s"},{"percentage":50,"min_dwell":"0s"},{"percentage":100,"min_dwell":"0s"}]}`
	gate     = `{"min_installs":10,"max_failure_rate":5,"halt_on_error_codes":["E_BRICKED"]}`
)

func TestCreateRollout_ValidatesRules(t *testing.T) {
	f := newGateFixture(t)
	pct := 10.0
	cases := []struct{ name, sched, gate, field string }{
		{"decreasing steps", `{"steps":[{"percentage":50,"min_dwell":"0s"},{"percentage":10,"min_dwell":"0s"}]}`, ``, "schedule.steps[1].percentage"},
		{"unknown gate key", ``, `{"min_installs":1,"max_failure_rate":5,"nope":1}`, "health_gate"},
		{"rate above 100", ``, `{"min_installs":1,"max_failure_rate":500}`, "health_gate.max_failure_rate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.a.CreateRollout(f.op, f.product.ProductID, controlplane.RolloutInput{Channel: "stable", ReleaseID: f.release.ReleaseID, Percentage: &pct, Schedule: json.RawMessage(c.sched), HealthGate: json.RawMessage(c.gate)})
			var ce *catalog.Error
			if catalog.ErrorCode(err) != catalog.EINVALID || !asCatalog(err, &ce) || !strings.HasPrefix(ce.Field, c.field) {
				t.Fatalf("err = %v, want invalid on %s", err, c.field)
			}
		})
	}
}

func TestEvaluateRollouts_HaltsOnFailureRate(t *testing.T) {
	f := newGateFixture(t)
	ro := f.rollout(t, 10, schedule, gate)
	f.site.installs(t, f.release.ReleaseID, 16, 4, "E_DISK") // 20%
	f.importSite(t)

	ds, err := f.a.EvaluateRollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Decision.Action != "halt" {
		t.Fatalf("decisions = %+v, want one halt", ds)
	}
	got, err := f.a.Rollout(f.op, ro.RolloutID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != catalog.RolloutPaused || got.Percentage != 10 {
		t.Fatalf("rollout = %s at %v%%, want paused at 10%%", got.Status, got.Percentage)
	}
	evs := f.audit(t, controlplane.EventRolloutHalted)
	if len(evs) != 1 || !strings.Contains(string(evs[0].Payload), "install failure rate 20.0% is above 5.0%") || !strings.Contains(string(evs[0].Payload), "oldest_report_age") {
		t.Fatalf("rollout.halted events = %d, payload %s", len(evs), payloadOf(evs))
	}
	snaps, _, err := f.a.Snapshots(f.op, f.tenant.TenantID, store.Page{Limit: 10})
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots = %d (%v), want 2 (the halt rebuilt the tenant's)", len(snaps), err)
	}

	t.Run("a halted rollout stays halted", func(t *testing.T) {
		ds, err := f.a.EvaluateRollouts(context.Background())
		if err != nil || len(ds) != 0 {
			t.Fatalf("decisions = %+v (%v), want none", ds, err)
		}
	})
}

func TestEvaluateRollouts_HaltsOnListedCode(t *testing.T) {
	f := newGateFixture(t)
	f.rollout(t, 10, "", gate)
	f.site.installs(t, f.release.ReleaseID, 0, 1, "E_BRICKED") // 1 install: below min_installs, the code still halts
	f.importSite(t)
	ds, err := f.a.EvaluateRollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Decision.Action != "halt" || !strings.Contains(ds[0].Decision.Reason, "E_BRICKED") {
		t.Fatalf("decisions = %+v, want a halt naming E_BRICKED", ds)
	}
}

func TestEvaluateRollouts_AdvancesWhenHealthy(t *testing.T) {
	f := newGateFixture(t)
	ro := f.rollout(t, 10, schedule, gate)
	t.Run("holds without enough installs", func(t *testing.T) {
		ds, err := f.a.EvaluateRollouts(context.Background())
		if err != nil || len(ds) != 0 {
			t.Fatalf("decisions = %+v (%v), want none", ds, err)
		}
	})
	f.site.installs(t, f.release.ReleaseID, 50, 1, "E_DISK") // 2%
	f.importSite(t)
	ds, err := f.a.EvaluateRollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Decision.Action != "advance" || ds[0].Decision.Percentage != 50 {
		t.Fatalf("decisions = %+v, want an advance to 50", ds)
	}
	got, _ := f.a.Rollout(f.op, ro.RolloutID)
	if got.Status != catalog.RolloutActive || got.Percentage != 50 {
		t.Fatalf("rollout = %s at %v%%, want active at 50%%", got.Status, got.Percentage)
	}
	if evs := f.audit(t, controlplane.EventRolloutAdvanced); len(evs) != 1 {
		t.Fatalf("rollout.advanced events = %d, want 1", len(evs))
	}
}

func asCatalog(err error, target **catalog.Error) bool {
	ce, ok := err.(*catalog.Error)
	if ok {
		*target = ce
	}
	return ok
}

func payloadOf(evs []*catalog.AuditEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.Write(e.Payload)
	}
	return b.String()
}
