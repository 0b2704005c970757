// Package clock is the wall clock the daemons and updatectl read. In a
// normal build it is time.Now. A binary built with the testclock build
// tag (`go build -tags testclock`, tests only: release builds never set
// it) reads OUTPOST_TEST_CLOCK_OFFSET, a Go duration such as "-72h" or
// "90m", once, and runs that far ahead of (or, negative, behind) the real
// clock, so fault tests can skew one process's clock without touching the
// machine's (docs/RELIABILITY.md, "Clocks").
package clock

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// EnvOffset names the variable a testclock build reads.
const EnvOffset = "OUTPOST_TEST_CLOCK_OFFSET"

// Now is the process's wall clock: time.Now, plus the test offset in a
// testclock build.
func Now() time.Time {
	if offset == 0 {
		return time.Now()
	}
	return time.Now().Add(offset)
}

// Offset is the test offset in force (always 0 without the testclock
// build tag).
func Offset() time.Duration { return offset }

// Warning is a line for the log when the clock is skewed on purpose, or
// when OUTPOST_TEST_CLOCK_OFFSET is set in a build that ignores it; "" in
// the ordinary case.
func Warning() string {
	switch {
	case offset != 0:
		return fmt.Sprintf("TEST BUILD: this process's clock runs %s from the real clock (%s)", offset, EnvOffset)
	case !Enabled && strings.TrimSpace(os.Getenv(EnvOffset)) != "":
		return EnvOffset + " is set but ignored: this binary was not built with the testclock tag"
	}
	return ""
}

// parseOffset reads an offset value ("" is 0).
func parseOffset(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", EnvOffset, s, err)
	}
	return d, nil
}
