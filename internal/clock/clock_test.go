package clock

import (
	"testing"
	"time"
)

func TestParseOffset_Values(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"90m", 90 * time.Minute, false},
		{"-72h", -72 * time.Hour, false},
		{"3 days", 0, true},
		{"72", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseOffset(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseOffset(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestNow_IgnoresOffsetWithoutTag: a normal build never skews, whatever
// the environment says, and says so.
func TestNow_IgnoresOffsetWithoutTag(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags testclock")
	}
	t.Setenv(EnvOffset, "72h")
	if got := Offset(); got != 0 {
		t.Fatalf("Offset() = %v, want 0", got)
	}
	if d := time.Until(Now()); d > time.Minute || d < -time.Minute {
		t.Fatalf("Now() is %v from time.Now(), want the real clock", d)
	}
	if w := Warning(); w == "" {
		t.Error("Warning() is empty, want a note that the variable is ignored")
	}
}
