package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var policyCases = []testCase{
	{"Policies", testPolicies},
	{"BlockedVersions", testBlockedVersions},
	{"Rollouts", testRollouts},
}

func testPolicies(t *testing.T, f *fx) {
	tn, p := f.tenant(), f.product("")
	pol := &catalog.Policy{PolicyID: catalog.NewID(catalog.PrefixPolicy), TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionDownload, Conditions: json.RawMessage(`{ "platforms": ["linux"] }`), Priority: 5}
	f.mutation("policy.created", tn.TenantID, func() error { return f.s.CreatePolicy(f.ctx, pol) })
	got, err := f.s.Policy(f.ctx, pol.PolicyID)
	must(t, err)
	if got.Version != 1 || got.Action != catalog.ActionDownload || got.Priority != 5 || string(got.Conditions) != `{"platforms":["linux"]}` {
		t.Fatalf("Policy = %+v conditions %s", got, got.Conditions)
	}

	for i, action := range []string{catalog.ActionInstall, catalog.ActionNone} {
		var upd *catalog.Policy
		f.mutation("policy.updated", tn.TenantID, func() (err error) {
			upd, err = f.s.UpdatePolicy(f.ctx, pol.PolicyID, func(p *catalog.Policy) error {
				p.Action, p.Priority = action, 10+i
				return nil
			})
			return err
		})
		if upd.Version != i+2 || upd.Action != action {
			t.Fatalf("update %d: version %d action %s, want %d %s", i, upd.Version, upd.Action, i+2, action)
		}
	}
	t.Run("versions kept oldest first", func(t *testing.T) {
		vs, err := f.s.PolicyVersions(f.ctx, pol.PolicyID)
		must(t, err)
		wantActions := []string{catalog.ActionDownload, catalog.ActionInstall, catalog.ActionNone}
		if len(vs) != len(wantActions) {
			t.Fatalf("PolicyVersions = %d versions, want %d", len(vs), len(wantActions))
		}
		for i, v := range vs {
			if v.Version != i+1 || v.Action != wantActions[i] || v.PolicyID != pol.PolicyID {
				t.Fatalf("version %d = %d %s, want %d %s", i, v.Version, v.Action, i+1, wantActions[i])
			}
		}
		latest, err := f.s.Policy(f.ctx, pol.PolicyID)
		must(t, err)
		if latest.Version != 3 || latest.Action != catalog.ActionNone {
			t.Fatalf("Policy after updates = v%d %s, want v3 NONE", latest.Version, latest.Action)
		}
		list, _, err := f.s.Policies(f.ctx, tn.TenantID, store.Page{})
		must(t, err)
		if len(list) != 1 || list[0].Version != 3 {
			t.Fatalf("Policies = %d items (first v%d), want 1 at v3", len(list), list[0].Version)
		}
	})
	t.Run("update refused", func(t *testing.T) {
		cases := []struct {
			name string
			fn   func(*catalog.Policy) error
		}{
			{"policy_id", func(p *catalog.Policy) error { p.PolicyID = "pol_x"; return nil }},
			{"tenant_id", func(p *catalog.Policy) error { p.TenantID = "ten_x"; return nil }},
			{"product_id", func(p *catalog.Policy) error { p.ProductID = "prd_x"; return nil }},
			{"version", func(p *catalog.Policy) error { p.Version = 99; return nil }},
			{"created_at", func(p *catalog.Policy) error { p.CreatedAt = time.Time{}; return nil }},
			{"action", func(p *catalog.Policy) error { p.Action = "REBOOT"; return nil }},
			{"conditions", func(p *catalog.Policy) error { p.Conditions = json.RawMessage(`[1]`); return nil }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(catalog.EINVALID, func() error { _, err := f.s.UpdatePolicy(f.ctx, pol.PolicyID, tc.fn); return err })
			})
		}
		vs, err := f.s.PolicyVersions(f.ctx, pol.PolicyID)
		must(t, err)
		if len(vs) != 3 {
			t.Fatalf("refused updates left %d versions, want 3", len(vs))
		}
	})
	t.Run("create refused", func(t *testing.T) {
		cases := []struct {
			name string
			p    catalog.Policy
			code string
		}{
			{"unknown tenant", catalog.Policy{TenantID: "ten_nope", ProductID: p.ProductID, Channel: "stable", Action: catalog.ActionNone}, catalog.ENOTFOUND},
			{"unknown product", catalog.Policy{TenantID: tn.TenantID, ProductID: "prd_nope", Channel: "stable", Action: catalog.ActionNone}, catalog.ENOTFOUND},
			{"bad action", catalog.Policy{TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "stable", Action: "maybe"}, catalog.EINVALID},
			{"bad channel", catalog.Policy{TenantID: tn.TenantID, ProductID: p.ProductID, Channel: "", Action: catalog.ActionNone}, catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				pp := tc.p
				pp.PolicyID = catalog.NewID(catalog.PrefixPolicy)
				f.refused(tc.code, func() error { return f.s.CreatePolicy(f.ctx, &pp) })
			})
		}
		f.refused(catalog.ECONFLICT, func() error {
			dup := *pol
			return f.s.CreatePolicy(f.ctx, &dup)
		})
	})
}

