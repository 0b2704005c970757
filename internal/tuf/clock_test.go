package tuf

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestCheckClock_Rule(t *testing.T) {
	signed := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		signedAt time.Time
		now      time.Time
		want     error
	}{
		{"same instant", signed, signed, nil},
		{"behind by 1 min: accepted", signed, signed.Add(-time.Minute), nil},
		{"behind by exactly the skew: accepted", signed, signed.Add(-ClockSkew), nil},
		{"behind by the skew and a second: refused", signed, signed.Add(-ClockSkew - time.Second), ErrClockBehind},
		{"behind by 10 min: refused", signed, signed.Add(-10 * time.Minute), ErrClockBehind},
		{"behind by 3 days: refused", signed, signed.Add(-72 * time.Hour), ErrClockBehind},
		{"ahead by 1 h: accepted (expiry judges it)", signed, signed.Add(time.Hour), nil},
		{"ahead by 31 days: accepted (expiry judges it)", signed, signed.Add(31 * 24 * time.Hour), nil},
		{"no signed time: accepted", time.Time{}, signed.Add(-72 * time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckClock(tt.signedAt, tt.now, 7)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CheckClock = %v, want %v", err, tt.want)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			for _, want := range []string{
				"the local clock reads " + tt.now.Format(time.RFC3339),
				"before timestamp v7 was signed (" + signed.Format(time.RFC3339) + ")",
				"set this machine's clock",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

func TestSignedAt_Field(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		fields  map[string]any
		want    time.Time
		wantErr bool
	}{
		{"absent", map[string]any{TenantField: "t"}, time.Time{}, false},
		{"RFC 3339", map[string]any{SignedAtField: "2026-11-30T12:00:00Z"}, at, false},
		{"offset normalised to UTC", map[string]any{SignedAtField: "2026-11-30T13:00:00+01:00"}, at, false},
		{"not a string", map[string]any{SignedAtField: 1764504000.0}, time.Time{}, true},
		{"not a time", map[string]any{SignedAtField: "yesterday"}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := metadata.Timestamp(at.Add(time.Hour))
			ts.Signed.UnrecognizedFields = tt.fields
			got, err := SignedAt(ts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("SignedAt error = %v, want error %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("SignedAt = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestBuilder_SignsTimestampTime: every timestamp the builder signs (a
// publish, a freshness refresh) carries the time of its signing.
func TestBuilder_SignsTimestampTime(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 10, 1)
	signedAtOf := func(t *testing.T) time.Time {
		t.Helper()
		ts, err := metadata.Timestamp().FromBytes(f.repo.get(MetadataPath(metadata.TIMESTAMP, 0)))
		if err != nil {
			t.Fatal(err)
		}
		at, err := SignedAt(ts)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	t.Run("publish", func(t *testing.T) {
		f.build(m)
		if got, want := signedAtOf(t), f.now.UTC().Truncate(time.Second); !got.Equal(want) {
			t.Fatalf("signed at %s, want %s", got, want)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		f.now = f.now.Add(90 * time.Minute)
		f.refresh()
		if got, want := signedAtOf(t), f.now.UTC().Truncate(time.Second); !got.Equal(want) {
			t.Fatalf("signed at %s, want %s", got, want)
		}
	})
	t.Run("one release", func(t *testing.T) {
		f.now = f.now.Add(time.Minute)
		addRelease(m, 1, 1)
		f.build(m)
		if got, want := signedAtOf(t), f.now.UTC().Truncate(time.Second); !got.Equal(want) {
			t.Fatalf("signed at %s, want %s", got, want)
		}
	})
}

// TestClient_ClockBehind mounts the freeze a clock behind would allow:
// the client refuses metadata signed more than ClockSkew after its clock,
// persists nothing of that run, and accepts a clock ahead until the
// timestamp expires (24 h by default).
func TestClient_ClockBehind(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		offset  time.Duration
		wantErr error
	}{
		{"behind by 1 min: accepted", -time.Minute, nil},
		{"behind by 10 min: refused", -10 * time.Minute, ErrClockBehind},
		{"behind by 3 days: refused", -72 * time.Hour, ErrClockBehind},
		{"ahead by 23 h: accepted", 23 * time.Hour, nil},
		{"ahead by 25 h: the timestamp expired", 25 * time.Hour, ErrExpired},
	}
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	f.build(view(2, 10, 1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMemStore()
			if err := Init(ctx, s, f.tenantID, f.rootData); err != nil {
				t.Fatal(err)
			}
			now := f.now.Add(tt.offset)
			c := NewClient(f.tenantID, f.repo, s, ClientOptions{Now: func() time.Time { return now }})
			_, err := c.Update(ctx)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Update = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if errors.Is(err, ErrClockBehind) && !strings.Contains(err.Error(), "set this machine's clock") {
				t.Errorf("message %q does not name the clock", err)
			}
			if _, gerr := s.Get(ctx, storeTimestamp); !errors.Is(gerr, ErrNotFound) {
				t.Errorf("timestamp stored after a refused update (get: %v)", gerr)
			}
			if c.Repository() != nil {
				t.Errorf("a refused update left a repository")
			}
		})
	}
}

// TestClient_ClockFallsBehind: a client that verified the metadata with a
// right clock refuses it, from its store, once its clock is set back
// (Update, Load and Fresh apply the same rule).
func TestClient_ClockFallsBehind(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 10, 1)
	f.build(m)
	s := NewMemStore()
	if err := Init(ctx, s, f.tenantID, f.rootData); err != nil {
		t.Fatal(err)
	}
	now := f.now
	c := NewClient(f.tenantID, f.repo, s, ClientOptions{Now: func() time.Time { return now }})
	if _, err := c.Update(ctx); err != nil {
		t.Fatal(err)
	}
	repo := c.Repository()
	if err := repo.Fresh(now); err != nil {
		t.Fatalf("Fresh on the right clock: %v", err)
	}
	got, err := repo.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if want := f.now.UTC().Truncate(time.Second); !got.CreatedAt.Equal(want) {
		t.Errorf("assembled manifest created_at %s, want the timestamp's signed time %s", got.CreatedAt, want)
	}

	now = f.now.Add(-72 * time.Hour)
	t.Run("update", func(t *testing.T) {
		if _, err := c.Update(ctx); !errors.Is(err, ErrClockBehind) {
			t.Fatalf("Update = %v, want %v", err, ErrClockBehind)
		}
	})
	t.Run("load after a restart", func(t *testing.T) {
		c2 := NewClient(f.tenantID, f.repo, s, ClientOptions{Now: func() time.Time { return now }})
		if _, err := c2.Load(ctx); !errors.Is(err, ErrClockBehind) {
			t.Fatalf("Load = %v, want %v", err, ErrClockBehind)
		}
	})
	t.Run("fresh", func(t *testing.T) {
		if err := repo.Fresh(now); !errors.Is(err, ErrClockBehind) {
			t.Fatalf("Fresh = %v, want %v", err, ErrClockBehind)
		}
	})
}
