//go:build !testclock

package clock

import "time"

// Enabled reports whether this build honours OUTPOST_TEST_CLOCK_OFFSET.
const Enabled = false

// offset is always 0 in a normal build: the compiler drops the test path.
const offset time.Duration = 0
