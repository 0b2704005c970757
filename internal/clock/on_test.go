//go:build testclock

package clock

import (
	"os"
	"testing"
	"time"
)

// TestNow_FollowsOffset (run with OUTPOST_TEST_CLOCK_OFFSET set, e.g.
// OUTPOST_TEST_CLOCK_OFFSET=-72h go test -tags testclock ./internal/clock/).
func TestNow_FollowsOffset(t *testing.T) {
	want, err := parseOffset(os.Getenv(EnvOffset))
	if err != nil {
		t.Fatal(err)
	}
	if Offset() != want {
		t.Fatalf("Offset() = %v, want %v", Offset(), want)
	}
	if d := time.Until(Now()) - want; d > time.Minute || d < -time.Minute {
		t.Fatalf("Now() is %v off the real clock plus %v", d, want)
	}
}
