package snapshot

import (
	"errors"
	"fmt"
	"time"
)

// ClockSkew is how far a local clock may lag behind the vendor's before
// it is called wrong: a snapshot signed up to this long "in the future"
// is accepted (license.MaxClockSkew is the same allowance for lease
// tokens).
const ClockSkew = 5 * time.Minute

// ErrClockBehind means the local clock reads earlier than the signed
// creation time of the metadata, by more than ClockSkew: the clock is
// wrong, and expiry checks made with it cannot be trusted.
var ErrClockBehind = errors.New("local clock is behind the metadata's signed creation time")

// CheckClock says whether now is plausible for a verified manifest: not
// before its signed created_at by more than ClockSkew. The error names
// both times and what to do. A clock that is ahead shows up as an
// expired timestamp (with both times).
func CheckClock(m *Manifest, now time.Time) error {
	if m == nil || m.CreatedAt.IsZero() || !now.Add(ClockSkew).Before(m.CreatedAt) {
		return nil
	}
	return fmt.Errorf("%w: the local clock reads %s, %s before snapshot %d was signed (%s), more than the %s allowed: set this machine's clock (NTP or by hand)",
		ErrClockBehind, now.UTC().Format(time.RFC3339), m.CreatedAt.Sub(now).Round(time.Second), m.Sequence, m.CreatedAt.UTC().Format(time.RFC3339), ClockSkew)
}
