package tuf

import (
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SignedAtField is the custom field of the timestamp's signed body that
// holds the time the control plane signed it (RFC 3339, UTC, whole
// seconds). The control plane sets it on every publish and every
// freshness refresh; TUF clients that do not know it keep it as an
// unrecognised field (docs/metadata.md, "Clocks").
const SignedAtField = "x-outpost-signed-at"

// ClockSkew is how far a local clock may read before the signed time of
// the metadata it verifies: metadata signed up to this long "in the
// future" is accepted (license.MaxClockSkew is the same allowance for
// lease tokens).
const ClockSkew = 5 * time.Minute

// ErrClockBehind means the local clock reads earlier than the signed
// time of the metadata by more than ClockSkew: the clock is wrong, and
// expiry checks made with it cannot be trusted (metadata that expired in
// real time would still verify).
var ErrClockBehind = errors.New("local clock is behind the metadata's signed time")

// ClockError is an ErrClockBehind with both times.
type ClockError struct {
	Now, SignedAt time.Time
	Version       int64 // the timestamp's version
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("the local clock reads %s, %s before timestamp v%d was signed (%s), more than the %s allowed: set this machine's clock (NTP or by hand)",
		e.Now.UTC().Format(time.RFC3339), e.SignedAt.Sub(e.Now).Round(time.Second), e.Version, e.SignedAt.UTC().Format(time.RFC3339), ClockSkew)
}

// Unwrap makes errors.Is(err, ErrClockBehind) hold.
func (e *ClockError) Unwrap() error { return ErrClockBehind }

// CheckClock is the clock rule the mirror and the client share: now is
// implausible when it reads more than ClockSkew before signedAt, the
// signed time of the timestamp (version). A zero signedAt (metadata
// signed before the field existed) passes. A clock ahead cannot be judged
// against anything signed (metadata can be old): it shows up as expired
// metadata, the expiry checks' ErrExpired.
func CheckClock(signedAt, now time.Time, version int64) error {
	if signedAt.IsZero() || !now.Add(ClockSkew).Before(signedAt) {
		return nil
	}
	return &ClockError{Now: now, SignedAt: signedAt, Version: version}
}

// SignedAt returns the timestamp's signed time (SignedAtField); zero when
// the field is absent. A field that is present but not an RFC 3339 time
// is an error: it is signed, so the signer wrote it wrong.
func SignedAt(ts *metadata.Metadata[metadata.TimestampType]) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	v, ok := ts.Signed.UnrecognizedFields[SignedAtField]
	if !ok {
		return time.Time{}, nil
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("timestamp v%d: %s is %T, want an RFC 3339 string", ts.Signed.Version, SignedAtField, v)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp v%d: %s: %w", ts.Signed.Version, SignedAtField, err)
	}
	return t.UTC(), nil
}

// checkTimestampClock applies CheckClock to a verified timestamp.
func checkTimestampClock(ts *metadata.Metadata[metadata.TimestampType], now time.Time) error {
	at, err := SignedAt(ts)
	if err != nil {
		return err
	}
	return CheckClock(at, now, ts.Signed.Version)
}
