package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/store"
)

// Audit event types of the rollouts that move themselves.
const (
	EventRolloutAdvanced = "rollout.advanced"
	EventRolloutHalted   = "rollout.halted"
)

// validateRolloutRules checks a rollout's optional schedule and health
// gate and returns them compact; absent or JSON null is none.
func validateRolloutRules(sched, gate json.RawMessage) (json.RawMessage, json.RawMessage, error) {
	var s, g json.RawMessage
	if len(sched) > 0 && string(sched) != "null" {
		if _, err := fleet.ParseSchedule(sched); err != nil {
			return nil, nil, err
		}
		s = compactJSON(sched)
	}
	if len(gate) > 0 && string(gate) != "null" {
		if _, err := fleet.ParseGate(gate); err != nil {
			return nil, nil, asHealthGate(err)
		}
		g = compactJSON(gate)
	}
	return s, g, nil
}

// asHealthGate names a gate error's field as the rollout's member
// (health_gate.…), where the fleet package says gate.….
func asHealthGate(err error) error {
	var ce *catalog.Error
	if errors.As(err, &ce) {
		c := *ce
		if rest, ok := strings.CutPrefix(c.Field, "gate"); ok {
			c.Field = "health_gate" + rest
		}
		if rest, ok := strings.CutPrefix(c.Message, "gate"); ok {
			c.Message = "health_gate" + rest
		}
		return &c
	}
	return err
}

// RolloutDecision is one decision of EvaluateRollouts that changed a
// rollout.
type RolloutDecision struct {
	RolloutID string         `json:"rollout_id"`
	ProductID string         `json:"product_id"`
	ReleaseID string         `json:"release_id"`
	From      float64        `json:"from_percentage"`
	Decision  fleet.Decision `json:"decision"`
}

// EvaluateRollouts runs every active rollout that has a schedule or a
// health gate through fleet.Evaluate over the fleet reports that have come
// back (kvsink Sources): it advances a rollout whose step is due, halts
// one whose gate trips (status paused: resuming is a manual action),
// records each decision with its reason and the age of the reports in the
// audit log (rollout.advanced, rollout.halted), and rebuilds the
// snapshots of the active tenants that have one, so the next metadata
// offers the release as decided. Holds change nothing and are not
// recorded.
func (a *App) EvaluateRollouts(ctx context.Context) ([]RolloutDecision, error) {
	if a.fleet == nil {
		return nil, nil
	}
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorSystem, ID: "rollout-gate"})
	var out []RolloutDecision
	err := eachPage(ctx, a.store.Products, func(p *catalog.Product) error {
		return eachPage(ctx, func(ctx context.Context, pg store.Page) ([]*catalog.Rollout, string, error) {
			return a.store.Rollouts(ctx, p.ProductID, pg)
		}, func(ro *catalog.Rollout) error {
			d, err := a.evaluateRollout(ctx, ro)
			if err != nil || d == nil {
				return err
			}
			out = append(out, *d)
			return nil
		})
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	return out, a.rebuildSnapshots(ctx)
}

func (a *App) evaluateRollout(ctx context.Context, ro *catalog.Rollout) (*RolloutDecision, error) {
	if ro.Status != catalog.RolloutActive || (len(ro.Schedule) == 0 && len(ro.HealthGate) == 0) {
		return nil, nil
	}
	var sched *fleet.Schedule
	var gate *fleet.Gate
	var err error
	if len(ro.Schedule) > 0 {
		if sched, err = fleet.ParseSchedule(ro.Schedule); err != nil {
			a.log.Error("rollout schedule does not parse; not evaluated", "rollout", ro.RolloutID, "err", err)
			return nil, nil
		}
	}
	if len(ro.HealthGate) > 0 {
		if gate, err = fleet.ParseGate(ro.HealthGate); err != nil {
			a.log.Error("rollout health gate does not parse; not evaluated", "rollout", ro.RolloutID, "err", err)
			return nil, nil
		}
	}
	srcs, err := a.fleet.Sources(ctx, ro.ReleaseID)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: fleet sources: %w", ro.RolloutID, err)
	}
	now := a.now()
	st := fleet.RolloutState{Percentage: int(math.Floor(ro.Percentage)), Since: ro.UpdatedAt}
	d := fleet.Evaluate(st, sched, gate, ro.ReleaseID, srcs, now)
	if d.Action == fleet.Hold {
		return nil, nil
	}
	from := ro.Percentage
	typ := EventRolloutAdvanced
	if d.Action == fleet.Halt {
		typ = EventRolloutHalted
	}
	// The move and its reason commit in one transaction: a crash between
	// them cannot leave a rollout moved with no reason recorded.
	reason := func(updated *catalog.Rollout) (*catalog.AuditEvent, string, error) {
		payload, err := json.Marshal(map[string]any{
			"rollout_id": ro.RolloutID, "product_id": ro.ProductID, "release_id": ro.ReleaseID, "channel": ro.Channel,
			"from_percentage": from, "percentage": updated.Percentage, "status": updated.Status,
			"reason": d.Reason, "installs": d.Installs, "failures": d.Failures, "failure_rate": d.FailureRate,
			"reports": d.Sources, "oldest_report_age": d.OldestReport.Round(time.Second).String(),
			"newest_report_age": d.NewestReport.Round(time.Second).String(),
		})
		if err != nil {
			return nil, "", err
		}
		return &catalog.AuditEvent{EventType: typ, Payload: payload, CreatedAt: now},
			"rollout:" + ro.RolloutID + ":" + now.Format(time.RFC3339Nano), nil
	}
	_, err = a.store.UpdateRolloutAudited(ctx, ro.RolloutID, func(cur *catalog.Rollout) error {
		if cur.Status != catalog.RolloutActive || cur.Percentage != from || !cur.UpdatedAt.Equal(ro.UpdatedAt) {
			return errRolloutMoved // changed by hand meanwhile: judge it next round
		}
		switch d.Action {
		case fleet.Advance:
			cur.Percentage = float64(d.Percentage)
		case fleet.Halt:
			cur.Status = catalog.RolloutPaused
		}
		cur.UpdatedAt = now
		return nil
	}, reason)
	if errors.Is(err, errRolloutMoved) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %s: %w", ro.RolloutID, d.Action, err)
	}
	a.log.Info("rollout "+string(d.Action), "rollout", ro.RolloutID, "reason", d.Reason)
	return &RolloutDecision{RolloutID: ro.RolloutID, ProductID: ro.ProductID, ReleaseID: ro.ReleaseID, From: from, Decision: d}, nil
}

var errRolloutMoved = catalog.Errorf(catalog.ECONFLICT, "rollout changed meanwhile")

// rebuildSnapshots builds a new snapshot of every active tenant that has
// one (a rollout is vendor-wide: every tenant's metadata carries it).
func (a *App) rebuildSnapshots(ctx context.Context) error {
	return eachPage(ctx, a.store.Tenants, func(t *catalog.Tenant) error {
		if t.Status != catalog.TenantActive {
			return nil
		}
		if _, err := a.store.LatestSnapshotHead(ctx, t.TenantID); catalog.ErrorCode(err) == catalog.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		_, err := a.buildSnapshot(ctx, t.TenantID)
		return err
	})
}

// eachPage calls fn on every item of a paged list.
func eachPage[T any](ctx context.Context, list func(context.Context, store.Page) ([]T, string, error), fn func(T) error) error {
	p := store.Page{Limit: store.MaxLimit}
	for {
		items, next, err := list(ctx, p)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.Cursor = next
	}
}