func testBlockedVersions(t *testing.T, f *fx) {
	tn, other, p := f.tenant(), f.tenant(), f.product("")
	b := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: "1.2.3", Reason: "crashes"}
	f.mutation("blocked_version.created", tn.TenantID, func() error { return f.s.CreateBlockedVersion(f.ctx, b) })
	f.refused(catalog.ECONFLICT, func() error {
		return f.s.CreateBlockedVersion(f.ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: "1.2.3"})
	})
	f.refused(catalog.ENOTFOUND, func() error {
		return f.s.CreateBlockedVersion(f.ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: "prd_nope", BlockedVersion: "1.2.3"})
	})
	f.refused(catalog.EINVALID, func() error {
		return f.s.CreateBlockedVersion(f.ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID})
	})
	// Another tenant may block the same version.
	ob := &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: other.TenantID, ProductID: p.ProductID, BlockedVersion: "1.2.3"}
	must(t, f.s.CreateBlockedVersion(f.ctx, ob))

	list, _, err := f.s.BlockedVersions(f.ctx, tn.TenantID, store.Page{})
	must(t, err)
	if len(list) != 1 || list[0].BlocklistID != b.BlocklistID || list[0].Reason != "crashes" {
		t.Fatalf("BlockedVersions = %+v", list)
	}
	t.Run("delete", func(t *testing.T) {
		f.refused(catalog.ENOTFOUND, func() error { return f.s.DeleteBlockedVersion(f.ctx, other.TenantID, b.BlocklistID) })
		f.mutation("blocked_version.deleted", tn.TenantID, func() error { return f.s.DeleteBlockedVersion(f.ctx, tn.TenantID, b.BlocklistID) })
		f.refused(catalog.ENOTFOUND, func() error { return f.s.DeleteBlockedVersion(f.ctx, tn.TenantID, b.BlocklistID) })
		list, _, err := f.s.BlockedVersions(f.ctx, tn.TenantID, store.Page{})
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("BlockedVersions after delete = %d items", len(list))
		}
		// The version can be blocked again once unblocked.
		must(t, f.s.CreateBlockedVersion(f.ctx, &catalog.BlockedVersion{BlocklistID: catalog.NewID(catalog.PrefixBlocked), TenantID: tn.TenantID, ProductID: p.ProductID, BlockedVersion: "1.2.3"}))
	})
}

