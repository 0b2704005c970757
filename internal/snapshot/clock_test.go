package snapshot

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckClock_Offsets(t *testing.T) {
	created := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	m := &Manifest{Sequence: 7, CreatedAt: created}
	tests := []struct {
		name    string
		offset  time.Duration // the local clock minus created_at
		wantErr bool
	}{
		{"3 days behind", -72 * time.Hour, true},
		{"6 minutes behind", -6 * time.Minute, true},
		{"4 minutes behind: within the allowance", -4 * time.Minute, false},
		{"exactly the allowance", -ClockSkew, false},
		{"at creation", 0, false},
		{"days later", 72 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckClock(m, created.Add(tt.offset))
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckClock = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrClockBehind) {
				t.Errorf("error %v is not ErrClockBehind", err)
			}
			for _, want := range []string{"clock", created.Format(time.RFC3339), "snapshot 7"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
		})
	}
}
