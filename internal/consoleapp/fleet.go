package consoleapp

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fleet/kvsink"
)

// fleetView fills a rollout's schedule (each step at the earliest time its
// dwell allows, counted from the rollout's last change) and health gate,
// with the gate's state from the fleet reports that have come back.
func fleetView(ctx context.Context, info *console.RolloutInfo, sink *kvsink.Sink) {
	r := info.Rollout
	if len(r.Schedule) > 0 {
		if s, err := fleet.ParseSchedule(r.Schedule); err == nil {
			at := r.UpdatedAt
			for i, st := range s.Steps {
				if float64(st.Percentage) > r.Percentage && i > 0 {
					at = at.Add(time.Duration(s.Steps[i-1].MinDwell))
				}
				info.Schedule = append(info.Schedule, console.RolloutStep{At: at, Percentage: float64(st.Percentage)})
			}
		}
	}
	if len(r.HealthGate) == 0 {
		return
	}
	g, err := fleet.ParseGate(r.HealthGate)
	if err != nil {
		return
	}
	info.Gate = &console.HealthGate{MaxFailureRate: g.MaxFailureRate, MinReports: int(min(g.MinInstalls, math.MaxInt32))}
	if sink == nil {
		return
	}
	srcs, err := sink.Sources(ctx, r.ReleaseID)
	if err != nil {
		return
	}
	d := fleet.Evaluate(fleet.RolloutState{Percentage: 100}, nil, g, r.ReleaseID, srcs, time.Now())
	switch {
	case d.Action == fleet.Halt:
		info.Gate.State = "failing"
	case d.Installs >= g.MinInstalls:
		info.Gate.State = "passing"
	}
}

// fleetRules turns the console's schedule (steps at times) and gate into
// the rollout's JSON rules: each step dwells until the next one's time.
func fleetRules(req console.RolloutRequest) (json.RawMessage, json.RawMessage, error) {
	var sched, gate json.RawMessage
	if len(req.Schedule) > 0 {
		var s fleet.Schedule
		for i, st := range req.Schedule {
			var dwell time.Duration
			if i+1 < len(req.Schedule) {
				dwell = max(req.Schedule[i+1].At.Sub(st.At), 0)
			}
			s.Steps = append(s.Steps, fleet.Step{Percentage: int(st.Percentage), MinDwell: catalog.Duration(dwell)})
		}
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, nil, err
		}
		sched = raw
	}
	if req.Gate != nil {
		raw, err := json.Marshal(fleet.Gate{MinInstalls: int64(max(req.Gate.MinReports, 1)), MaxFailureRate: req.Gate.MaxFailureRate})
		if err != nil {
			return nil, nil, err
		}
		gate = raw
	}
	return sched, gate, nil
}