func testRollouts(t *testing.T, f *fx) {
	p := f.product("")
	r := f.release(p.ProductID, "stable", "2.0.0")
	ro := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID, Percentage: 5}
	f.mutation("rollout.created", "", func() error { return f.s.CreateRollout(f.ctx, ro) })
	got, err := f.s.Rollout(f.ctx, ro.RolloutID)
	must(t, err)
	if got.Status != catalog.RolloutActive || got.Percentage != 5 {
		t.Fatalf("Rollout = %+v", got)
	}
	t.Run("create refused", func(t *testing.T) {
		beta := f.release(p.ProductID, "beta", "2.0.0-beta.1")
		cases := []struct {
			name string
			ro   catalog.Rollout
			code string
		}{
			{"unknown product", catalog.Rollout{ProductID: "prd_nope", Channel: "stable", ReleaseID: r.ReleaseID}, catalog.ENOTFOUND},
			{"unknown release", catalog.Rollout{ProductID: p.ProductID, Channel: "stable", ReleaseID: "rel_nope"}, catalog.ENOTFOUND},
			{"release of another channel", catalog.Rollout{ProductID: p.ProductID, Channel: "stable", ReleaseID: beta.ReleaseID}, catalog.EINVALID},
			{"percentage", catalog.Rollout{ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID, Percentage: 101}, catalog.EINVALID},
			{"status", catalog.Rollout{ProductID: p.ProductID, Channel: "stable", ReleaseID: r.ReleaseID, Status: "running"}, catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				x := tc.ro
				x.RolloutID = catalog.NewID(catalog.PrefixRollout)
				f.refused(tc.code, func() error { return f.s.CreateRollout(f.ctx, &x) })
			})
		}
	})
	t.Run("update", func(t *testing.T) {
		steps := []struct {
			status string
			pct    float64
		}{{catalog.RolloutActive, 25}, {catalog.RolloutPaused, 25}, {catalog.RolloutActive, 50}}
		for _, st := range steps {
			var upd *catalog.Rollout
			f.mutation("rollout.updated", "", func() (err error) {
				upd, err = f.s.UpdateRollout(f.ctx, ro.RolloutID, func(r *catalog.Rollout) error {
					r.Status, r.Percentage = st.status, st.pct
					return nil
				})
				return err
			})
			if upd.Status != st.status || upd.Percentage != st.pct {
				t.Fatalf("UpdateRollout = %s %v, want %s %v", upd.Status, upd.Percentage, st.status, st.pct)
			}
		}
	})
	t.Run("update refused", func(t *testing.T) {
		other := f.release(p.ProductID, "stable", "2.0.1")
		cases := []struct {
			name string
			fn   func(*catalog.Rollout) error
			code string
		}{
			{"rollout_id", func(r *catalog.Rollout) error { r.RolloutID = "rol_x"; return nil }, catalog.EINVALID},
			{"product_id", func(r *catalog.Rollout) error { r.ProductID = "prd_x"; return nil }, catalog.EINVALID},
			{"channel", func(r *catalog.Rollout) error { r.Channel = "beta"; return nil }, catalog.EINVALID},
			{"release_id", func(r *catalog.Rollout) error { r.ReleaseID = other.ReleaseID; return nil }, catalog.EINVALID},
			{"percentage", func(r *catalog.Rollout) error { r.Percentage = -1; return nil }, catalog.EINVALID},
			{"unknown status", func(r *catalog.Rollout) error { r.Status = "done"; return nil }, catalog.EINVALID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f.refused(tc.code, func() error { _, err := f.s.UpdateRollout(f.ctx, ro.RolloutID, tc.fn); return err })
			})
		}
	})
	t.Run("update with its reason in one transaction", func(t *testing.T) {
		r2 := f.release(p.ProductID, "stable", "2.1.0")
		ro2 := &catalog.Rollout{RolloutID: catalog.NewID(catalog.PrefixRollout), ProductID: p.ProductID, Channel: "stable", ReleaseID: r2.ReleaseID, Percentage: 10}
		must(t, f.s.CreateRollout(f.ctx, ro2))
		halt := func(r *catalog.Rollout) error { r.Status = catalog.RolloutPaused; return nil }
		reasonFor := func(dedupKey string) func(*catalog.Rollout) (*catalog.AuditEvent, string, error) {
			return func(r *catalog.Rollout) (*catalog.AuditEvent, string, error) {
				payload, err := json.Marshal(map[string]any{"rollout_id": r.RolloutID, "status": r.Status, "reason": "failure rate 40% over 10 installs"})
				return &catalog.AuditEvent{EventType: "rollout.halted", Payload: payload}, dedupKey, err
			}
		}
		t.Run("reason fails: nothing written", func(t *testing.T) {
			f.refused(catalog.EINVALID, func() error {
				_, err := f.s.UpdateRolloutAudited(f.ctx, ro2.RolloutID, halt, func(*catalog.Rollout) (*catalog.AuditEvent, string, error) {
					return nil, "", catalog.Invalid("reason", "cannot be built")
				})
				return err
			})
			f.refused(catalog.EINVALID, func() error {
				_, err := f.s.UpdateRolloutAudited(f.ctx, ro2.RolloutID, halt, func(*catalog.Rollout) (*catalog.AuditEvent, string, error) {
					return &catalog.AuditEvent{EventType: "rollout.halted", Payload: []byte("not json")}, "", nil
				})
				return err
			})
			got, err := f.s.Rollout(f.ctx, ro2.RolloutID)
			must(t, err)
			if got.Status != catalog.RolloutActive {
				t.Fatalf("status = %s after a failed reason, want active (the move rolled back)", got.Status)
			}
		})
		t.Run("move and reason commit together", func(t *testing.T) {
			before := f.lastSeq()
			upd, err := f.s.UpdateRolloutAudited(f.ctx, ro2.RolloutID, halt, reasonFor("gate:"+ro2.RolloutID))
			must(t, err)
			f.mutations += 2
			if upd.Status != catalog.RolloutPaused {
				t.Fatalf("status = %s, want paused", upd.Status)
			}
			evs := f.eventsAfter(before)
			var types []string
			for _, ev := range evs {
				types = append(types, ev.EventType)
			}
			if len(evs) != 2 || types[0] != "rollout.updated" || types[1] != "rollout.halted" {
				t.Fatalf("events = %v, want [rollout.updated rollout.halted]", types)
			}
			var p struct {
				Status string `json:"status"`
				Reason string `json:"reason"`
			}
			must(t, json.Unmarshal(evs[1].Payload, &p))
			if p.Status != catalog.RolloutPaused || p.Reason == "" || evs[1].ActorID != testActor.ID {
				t.Fatalf("reason event = %s by %s, want the updated status, the reason and the actor", evs[1].Payload, evs[1].ActorID)
			}
		})
		t.Run("same dedup key: move, no second reason", func(t *testing.T) {
			before := f.lastSeq()
			_, err := f.s.UpdateRolloutAudited(f.ctx, ro2.RolloutID, func(r *catalog.Rollout) error { r.Status = catalog.RolloutActive; return nil }, reasonFor("gate:"+ro2.RolloutID))
			must(t, err)
			f.mutations++
			if evs := f.eventsAfter(before); len(evs) != 1 || evs[0].EventType != "rollout.updated" {
				t.Fatalf("got %d events, want only rollout.updated", len(evs))
			}
		})
	})
	t.Run("nothing leaves killed", func(t *testing.T) {
		_, err := f.s.UpdateRollout(f.ctx, ro.RolloutID, func(r *catalog.Rollout) error { r.Status = catalog.RolloutKilled; return nil })
		must(t, err)
		for _, to := range []string{catalog.RolloutActive, catalog.RolloutPaused, catalog.RolloutCompleted} {
			f.refused(catalog.ECONFLICT, func() error {
				_, err := f.s.UpdateRollout(f.ctx, ro.RolloutID, func(r *catalog.Rollout) error { r.Status = to; return nil })
				return err
			})
		}
		got, err := f.s.Rollout(f.ctx, ro.RolloutID)
		must(t, err)
		if got.Status != catalog.RolloutKilled {
			t.Fatalf("status = %s, want killed", got.Status)
		}
	})
}
