package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// The fixture's snapshot was signed at t0-1h and expires at t0+30d; the
// real time is t0. Each case runs the mirror's clock off by an offset.
func TestLedger_MirrorClockSkew(t *testing.T) {
	tests := []struct {
		name     string
		offset   time.Duration
		wantCode string
		wantMsg  string
	}{
		{"3 days behind: before the snapshot was signed", -72 * time.Hour, catalog.EUNAVAILABLE, "set this machine's clock"},
		{"66 minutes behind: 6 before the signing", -66 * time.Minute, catalog.EUNAVAILABLE, "clock"},
		{"64 minutes behind: within the allowance", -64 * time.Minute, "", ""},
		{"5 minutes behind", -5 * time.Minute, "", ""},
		{"5 minutes ahead", 5 * time.Minute, "", ""},
		{"29 days ahead", 29 * 24 * time.Hour, "", ""},
		{"30 days ahead: the held snapshot has expired", 30 * 24 * time.Hour, catalog.EUNAVAILABLE, "check its clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := newTestLedger(t)
			m := testManifest(t)
			now := t0.Add(tt.offset)
			lease, _, err := l.Acquire(context.Background(), m, entAuto, "machine", "host", "", now)
			if got := catalog.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("Acquire: code %q (%v), want %q", got, err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("message %q lacks %q", err, tt.wantMsg)
				}
				return
			}
			// The mirror's clock sets the term: never longer than the TTL.
			if got, ttl := lease.ExpiresAt.Sub(lease.IssuedAt), time.Hour; got > ttl {
				t.Errorf("lease term %v, want at most lease_ttl %v", got, ttl)
			}
		})
	}
}

// TestLease_ValidityUnderSkew issues a lease on a mirror whose clock is
// off by dm and verifies it, every 2 minutes of real time, on a client
// whose clock is off by dc. Whatever the two offsets, the client accepts
// the token for at most lease_ttl + offline_grace + license.MaxClockSkew
// of real time, and never after issue + ttl + grace + (dm - dc). At issue
// the token is usable when the mirror is at most MaxClockSkew ahead of
// the client and less than ttl+grace behind it; more ahead, it is refused
// as not yet valid; that far behind, as expired.
func TestLease_ValidityUnderSkew(t *testing.T) {
	const (
		ttl   = time.Hour     // entAuto's lease_ttl
		grace = 2 * time.Hour // entAuto's offline_grace
		step  = 2 * time.Minute
	)
	offsets := []time.Duration{-2 * time.Hour, -4 * time.Minute, 0, 4 * time.Minute, 6 * time.Minute, 2 * time.Hour}
	m := testManifest(t)
	m.CreatedAt = t0.Add(-24 * time.Hour) // no offset here is before the signing
	v, err := license.NewVerifierFromManifest(vendorKeys(), tenantA, m)
	if err != nil {
		t.Fatal(err)
	}
	l, db, _ := newTestLedger(t)
	db.NoSync = true
	for _, dm := range offsets {
		for _, dc := range offsets {
			t.Run(fmt.Sprintf("mirror %+v client %+v", dm, dc), func(t *testing.T) {
				r0 := t0 // real time of issue
				// A subject of its own: each pair gets a fresh lease, and
				// gives its seat back (entAuto has 10).
				subject := fmt.Sprintf("host%d_%d", dm/time.Minute, dc/time.Minute)
				_, tok, err := l.Acquire(context.Background(), m, entAuto, "machine", subject, "", r0.Add(dm))
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := l.Release(context.Background(), entAuto, "machine", subject, "", true, r0.Add(dm)); err != nil {
						t.Fatal(err)
					}
				}()
				var first, last time.Time
				accepted := time.Duration(0)
				for r := r0.Add(-3 * time.Hour); r.Before(r0.Add(ttl + grace + 5*time.Hour)); r = r.Add(step) {
					_, err := license.Verify(tok, v, r.Add(dc))
					if err != nil {
						if !errors.Is(err, license.ErrNotYetValid) && !errors.Is(err, license.ErrExpired) {
							t.Fatalf("verify at real %s: %v, want valid, not yet valid or expired", r, err)
						}
						continue
					}
					if first.IsZero() {
						first = r
					}
					last = r
					accepted += step
				}
				if limit := ttl + grace + license.MaxClockSkew + step; accepted > limit {
					t.Errorf("accepted for %v of real time, want at most ttl+grace+skew (%v)", accepted, limit-step)
				}
				_, errNow := license.Verify(tok, v, r0.Add(dc))
				switch skew := dm - dc; {
				case skew > license.MaxClockSkew:
					if !errors.Is(errNow, license.ErrNotYetValid) {
						t.Errorf("mirror %v ahead of the client: at issue %v, want ErrNotYetValid", skew, errNow)
					}
				case skew <= -(ttl + grace):
					if !errors.Is(errNow, license.ErrExpired) {
						t.Errorf("mirror %v behind the client: at issue %v, want ErrExpired", -skew, errNow)
					}
				default:
					if errNow != nil {
						t.Errorf("mirror %v from the client: refused at issue (%v), want usable at once", skew, errNow)
					}
				}
				if end := r0.Add(ttl + grace + dm - dc); !last.IsZero() && last.After(end) {
					t.Errorf("accepted until real %s, want not after issue+ttl+grace+(dm-dc) = %s", last, end)
				}
			})
		}
	}
}
