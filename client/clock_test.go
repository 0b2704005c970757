package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// TestDownload_ClientClockSkew runs the client's clock off the real one.
// The fixture's snapshot was signed an hour ago and expires in 30 days.
func TestDownload_ClientClockSkew(t *testing.T) {
	tests := []struct {
		name    string
		offset  time.Duration
		wantErr error
		wantMsg string
	}{
		{"3 days behind: before the signing", -72 * time.Hour, snapshot.ErrClockBehind, "set this machine's clock"},
		{"64 minutes behind: within the allowance", -64 * time.Minute, nil, ""},
		{"29 days ahead", 29 * 24 * time.Hour, nil, ""},
		{"31 days ahead: expired", 31 * 24 * time.Hour, snapshot.ErrExpired, "expired at"},
	}
	v := newVendor(t, 4<<10)
	s := newServer(t, v)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, s, v, WithClock(func() time.Time { return time.Now().Add(tt.offset) }))
			dest := filepath.Join(t.TempDir(), "app.zip")
			d, err := c.Check(context.Background(), Query{Product: "app", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"})
			if err == nil {
				err = c.Download(context.Background(), d, dest, nil)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("check and download: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrVerification) {
				t.Fatalf("error %v, want %v (a verification failure)", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q lacks %q", err, tt.wantMsg)
			}
			assertNothingAt(t, dest)
		})
	}
}
