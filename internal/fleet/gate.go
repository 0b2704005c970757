package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Step is one stage of a schedule: serve Percentage of clients, and stay
// there at least MinDwell before the next step.
type Step struct {
	Percentage int              `json:"percentage"`
	MinDwell   catalog.Duration `json:"min_dwell"`
}

// Schedule is a rollout's steps, percentages strictly increasing.
type Schedule struct {
	Steps []Step `json:"steps"`
}

// Gate is a rollout's health gate.
type Gate struct {
	// MinInstalls: the failure rate is judged only over at least this many
	// installs (install_ok + install_failed), and the schedule advances
	// only once that many have been reported.
	MinInstalls int64 `json:"min_installs"`
	// MaxFailureRate in percent (0–100): halt when install_failed /
	// installs is above it.
	MaxFailureRate float64 `json:"max_failure_rate"`
	// HaltOnErrorCodes: halt as soon as any install_failed carries one.
	HaltOnErrorCodes []string `json:"halt_on_error_codes,omitempty"`
	// MaxReportAge, when set, holds the schedule while the newest report
	// is older than this (air-gapped tenants set it to their carry cycle).
	MaxReportAge catalog.Duration `json:"max_report_age,omitempty"`
}

// Limits of schedules and gates.
const (
	MaxSteps      = 20
	MaxHaltCodes  = 50
	MaxMinDwell   = 365 * 24 * time.Hour
	MaxRuleJSON   = 16 << 10
	MaxReportAgeL = 365 * 24 * time.Hour
)

// ParseSchedule decodes and validates a schedule strictly; errors are
// catalog EINVALID errors naming the field (schedule.steps[1].percentage).
func ParseSchedule(raw []byte) (*Schedule, error) {
	var s Schedule
	if err := strictJSON(raw, &s, "schedule"); err != nil {
		return nil, err
	}
	return &s, s.Validate()
}

// Validate checks s.
func (s *Schedule) Validate() error {
	if len(s.Steps) == 0 {
		return catalog.Invalid("schedule.steps", "needs at least one step")
	}
	if len(s.Steps) > MaxSteps {
		return catalog.Invalid("schedule.steps", "has %d steps, at most %d", len(s.Steps), MaxSteps)
	}
	for i, st := range s.Steps {
		f := fmt.Sprintf("schedule.steps[%d]", i)
		if st.Percentage < 1 || st.Percentage > 100 {
			return catalog.Invalid(f+".percentage", "%d is not between 1 and 100", st.Percentage)
		}
		if i > 0 && st.Percentage <= s.Steps[i-1].Percentage {
			return catalog.Invalid(f+".percentage", "%d is not above schedule.steps[%d].percentage (%d)", st.Percentage, i-1, s.Steps[i-1].Percentage)
		}
		if d := time.Duration(st.MinDwell); d < 0 || d > MaxMinDwell {
			return catalog.Invalid(f+".min_dwell", "%s is not between 0 and %s", d, MaxMinDwell)
		}
	}
	return nil
}

// ParseGate decodes and validates a gate strictly.
func ParseGate(raw []byte) (*Gate, error) {
	var g Gate
	if err := strictJSON(raw, &g, "gate"); err != nil {
		return nil, err
	}
	return &g, g.Validate()
}

// Validate checks g.
func (g *Gate) Validate() error {
	if g.MinInstalls < 1 || g.MinInstalls > 1e9 {
		return catalog.Invalid("gate.min_installs", "%d is not between 1 and 1000000000", g.MinInstalls)
	}
	if math.IsNaN(g.MaxFailureRate) || g.MaxFailureRate < 0 || g.MaxFailureRate > 100 {
		return catalog.Invalid("gate.max_failure_rate", "%v is not a percentage between 0 and 100", g.MaxFailureRate)
	}
	if len(g.HaltOnErrorCodes) > MaxHaltCodes {
		return catalog.Invalid("gate.halt_on_error_codes", "has %d codes, at most %d", len(g.HaltOnErrorCodes), MaxHaltCodes)
	}
	for i, c := range g.HaltOnErrorCodes {
		if !ValidErrorCode(c) {
			return catalog.Invalid(fmt.Sprintf("gate.halt_on_error_codes[%d]", i), "%q must be 1 to %d characters of A-Z a-z 0-9 - _ . :", clip(c), MaxErrorCodeLen)
		}
	}
	if d := time.Duration(g.MaxReportAge); d < 0 || d > MaxReportAgeL {
		return catalog.Invalid("gate.max_report_age", "%s is not between 0 and %s", d, MaxReportAgeL)
	}
	return nil
}

func strictJSON(raw []byte, v any, what string) error {
	if len(raw) > MaxRuleJSON {
		return catalog.Invalid(what, "is larger than %d bytes", MaxRuleJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return catalog.Invalid(what+"."+te.Field, "must be %s, not %s", te.Type, te.Value)
		case errors.Is(err, io.EOF):
			return catalog.Invalid(what, "is required")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return catalog.Invalid(what, "%s", strings.TrimPrefix(err.Error(), "json: "))
		default:
			// Field-level errors from catalog.Duration name no field in
			// encoding/json; the message says what is wrong.
			return catalog.Invalid(what, "%v", err)
		}
	}
	if dec.More() {
		return catalog.Invalid(what, "has data after the JSON object")
	}
	return nil
}

// Source is what one mirror store has reported about a release, and when
// (AsOf: the report's creation time, or its receipt for online mirrors).
type Source struct {
	MirrorID   string
	StoreID    string
	AsOf       time.Time
	Aggregates []Aggregate
}

