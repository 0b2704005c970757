package fleet_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
)

func installs(ok, failed int64, codes map[string]int64) []fleet.Aggregate {
	return []fleet.Aggregate{
		{AggregateKey: fleet.AggregateKey{ReleaseID: relA, Type: fleet.TypeInstallOK}, Count: ok},
		{AggregateKey: fleet.AggregateKey{ReleaseID: relA, Type: fleet.TypeInstallFailed}, Count: failed, ErrorCodes: codes},
	}
}

func TestEvaluate_Decisions(t *testing.T) {
	sched := &fleet.Schedule{Steps: []fleet.Step{
		{Percentage: 10, MinDwell: catalog.Duration(24 * time.Hour)},
		{Percentage: 50, MinDwell: catalog.Duration(48 * time.Hour)},
		{Percentage: 100},
	}}
	gate := &fleet.Gate{MinInstalls: 20, MaxFailureRate: 5, HaltOnErrorCodes: []string{"E_BRICKED"}}
	fresh := func(aggs []fleet.Aggregate) []fleet.Source {
		return []fleet.Source{{MirrorID: mirA, AsOf: now.Add(-time.Hour), Aggregates: aggs}}
	}
	at10 := fleet.RolloutState{Percentage: 10, Since: now.Add(-25 * time.Hour)}
	cases := []struct {
		name     string
		st       fleet.RolloutState
		sched    *fleet.Schedule
		gate     *fleet.Gate
		sources  []fleet.Source
		want     fleet.Action
		wantPct  int
		inReason string
	}{
		{"advance after dwell with healthy installs", at10, sched, gate, fresh(installs(99, 1, nil)), fleet.Advance, 50, "advance from 10% to 50%"},
		{"hold during dwell", fleet.RolloutState{Percentage: 10, Since: now.Add(-2 * time.Hour)}, sched, gate, fresh(installs(99, 1, nil)), fleet.Hold, 10, "dwelling at 10%: 2h0m0s of 24h0m0s"},
		{"halt on failure rate", at10, sched, gate, fresh(installs(90, 10, nil)), fleet.Halt, 10, "failure rate 10.0% is above 5.0%"},
		{"rate exactly at threshold holds course", at10, sched, gate, fresh(installs(95, 5, nil)), fleet.Advance, 50, "advance"},
		{"no halt below min installs", at10, sched, gate, fresh(installs(1, 9, nil)), fleet.Hold, 10, "waiting for installs: 10 of 20"},
		{"halt on listed code even with few installs", at10, sched, gate, fresh(installs(0, 1, map[string]int64{"E_BRICKED": 1})), fleet.Halt, 10, "error code E_BRICKED reported 1 times"},
		{"unlisted code does not halt", at10, sched, gate, fresh(installs(99, 1, map[string]int64{"E_OTHER": 1})), fleet.Advance, 50, "advance"},
		{"halted stays halted", fleet.RolloutState{Percentage: 10, Halted: true, Since: now.Add(-100 * time.Hour)}, sched, gate, fresh(installs(100, 0, nil)), fleet.Hold, 10, "halted"},
		{"last step", fleet.RolloutState{Percentage: 100, Since: now.Add(-100 * time.Hour)}, sched, gate, fresh(installs(100, 0, nil)), fleet.Hold, 100, "at the last step"},
		{"below the first step advances at once", fleet.RolloutState{Percentage: 0, Since: now}, sched, nil, nil, fleet.Advance, 10, "no reports"},
		{"between steps uses the lower step's dwell", fleet.RolloutState{Percentage: 30, Since: now.Add(-30 * time.Hour)}, sched, nil, nil, fleet.Advance, 50, "advance from 30% to 50%"},
		{"no schedule holds", at10, nil, gate, fresh(installs(99, 1, nil)), fleet.Hold, 10, "no schedule"},
		{"gate without schedule still halts", at10, nil, gate, fresh(installs(50, 50, nil)), fleet.Halt, 10, "above"},
		{"other releases ignored", at10, sched, gate, fresh([]fleet.Aggregate{{AggregateKey: fleet.AggregateKey{ReleaseID: relB, Type: fleet.TypeInstallFailed}, Count: 1000}}), fleet.Hold, 10, "waiting for installs: 0 of 20"},
		{"sums across mirrors", at10, sched, gate, []fleet.Source{
			{MirrorID: "a", AsOf: now.Add(-time.Hour), Aggregates: installs(50, 0, nil)},
			{MirrorID: "b", AsOf: now.Add(-72 * time.Hour), Aggregates: installs(0, 10, nil)},
		}, fleet.Halt, 10, "from 2 reports 1h0m0s to 72h0m0s old"},
		{"stale reports hold an air-gapped advance", at10, sched, &fleet.Gate{MinInstalls: 20, MaxFailureRate: 5, MaxReportAge: catalog.Duration(48 * time.Hour)},
			[]fleet.Source{{MirrorID: mirA, AsOf: now.Add(-72 * time.Hour), Aggregates: installs(100, 0, nil)}}, fleet.Hold, 10, "the newest report is 72h0m0s old, more than max_report_age 48h0m0s"},
		{"stale reports still halt", at10, sched, &fleet.Gate{MinInstalls: 20, MaxFailureRate: 5, MaxReportAge: catalog.Duration(48 * time.Hour)},
			[]fleet.Source{{MirrorID: mirA, AsOf: now.Add(-72 * time.Hour), Aggregates: installs(50, 50, nil)}}, fleet.Halt, 10, "72h0m0s old"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fleet.Evaluate(tc.st, tc.sched, tc.gate, relA, tc.sources, now)
			if got.Action != tc.want || got.Percentage != tc.wantPct || !strings.Contains(got.Reason, tc.inReason) {
				t.Errorf("Evaluate = %s %d%% %q, want %s %d%% with %q", got.Action, got.Percentage, got.Reason, tc.want, tc.wantPct, tc.inReason)
			}
		})
	}
	t.Run("report ages", func(t *testing.T) {
		got := fleet.Evaluate(at10, sched, gate, relA, []fleet.Source{{AsOf: now.Add(-time.Hour)}, {AsOf: now.Add(-50 * time.Hour)}}, now)
		if got.NewestReport != time.Hour || got.OldestReport != 50*time.Hour || got.Sources != 2 {
			t.Errorf("ages = newest %s oldest %s sources %d, want 1h, 50h, 2", got.NewestReport, got.OldestReport, got.Sources)
		}
	})
}

