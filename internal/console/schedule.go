package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Limits of a schedule typed into the console (the fleet rules' own).
const (
	maxScheduleSteps = 20
	maxStepDwell     = 8760 * time.Hour
)

// ParseSchedule reads a rollout schedule as people type it: steps
// separated by commas, each a whole percentage and how long to stay there
// at least before the next, e.g. "5 for 24h, 25 for 2d, 100". Durations
// are Go durations or whole days ("2d"). Percentages are 1 to 100 and
// strictly increasing. The steps are planned from start: each begins when
// the one before has dwelt its time. An empty text is no schedule (nil).
func ParseSchedule(text string, start time.Time) ([]RolloutStep, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	parts := strings.Split(text, ",")
	if len(parts) > maxScheduleSteps {
		return nil, catalog.Invalid("schedule", "has %d steps, at most %d", len(parts), maxScheduleSteps)
	}
	steps := make([]RolloutStep, 0, len(parts))
	at := start
	for i, part := range parts {
		pct, dwell, hasDwell := strings.Cut(strings.TrimSpace(part), " for ")
		p, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(pct), "%")))
		if err != nil || p < 1 || p > 100 {
			return nil, catalog.Invalid("schedule", "step %d: %q is not a whole percentage from 1 to 100 (write steps as \"5 for 24h, 25 for 2d, 100\")", i+1, strings.TrimSpace(part))
		}
		if i > 0 && float64(p) <= steps[i-1].Percentage {
			return nil, catalog.Invalid("schedule", "step %d: %d%% is not above the step before (%v%%)", i+1, p, steps[i-1].Percentage)
		}
		var d time.Duration
		if hasDwell {
			if d, err = parseDwell(strings.TrimSpace(dwell)); err != nil {
				return nil, catalog.Invalid("schedule", "step %d: %v", i+1, err)
			}
		} else if i+1 < len(parts) {
			return nil, catalog.Invalid("schedule", "step %d: say how long to stay at %d%% before the next step (\"%d for 24h\")", i+1, p, p)
		}
		steps = append(steps, RolloutStep{At: at, Percentage: float64(p)})
		at = at.Add(d)
	}
	return steps, nil
}

// parseDwell reads a Go duration or whole days ("2d").
func parseDwell(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > int(maxStepDwell/(24*time.Hour)) {
			return 0, errInvalidDwell(s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errInvalidDwell(s)
		}
	}
	if d < 0 || d > maxStepDwell {
		return 0, errInvalidDwell(s)
	}
	return d, nil
}

type errInvalidDwell string

func (e errInvalidDwell) Error() string {
	return strconv.Quote(string(e)) + " is not a duration from 0 to 365d (such as 90m, 24h or 2d)"
}