// RolloutState is a rollout as the evaluator sees it.
type RolloutState struct {
	Percentage int
	Halted     bool
	// Since is when Percentage took effect (the dwell starts there).
	Since time.Time
}

// Action is what Evaluate decides.
type Action string

// The actions.
const (
	Advance Action = "advance"
	Halt    Action = "halt"
	Hold    Action = "hold"
)

// Decision is Evaluate's answer, with its evidence. For air-gapped tenants
// OldestReport/NewestReport say how old the reports it used are.
type Decision struct {
	Action      Action  `json:"action"`
	Percentage  int     `json:"percentage"` // the target of an advance, else the current one
	Reason      string  `json:"reason"`
	Installs    int64   `json:"installs"`
	Failures    int64   `json:"failures"`
	FailureRate float64 `json:"failure_rate"` // percent
	Sources     int     `json:"sources"`
	// Ages of the oldest and newest report (0 when Sources is 0).
	OldestReport time.Duration `json:"oldest_report_age"`
	NewestReport time.Duration `json:"newest_report_age"`
}

// Evaluate decides what a rollout does next: halt when the gate trips,
// else advance to the next step once the dwell is over and the gate has
// enough (and fresh enough) evidence, else hold. sources are the reports
// about the rollout's release (aggregates of other releases are ignored).
// sched or gate may be nil. It is pure.
func Evaluate(st RolloutState, sched *Schedule, gate *Gate, releaseID string, sources []Source, now time.Time) Decision {
	d := Decision{Action: Hold, Percentage: st.Percentage, Sources: len(sources)}
	codes := map[string]int64{}
	for i, src := range sources {
		age := max(now.Sub(src.AsOf), 0)
		if i == 0 || age > d.OldestReport {
			d.OldestReport = age
		}
		if i == 0 || age < d.NewestReport {
			d.NewestReport = age
		}
		for _, a := range src.Aggregates {
			if a.ReleaseID != releaseID {
				continue
			}
			switch a.Type {
			case TypeInstallOK:
				d.Installs += a.Count
			case TypeInstallFailed:
				d.Installs += a.Count
				d.Failures += a.Count
				for c, n := range a.ErrorCodes {
					codes[c] += n
				}
			}
		}
	}
	if d.Installs > 0 {
		d.FailureRate = 100 * float64(d.Failures) / float64(d.Installs)
	}
	evidence := d.evidence()
	if st.Halted {
		d.Reason = "halted; resuming is a manual action (" + evidence + ")"
		return d
	}
	if gate != nil {
		for _, c := range gate.HaltOnErrorCodes {
			if n := codes[c]; n > 0 {
				d.Action, d.Reason = Halt, fmt.Sprintf("install_failed with error code %s reported %d times (%s)", c, n, evidence)
				return d
			}
		}
		if d.Installs >= gate.MinInstalls && d.FailureRate > gate.MaxFailureRate {
			d.Action, d.Reason = Halt, fmt.Sprintf("install failure rate %.1f%% is above %.1f%% (%s)", d.FailureRate, gate.MaxFailureRate, evidence)
			return d
		}
	}
	if sched == nil || len(sched.Steps) == 0 {
		d.Reason = "no schedule (" + evidence + ")"
		return d
	}
	i := slices.IndexFunc(sched.Steps, func(s Step) bool { return s.Percentage > st.Percentage })
	if i < 0 {
		d.Reason = fmt.Sprintf("at the last step (%d%%) (%s)", st.Percentage, evidence)
		return d
	}
	next := sched.Steps[i]
	if i > 0 {
		cur := sched.Steps[i-1] // the step the rollout is at (or past)
		if dwell, in := time.Duration(cur.MinDwell), now.Sub(st.Since); in < dwell {
			d.Reason = fmt.Sprintf("dwelling at %d%%: %s of %s, next step %d%% from %s (%s)", st.Percentage, roundDur(max(in, 0)), roundDur(dwell), next.Percentage, st.Since.Add(dwell).UTC().Format(time.RFC3339), evidence)
			return d
		}
	}
	if gate != nil {
		if d.Installs < gate.MinInstalls {
			d.Reason = fmt.Sprintf("waiting for installs: %d of %d reported (%s)", d.Installs, gate.MinInstalls, evidence)
			return d
		}
		if maxAge := time.Duration(gate.MaxReportAge); maxAge > 0 && d.NewestReport > maxAge {
			d.Reason = fmt.Sprintf("the newest report is %s old, more than max_report_age %s (%s)", roundDur(d.NewestReport), roundDur(maxAge), evidence)
			return d
		}
	}
	d.Action, d.Percentage = Advance, next.Percentage
	d.Reason = fmt.Sprintf("advance from %d%% to %d%% (%s)", st.Percentage, next.Percentage, evidence)
	return d
}

func (d *Decision) evidence() string {
	if d.Sources == 0 {
		return "no reports"
	}
	s := fmt.Sprintf("%d installs, %d failed (%.1f%%), from %d report", d.Installs, d.Failures, d.FailureRate, d.Sources)
	if d.Sources != 1 {
		s += "s"
	}
	if d.OldestReport == d.NewestReport {
		return s + " " + roundDur(d.OldestReport) + " old"
	}
	return s + " " + roundDur(d.NewestReport) + " to " + roundDur(d.OldestReport) + " old"
}

func roundDur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Second)
	}
	return d.String()
}
