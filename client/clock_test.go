package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDownload_ClientClockSkew runs the client's clock off the real one.
// The fixture's timestamp was signed now and is valid for 24 hours: a
// clock up to tuf.ClockSkew behind its signed time and up to its expiry
// ahead verifies; one further behind is refused naming the clock (the
// clock rule), one past the expiry as expired (the freeze rule,
// docs/metadata.md).
func TestDownload_ClientClockSkew(t *testing.T) {
	tests := []struct {
		name    string
		offset  time.Duration
		wantMsg string
	}{
		{"a minute behind", -time.Minute, ""},
		{"10 minutes behind: the clock is refused", -10 * time.Minute, "set this machine's clock"},
		{"3 days behind: the clock is refused", -72 * time.Hour, "set this machine's clock"},
		{"23 hours ahead", 23 * time.Hour, ""},
		{"25 hours ahead: the timestamp expired", 25 * time.Hour, "expired"},
	}
	v := newVendor(t, 4<<10)
	s := newServer(t, v)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, s, v, WithClock(func() time.Time { return time.Now().Add(tt.offset) }))
			dest := filepath.Join(t.TempDir(), "app.zip")
			d, err := c.Check(context.Background(), Query{Product: v.m.Products[0].ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"})
			if err == nil {
				err = c.Download(context.Background(), d, dest, nil)
			}
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("check and download: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("error %v, want a verification failure", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q lacks %q", err, tt.wantMsg)
			}
			assertNothingAt(t, dest)
		})
	}
}
