//go:build testclock

package clock

import (
	"fmt"
	"os"
	"time"
)

// Enabled reports whether this build honours OUTPOST_TEST_CLOCK_OFFSET.
const Enabled = true

// offset is read once, at start; a malformed value stops the process
// rather than run with a clock the test did not ask for.
var offset = func() time.Duration {
	d, err := parseOffset(os.Getenv(EnvOffset))
	if err != nil {
		fmt.Fprintln(os.Stderr, "clock:", err)
		os.Exit(2)
	}
	return d
}()