func TestParseSchedule_Errors(t *testing.T) {
	cases := []struct {
		name, raw, wantField string
	}{
		{"ok", `{"steps":[{"percentage":5,"min_dwell":"24h"},{"percentage":100,"min_dwell":"0s"}]}`, ""},
		{"empty", `{"steps":[]}`, "schedule.steps"},
		{"missing", ``, "schedule"},
		{"zero percent", `{"steps":[{"percentage":0,"min_dwell":"1h"}]}`, "schedule.steps[0].percentage"},
		{"over 100", `{"steps":[{"percentage":101,"min_dwell":"1h"}]}`, "schedule.steps[0].percentage"},
		{"not increasing", `{"steps":[{"percentage":50,"min_dwell":"1h"},{"percentage":50,"min_dwell":"1h"}]}`, "schedule.steps[1].percentage"},
		{"negative dwell", `{"steps":[{"percentage":50,"min_dwell":"-1h"}]}`, "schedule.steps[0].min_dwell"},
		{"bad dwell", `{"steps":[{"percentage":50,"min_dwell":"soon"}]}`, "schedule"},
		{"string percent", `{"steps":[{"percentage":"50"}]}`, "schedule.steps.percentage"},
		{"unknown field", `{"steps":[{"percentage":50}],"speed":"fast"}`, "schedule"},
		{"trailing", `{"steps":[{"percentage":50}]} x`, "schedule"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.ParseSchedule([]byte(tc.raw))
			checkField(t, err, tc.wantField)
		})
	}
}

func TestParseGate_Errors(t *testing.T) {
	cases := []struct {
		name, raw, wantField string
	}{
		{"ok", `{"min_installs":50,"max_failure_rate":2.5,"halt_on_error_codes":["E_BRICKED"],"max_report_age":"72h"}`, ""},
		{"min installs zero", `{"min_installs":0,"max_failure_rate":2}`, "gate.min_installs"},
		{"rate over 100", `{"min_installs":5,"max_failure_rate":150}`, "gate.max_failure_rate"},
		{"rate negative", `{"min_installs":5,"max_failure_rate":-1}`, "gate.max_failure_rate"},
		{"bad code", `{"min_installs":5,"max_failure_rate":1,"halt_on_error_codes":["ok","bad code"]}`, "gate.halt_on_error_codes[1]"},
		{"bad age", `{"min_installs":5,"max_failure_rate":1,"max_report_age":"-5m"}`, "gate.max_report_age"},
		{"unknown", `{"min_installs":5,"max_failure_rate":1,"rate":3}`, "gate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleet.ParseGate([]byte(tc.raw))
			checkField(t, err, tc.wantField)
		})
	}
}

func checkField(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
		return
	}
	var ce *catalog.Error
	if !errors.As(err, &ce) || ce.Code != catalog.EINVALID || ce.Field != want {
		t.Errorf("err = %v (%#v), want EINVALID on field %s", err, ce, want)
	}
}
